"""The one front door: build or load an index, ask questions, hold conversations.

The web page, the command line, the evaluation runner and the benchmarks use only this class,
``Conversation``, ``qa.types``, ``qa.errors`` and ``qa.config``; nothing past it.
"""

from __future__ import annotations

import contextlib
import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from typing_extensions import Unpack

from qa import inputs
from qa.config import Config
from qa.conversation import Conversation
from qa.errors import InvalidArgumentError, InvalidQuestionError, ModelLoadError, NoArticlesError
from qa.index import library as libraries
from qa.index.durability import WriteLock
from qa.index.library import Library
from qa.index.migrate import Migration, migrate, to_milvus
from qa.index.versions import index_exists, index_matches
from qa.ingest.annotate import Annotator
from qa.ingest.annotate_worker import AnnotatorWorker
from qa.ingest.chunking import article_sentences
from qa.ingest.http import Fetcher
from qa.ingest.web import OnFetched, read_sources
from qa.locks import ReadWriteLock, reading, writing
from qa.models import Models
from qa.options import AskChanges, AskOptions
from qa.pipeline.abstain import AbstentionModel
from qa.pipeline.generate import GenerativeReader
from qa.pipeline.llm import LLM, LLMSpec, load_llm
from qa.pipeline.question import question_names
from qa.pipeline.reader import SentenceReader
from qa.pipeline.retrieve import Retriever
from qa.pipeline.sentence_scorer import SentenceScorer
from qa.pipeline.statements import read_statement, statement_question
from qa.types import (
    NO_ANSWER,
    Answer,
    Article,
    Catalog,
    FileProblem,
    Hit,
    IndexUpdate,
    LibrarySummary,
    LoadReport,
    Retrieval,
    Sentence,
    Turn,
)

READERS = ("sentence", "llm")  # who writes answers: quoted sentences, or an LLM whose sentences are checked

log = logging.getLogger(__name__)


class Assistant:
    """Answers questions about a collection of articles, citing the sentences it used.

    One assistant may serve several threads: questions run concurrently, while ``add`` and
    ``remove`` wait for them and hold the others back until the index is consistent again.
    """

    def __init__(
        self,
        index: Library,
        config: Config | None = None,
        models: Models | None = None,
        problems: Sequence[FileProblem] = (),
        index_dir: str | Path | None = None,
        llm: LLM | None = None,
        worker: AnnotatorWorker | None = None,
    ) -> None:
        self.config = config or Config.from_env()
        self._worker = worker  # annotates the articles added, when ``load(adding=True)`` started one
        self._llm = llm  # else loaded from config.llm on first use (never when it is empty)
        self._llm_lock = threading.Lock()
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.models = models or Models.of(self.config)
        self.index = index
        self.problems = tuple(problems)
        self._retriever = Retriever(index, self.config, self.models.embedder, self.models.cross_encoder)
        self.abstention = AbstentionModel.load(self.config.abstention_model or None)
        self.scorer = SentenceScorer.load()
        self._lock = ReadWriteLock()
        self.fetcher = Fetcher(self.config)  # web pages and feeds: its per-host limits hold for the whole assistant

    # ---- construction ------------------------------------------------------------
    @classmethod
    def from_articles(
        cls,
        paths: Iterable[str | Path] | str | Path,
        index_dir: str | Path | None = None,
        config: Config | None = None,
        models: Models | None = None,
        show_progress: bool = True,
    ) -> Assistant:
        """Load the articles under ``paths`` (files, folders, URLs), index them, and persist to ``index_dir`` if given.

        Files and pages that cannot be used are skipped and listed in ``assistant.problems``; raises
        ``NoArticlesError`` when nothing could be loaded.
        """
        config = config or Config.from_env()
        paths = inputs.paths(paths)
        report = read_sources(paths, config, show_progress=show_progress)
        if not report.articles:
            details = "".join(f"\n  {p}" for p in report.problems)
            raise NoArticlesError(f"No articles could be loaded from {', '.join(map(str, paths))}.{details}")
        return cls.build(report.articles, index_dir, config, models, show_progress, report.problems)

    @classmethod
    def build(
        cls,
        articles: Sequence[Article],
        index_dir: str | Path | None = None,
        config: Config | None = None,
        models: Models | None = None,
        show_progress: bool = True,
        problems: Sequence[FileProblem] = (),
        reuse: bool = False,
    ) -> Assistant:
        """Index already loaded ``articles`` (persisting to ``index_dir`` if given).

        With ``reuse``, an index in ``index_dir`` that holds exactly these articles, built with these
        settings, is loaded instead of built again (evaluations and benchmarks keep theirs).
        """
        config = config or Config.from_env()
        if reuse and index_dir is not None and index_matches(index_dir, articles, config):
            return cls.load(index_dir, config, models)
        if not articles:
            raise NoArticlesError("No articles to index.")
        if not all(isinstance(a, Article) for a in articles):
            raise InvalidArgumentError("articles must be qa.Article values; to index files, use from_articles(paths).")
        models = models or Models.of(config)
        with WriteLock(index_dir) if index_dir is not None else contextlib.nullcontext() as lock:
            index = libraries.build(articles, config, models.embedder(), Annotator(models.nlp()), show_progress)
            if lock is not None:
                index.persist(index_dir, lock)
        return cls(index, config, models, problems, index_dir)

    @classmethod
    def load(
        cls, index_dir: str | Path, config: Config | None = None, models: Models | None = None, adding: bool = False
    ) -> Assistant:
        """Load a persisted index (nothing is embedded; models load on first use; ``adding``: see AnnotatorWorker)."""
        if not isinstance(index_dir, (str, Path)):
            raise InvalidArgumentError(f"index_dir must be a folder path, not {index_dir!r:.80}.")
        config = config or Config.from_env()
        models = models or Models.of(config)
        worker = AnnotatorWorker.start(config.spacy_model, lambda: Annotator(models.nlp())) if adding else None
        index = libraries.load(index_dir, config, models.embedder)
        return cls(index, config, models, index_dir=index_dir, worker=worker)

    @staticmethod
    def migrate(index_dir: str | Path, config: Config | None = None, to: str | None = None) -> Migration:
        """Convert the index in ``index_dir`` from format 2 or 3, or move it ``to`` Milvus (nothing is embedded)."""
        config = config or Config.from_env()
        return to_milvus(index_dir, config, to) if to else migrate(index_dir, config)

    @staticmethod
    def exists(index_dir: str | Path) -> bool:
        """True when ``index_dir`` holds an index."""
        return index_exists(index_dir)

    @staticmethod
    def read_articles(paths: Iterable[str | Path] | str | Path, config: Config | None = None) -> LoadReport:
        """Read the articles under ``paths`` (fetching its URLs) without indexing them; problems are reported."""
        config = config or Config.from_env()
        return read_sources(inputs.paths(paths), config)

    # ---- updates -------------------------------------------------------------------
    def add(
        self, paths: Iterable[str | Path] | str | Path, show_progress: bool = True, on_fetched: OnFetched | None = None
    ) -> IndexUpdate:
        """Index new and changed articles under ``paths`` (unchanged ones are not re-embedded).

        ``paths`` are files, folders and http(s) URLs of article pages, fetched politely (``qa.ingest.http``)
        while questions go on; ``on_fetched(done, total, url, article or problem)`` hears of each. A page's
        doc id comes from its canonical URL: fetched again, it replaces its old version. With an
        ``index_dir``, the updated index replaces it atomically. What cannot be used is in ``problems``.
        """
        report = read_sources(inputs.paths(paths), self.config, self.fetcher, show_progress, on_fetched)
        update = self.add_articles(report.articles, show_progress)
        return replace(update, problems=report.problems + update.problems)

    @writing
    def add_articles(
        self,
        articles: Sequence[Article],
        show_progress: bool = True,
        also: Callable[[Path, IndexUpdate], object] | None = None,
    ) -> IndexUpdate:
        """Index already read ``articles`` as ``add`` does. ``also(index_dir, update)`` runs under the same locks
        once the index is written: to keep a file beside it (the feed list) in step with it."""
        with self._writing() as lock:
            update = IndexUpdate((), (), (), (), 0)
            if articles:
                embedder, annotator = self.models.embedder(), self._worker or self._annotator()
                update = self.index.update(articles, self.config, embedder, annotator, show_progress)
            if lock is not None and (update.added or update.replaced):
                self.index.persist(lock.root, lock)
            if also is not None and lock is not None:
                also(lock.root, update)
        return replace(update, problems=update.duplicates)

    @writing
    def remove(self, doc_ids: Sequence[str] | str) -> list[str]:
        """Delete articles (vectors, passages, article text); persists if it has an index_dir.

        Raises ``UnknownArticleError`` if an id is not indexed; nothing is removed then.
        """
        ids = list(inputs.texts(doc_ids, "doc_ids"))
        if not ids:
            return []
        with self._writing() as lock:
            removed = self.index.remove(ids)
            if lock is not None:
                self.index.persist(lock.root, lock)
        return removed

    def _statement_sentences(self, hits: Sequence[Hit]) -> list[Sentence]:
        """Every sentence of the articles ``hits`` come from (a statement may sit outside the passages read)."""
        doc_ids = dict.fromkeys(h.passage.doc_id for h in hits)
        return [s for d in doc_ids for s in article_sentences(self.index.article(d), self.index.notes(d))]

    def _annotator(self) -> Annotator:
        """The annotation stage over this assistant's spaCy pipeline."""
        return Annotator(self.models.nlp())

    def _writing(self) -> contextlib.AbstractContextManager[WriteLock | None]:
        """The index folder's write lock (refusing concurrent or stale writers), if it has a folder."""
        if self.index_dir is None:
            return contextlib.nullcontext()
        return self.index.writing(self.index_dir)

    # ---- the optional LLM ----------------------------------------------------------
    @property
    def llm(self) -> LLM | None:
        """The configured LLM (``Config.llm``), loaded on first use; None when there is none."""
        with self._llm_lock:
            if self._llm is None and self.config.llm.strip():
                self._llm = load_llm(self.config)
            return self._llm

    def uses_llm(self, reader: str | None = None) -> bool:
        """True when answers to ``reader`` (None: the default) are written by the LLM.

        The default is the LLM when one is configured, else the sentence reader. Raises for an
        unknown reader, or for ``"llm"`` when no LLM is configured.
        """
        if reader is None:
            return bool(self._llm is not None or self.config.llm.strip())
        if reader not in READERS:
            raise InvalidQuestionError(f"Unknown reader {reader!r}: use one of {', '.join(READERS)}.")
        if reader == "llm" and not (self._llm is not None or self.config.llm.strip()):
            raise ModelLoadError("No LLM is configured: pass --llm (or set QA_LLM), e.g. --llm gguf:/path/model.gguf.")
        return reader == "llm"

    @property
    def llm_name(self) -> str | None:
        """The configured LLM's model name (None when answers are quoted sentences only)."""
        if not self.uses_llm():
            return None
        return LLMSpec.parse(self.config.llm, self.config.llm_model).name if self.config.llm.strip() else "LLM"

    # ---- questions ---------------------------------------------------------------
    @property
    def default_strictness(self) -> float:
        """The strictness a question is asked with unless it says otherwise: ``Config.strictness``, else
        the calibrated operating point shipped with the abstention model."""
        return self.abstention.strictness if self.config.strictness is None else self.config.strictness

    def check_question(self, question: object) -> str:
        """Return ``question`` as it would be asked (cleaned); raises ``InvalidQuestionError`` if it cannot be."""
        return inputs.clean_question(question, self.config.max_question_chars)

    @reading
    def ask(
        self,
        question: str,
        options: AskOptions | None = None,
        *,
        on_token: Callable[[str], None] | None = None,
        resolved: str | None = None,
        **changes: Unpack[AskChanges],
    ) -> Answer:
        """Answer one question from the articles, with citations, or abstain saying why.

        ``options`` (``AskOptions``) or the keywords that override them (``AskChanges``): ``sources`` and
        ``since``/``until`` (``YYYY-MM-DD``, inclusive) restrict which articles are searched;
        ``within`` (doc ids) restricts them further. ``as_of`` (``YYYY-MM-DD`` or ``"today"``)
        answers as a reader would on that day: later articles are left out and the news of the
        weeks before it is favoured (see ``qa.pipeline.retrieve``). ``strictness`` (0 to 1; default
        ``default_strictness``) is the estimated probability that the evidence answers below which
        the assistant abstains (see ``qa.pipeline.abstain``): higher abstains more often.

        ``reader`` is ``"sentence"`` or ``"llm"`` (default: the LLM when one is configured). The
        LLM's text streams to ``on_token`` as it is generated; the answer returned keeps only
        its sentences supported by the evidence they cite (see ``qa.pipeline.generate``).
        ``resolved`` is the question as it is searched and scored (a conversation's reading of a
        follow-up); the answer only needs to mention the names of ``question`` itself.
        """
        chosen = inputs.options(options, changes)
        use_llm = self.uses_llm(chosen.reader)
        question = inputs.clean_question(question, self.config.max_question_chars)
        chosen_strictness = inputs.strictness(chosen.strictness)
        filters = inputs.make_filters(chosen)
        cross_encoder = self.models.cross_encoder()  # loaded once, before the clock starts
        self.models.embedder()
        nlp = self.models.nlp()
        started = time.perf_counter()
        own_names = question_names(nlp, question)
        resolved = inputs.clean_question(resolved, self.config.max_question_chars) if resolved else question
        retrieval = self._retriever.retrieve(resolved, filters=filters)
        read_started = time.perf_counter()
        config = self.config if chosen_strictness is None else self.config.with_changes(strictness=chosen_strictness)
        reading = SentenceReader(cross_encoder, config, self.abstention, self.scorer).read(
            resolved, retrieval.hits, self.index.article, required_terms=own_names
        )
        statement = statement_question(resolved)
        if statement is not None and retrieval.hits:
            strict = self.default_strictness if chosen_strictness is None else chosen_strictness
            hits = list(retrieval.hits)
            if statement.kind == "who-said":  # the quotation alone finds its sentence best
                hits += self._retriever.retrieve(statement.quote, filters=filters).hits
            sentences = self._statement_sentences(hits)
            # whose statements: the names of the question as searched ("his" became "Imran Khan's")
            names = own_names if resolved == question else question_names(nlp, resolved)
            reading = read_statement(
                statement, resolved, reading, sentences, names, cross_encoder, self.index.article, strict
            )
        if not retrieval.hits and filters is not None:
            why = "No article matches the sources, dates or articles the search was restricted to."
            reading = replace(reading, text=f"{NO_ANSWER} {why}", reason=why)
        read_done = time.perf_counter()
        timings = {**retrieval.timings, "read": round(read_done - read_started, 4)}
        answer = Answer(
            question=question,
            text=reading.text,
            citations=reading.citations,
            abstained=reading.abstained,
            resolved_question=resolved,
            evidence=reading.evidence,
            confidence=reading.confidence,
            missing=reading.missing_terms,
            reason=reading.reason,
            short=reading.short,
        )
        if use_llm and not reading.abstained:
            generated = GenerativeReader(self.llm, cross_encoder, self.config, self._annotator().sentences).read(
                resolved, reading, self.index.article, on_token
            )
            answer = replace(
                answer,
                text=generated.text,
                citations=generated.citations,
                reader=generated.reader,
                draft=generated.draft,
                dropped=generated.dropped,
                unsupported=len(generated.dropped),
                short=reading.short.within(generated.citations) if reading.short else None,
            )
            timings["generate"] = round(time.perf_counter() - read_done, 4)
        timings["total"] = round(time.perf_counter() - started, 4)
        return replace(answer, timings=timings)

    def search(
        self, question: str, top_k: int = 10, options: AskOptions | None = None, **changes: Unpack[AskChanges]
    ) -> list[Hit]:
        """Return the ``top_k`` passages retrieved (and reranked) for ``question``, best first."""
        return list(self.retrieve(question, top_k, options, **changes).hits)

    @reading
    def retrieve(
        self, question: str, top_k: int = 10, options: AskOptions | None = None, **changes: Unpack[AskChanges]
    ) -> Retrieval:
        """Like ``search``, with the seconds each retrieval stage took (``options`` as in ``ask``)."""
        question = inputs.clean_question(question, self.config.max_question_chars)
        top_k = inputs.top_k(top_k)
        chosen = inputs.options(options, changes)
        self.models.embedder()
        if self.config.rerank:
            self.models.cross_encoder()
        return self._retriever.retrieve(question, top_k, inputs.make_filters(chosen))

    def chat(self, history: Sequence[Turn] = ()) -> Conversation:
        """Start a conversation (or resume one from ``history``) for follow-up questions."""
        return Conversation(self, history)

    # ---- articles ------------------------------------------------------------------
    @reading
    def article(self, doc_id: str) -> Article:
        """Return the article with ``doc_id``; raises ``UnknownArticleError`` if there is none."""
        return self.index.article(doc_id)

    @reading
    def articles(self) -> list[Article]:
        """Return every indexed article."""
        return self.index.articles()

    @reading
    def library(self) -> list[tuple[Article, int]]:
        """Every article with its passage count, in indexing order: read whole (``catalog`` reads none)."""
        return [(a, self.index.passage_count(a.doc_id)) for a in self.index.articles()]

    @reading
    def catalog(
        self, offset: int = 0, limit: int | None = None, newest_first: bool = True, query: str | None = None
    ) -> Catalog:
        """A page of the library's catalog (``Catalog``: ``total``, ``entries`` of ``CatalogEntry``, ``sources``),
        made from the headings held in memory: no article is read. ``limit`` entries (None: all) from ``offset``;
        newest first (the latest date first, undated articles last, the latest indexed first among equals), or
        with ``newest_first=False`` in indexing order. ``query`` keeps the articles whose title, source or doc id
        contains it, in any case."""
        return Catalog.of(self.index.listing(), offset, limit, newest_first, query)

    @reading
    def summary(self) -> LibrarySummary:
        """How many articles and passages the library holds, and where its vectors live."""
        return LibrarySummary(
            self.index.article_count, len(self.index), self.index.store.describe(), self.index.changes
        )
