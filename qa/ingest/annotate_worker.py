"""The annotation stage (``qa.ingest.annotate``) in a process of its own, for a command that adds articles as soon
as it has read its index (``qa index``, through ``Assistant.load(adding=True)``).

Importing and loading spaCy takes about half a second, and reading a 50,000-article index and loading the embedder
0.4 s: one after the other in one process, as both hold the GIL. A worker forked before the index is read loads the
pipeline meanwhile on the other core, then annotates the articles with the same ``Annotator`` over the same pipeline
and sends their notes back whole: the notes are those this process would make. At 50,000 articles ``qa index`` of
one article took 1.7 s instead of 2.4 s (2 cores, otherwise idle; ``benchmarks/RESULTS.md``).

It is forked, so it is started only from a process with no other thread, and the objects this process holds then
are frozen (``gc.freeze``) for the rest of its life, so that neither process's garbage collector copies the pages
they share; where it cannot start, or fails, the articles are annotated in this process as before.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import signal
import threading
from collections.abc import Callable, Sequence
from multiprocessing.connection import Connection

from qa.ingest.annotate import Annotator
from qa.models import load_spacy
from qa.types import Article, ArticleNotes

log = logging.getLogger(__name__)


class AnnotatorWorker:
    """Annotates articles (``annotate``, as ``Annotator`` does) in a worker process that loads ``spacy_model`` as soon
    as it starts; ``in_process`` makes the annotator this process falls back on when the worker fails."""

    def __init__(self, spacy_model: str, in_process: Callable[[], Annotator]) -> None:
        context = multiprocessing.get_context("fork")
        self._in_process = in_process
        self._connection, theirs = context.Pipe()
        gc.freeze()
        args = (theirs, self._connection, spacy_model)
        self._process = context.Process(target=_serve, args=args, name="annotator", daemon=True)
        self._process.start()
        theirs.close()
        self._lock = threading.Lock()
        self._failed = False

    @classmethod
    def start(cls, spacy_model: str, in_process: Callable[[], Annotator]) -> AnnotatorWorker | None:
        """A worker, or None where forking is not safe (another thread runs in this process) or possible."""
        if threading.active_count() > 1 or "fork" not in multiprocessing.get_all_start_methods():
            return None
        return cls(spacy_model, in_process)

    def annotate(self, articles: Sequence[Article], show_progress: bool = False) -> list[ArticleNotes]:
        """The notes of each article, in order, as ``Annotator.annotate`` makes them."""
        with self._lock:
            if not self._failed:
                try:
                    self._connection.send(list(articles))
                    done, notes = self._connection.recv()
                    if done:
                        return notes
                    log.info("The annotation worker failed (%s): annotating in this process", notes)  # which says why
                except (OSError, EOFError) as exc:
                    log.warning("The annotation worker stopped (%s): annotating in this process", exc)
                self._failed = True
        return self._in_process().annotate(articles, show_progress)


def _serve(connection: Connection, parents: Connection, spacy_model: str) -> None:
    """The worker: load the pipeline, then annotate each list of articles received until the parent closes the pipe
    or ends (its end of the pipe is closed here, so that its death reads as the pipe's end)."""
    parents.close()
    signal.signal(signal.SIGINT, signal.SIG_IGN)  # Ctrl-C is the parent's to handle; the worker ends with it
    annotator, failure = None, ""
    try:
        annotator = Annotator(load_spacy(spacy_model))
    except Exception as exc:  # noqa: BLE001 - reported to the parent, which annotates itself
        failure = f"{type(exc).__name__}: {exc}"
    while True:
        try:
            articles = connection.recv()
        except EOFError:
            return
        try:
            if annotator is None:
                raise RuntimeError(failure)
            connection.send((True, annotator.annotate(articles)))
        except Exception as exc:  # noqa: BLE001 - reported to the parent, which annotates itself
            connection.send((False, f"{type(exc).__name__}: {exc}"))
