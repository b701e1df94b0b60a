"""The one front door: build or load an index, ask questions, hold conversations."""

from __future__ import annotations

import contextlib
import functools
import logging
import re
import threading
import time
import unicodedata
from collections.abc import Callable, Collection, Iterable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path
from typing import Concatenate, ParamSpec, TypeVar

from qa.abstain import AbstentionModel
from qa.articles import FileProblem, load_articles
from qa.config import Config
from qa.dialogue import Resolution, points_back, resolve
from qa.errors import InvalidArgumentError, InvalidQuestionError, ModelLoadError, NoArticlesError, UnknownArticleError
from qa.generate import GenerativeReader
from qa.index import Hit, IndexUpdate, PassageIndex, index_exists
from qa.llm import LLM, load_llm
from qa.locks import ReadWriteLock
from qa.models import Models, warm_models
from qa.question import question_names
from qa.reader import NO_ANSWER, SentenceReader, key_terms
from qa.retrieve import Filters, Retrieval, Retriever, parse_date
from qa.storage import WriteLock
from qa.types import Answer, Article

READERS = ("sentence", "llm")  # who writes answers: quoted sentences, or an LLM whose sentences are checked

log = logging.getLogger(__name__)

P = ParamSpec("P")
R = TypeVar("R")

_ANSI = re.compile(r"\x1b\[[0-?]*[ -/]*[@-~]")  # terminal colour codes pasted along: dropped
_CONTROL = re.compile(r"[\x00-\x1f\x7f-\x9f]+")  # C0 and C1 controls: read as spaces
# Invisible format characters (soft hyphen, zero-width, bidi overrides, BOM) and lone surrogates
# (undecodable bytes from a command line): dropped.
_INVISIBLE = re.compile(r"[\u00ad\u200b-\u200f\u202a-\u202e\u2060-\u2069\ufeff\ud800-\udfff]")


def clean_question(question: str, max_chars: int) -> str:
    """Return the question with control and invisible characters and extra spaces removed.

    Raises ``InvalidQuestionError`` for a question that is not text, empty (once cleaned) or
    longer than ``max_chars``.
    """
    if not isinstance(question, str):
        raise InvalidQuestionError(f"The question must be text, not {type(question).__name__}.")
    cleaned = " ".join(
        unicodedata.normalize("NFC", _INVISIBLE.sub("", _CONTROL.sub(" ", _ANSI.sub("", question)))).split()
    )
    if not cleaned:
        raise InvalidQuestionError("The question is empty: type a question about the articles.")
    if len(cleaned) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is {max_chars:,}. Ask something shorter."
        )
    return cleaned


def make_filters(
    sources: Sequence[str] | None,
    since: str | date | None,
    until: str | date | None,
    as_of: str | date | None = None,
) -> Filters | None:
    """Return the article filters for ``ask``/``search``; raises for an unreadable date.

    ``as_of`` also takes ``"today"``."""
    if isinstance(as_of, str) and as_of.strip().lower() == "today":
        as_of = date.today()
    days = []
    for name, value in (("since", since), ("until", until), ("as_of", as_of)):
        if value is not None and not isinstance(value, (str, date)):
            raise InvalidQuestionError(f"{name}={value!r:.40} is not a date: use YYYY-MM-DD or a datetime.date.")
        day = parse_date(value) if value not in (None, "") else None
        if value not in (None, "") and day is None:
            raise InvalidQuestionError(f"{name}={value!r} is not a date: use YYYY-MM-DD.")
        days.append(day)
    wanted = tuple(s.strip() for s in _texts(sources or (), "sources") if s.strip())
    filters = Filters(wanted, *days)
    return filters if filters.active else None


def _texts(value: object, what: str) -> tuple[str, ...]:
    """``value`` as a tuple of strings: one string, or a list or tuple of them."""
    if isinstance(value, str):
        return (value,)
    if isinstance(value, (list, tuple, set, frozenset)) and all(isinstance(v, str) for v in value):
        return tuple(value)
    raise InvalidArgumentError(f"{what} must be a string or a list of strings, not {value!r:.80}.")


def _paths(value: object, what: str = "paths") -> list[str | Path]:
    """``value`` as a list of paths: one path, or an iterable of them."""
    if isinstance(value, (str, Path)):
        return [value]
    if isinstance(value, Iterable) and not isinstance(value, (bytes, dict)):
        items = list(value)
        if all(isinstance(v, (str, Path)) for v in items):
            return items
    raise InvalidArgumentError(f"{what} must be a file or folder path, or a list of them, not {value!r:.80}.")


def _strictness(value: object) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0.0 <= value <= 1.0:
        raise InvalidQuestionError(f"strictness={value!r:.40} is not a probability: use a number from 0 to 1.")
    return float(value)


def _top_k(value: object) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise InvalidArgumentError(f"top_k={value!r:.40} is not a number of passages: use a whole number of 1 or more.")
    return value


def start_loading(config: Config, seed_paths: Iterable[str | Path] = ("seeds",)) -> Future[Assistant]:
    """Start loading the index of ``config`` (or building it from ``seed_paths`` when there is
    none) in a thread, and its models in another; ``result()`` returns the assistant or raises
    what loading raised. A server calls this before it imports its web framework: the index
    is read and the models load meanwhile (on the 1,663-article index the page was up 0.2-0.3 s
    sooner in a timing of each phase; benchmarks/speed.py cold cannot tell it from noise)."""
    models = warm_models(config)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-index")
    future = executor.submit(Assistant.load_or_build, config.index_dir, list(seed_paths), config, models)
    executor.shutdown(wait=False)
    return future


@dataclass(frozen=True)
class _Within(Filters):
    """Filters that also keep only some articles: a follow-up searches its conversation's articles first."""

    doc_ids: frozenset[str] = frozenset()

    @property
    def active(self) -> bool:
        return True

    def allows(self, article: Article) -> bool:
        return article.doc_id in self.doc_ids and super().allows(article)


def _shared(method: Callable[Concatenate[Assistant, P], R]) -> Callable[Concatenate[Assistant, P], R]:
    """Run ``method`` holding the assistant's lock for reading: questions run together."""

    @functools.wraps(method)
    def locked(self: Assistant, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock.reading():
            return method(self, *args, **kwargs)

    return locked


def _exclusive(method: Callable[Concatenate[Assistant, P], R]) -> Callable[Concatenate[Assistant, P], R]:
    """Run ``method`` holding the assistant's lock for writing: no question sees a half-changed index."""

    @functools.wraps(method)
    def locked(self: Assistant, *args: P.args, **kwargs: P.kwargs) -> R:
        with self._lock.writing():
            return method(self, *args, **kwargs)

    return locked


class Assistant:
    """Answers questions about a collection of articles, citing the sentences it used.

    One assistant may serve several threads: questions run concurrently, while ``add`` and
    ``remove`` wait for them and hold the others back until the index is consistent again.
    """

    def __init__(
        self,
        index: PassageIndex,
        config: Config | None = None,
        models: Models | None = None,
        problems: Sequence[FileProblem] = (),
        index_dir: str | Path | None = None,
        llm: LLM | None = None,
    ) -> None:
        self.config = config or Config.from_env()
        self._llm = llm  # else loaded from config.llm on first use (never when it is empty)
        self._llm_lock = threading.Lock()
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.models = models or Models.of(self.config)
        self.index = index
        self.problems = tuple(problems)
        self._retriever = Retriever(index, self.config, self.models.embedder, self.models.cross_encoder)
        self.abstention = AbstentionModel.load(self.config.abstention_model or None)
        self._lock = ReadWriteLock()

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
        """Load the articles under ``paths``, index them, and persist to ``index_dir`` if given.

        Files that cannot be used are skipped and listed in ``assistant.problems``; raises
        ``NoArticlesError`` when nothing could be loaded.
        """
        config = config or Config.from_env()
        paths = _paths(paths)
        report = load_articles(paths, config.max_file_bytes)
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
    ) -> Assistant:
        """Index already loaded ``articles`` (persisting to ``index_dir`` if given)."""
        config = config or Config.from_env()
        if not articles:
            raise NoArticlesError("No articles to index.")
        if not all(isinstance(a, Article) for a in articles):
            raise InvalidArgumentError("articles must be qa.Article values; to index files, use from_articles(paths).")
        models = models or Models.of(config)
        with WriteLock(index_dir) if index_dir is not None else contextlib.nullcontext() as lock:
            index = PassageIndex.build(articles, config, models.embedder(), show_progress=show_progress)
            if lock is not None:
                index.persist(index_dir, lock)
        return cls(index, config, models, problems, index_dir)

    @classmethod
    def load(cls, index_dir: str | Path, config: Config | None = None, models: Models | None = None) -> Assistant:
        """Load a persisted index (nothing is embedded; models load on first question)."""
        if not isinstance(index_dir, (str, Path)):
            raise InvalidArgumentError(f"index_dir must be a folder path, not {index_dir!r:.80}.")
        config = config or Config.from_env()
        models = models or Models.of(config)
        index = PassageIndex.load(index_dir, config, models.embedder)
        return cls(index, config, models, index_dir=index_dir)

    @classmethod
    def load_or_build(
        cls,
        index_dir: str | Path,
        seed_paths: Iterable[str | Path],
        config: Config | None = None,
        models: Models | None = None,
    ) -> Assistant:
        """Load ``index_dir``, or build it from ``seed_paths`` when it holds no index yet."""
        if index_exists(index_dir):
            return cls.load(index_dir, config, models)
        log.info("No index in %s yet: building it from %s", index_dir, ", ".join(map(str, seed_paths)))
        return cls.from_articles(seed_paths, index_dir=index_dir, config=config, models=models)

    # ---- updates -------------------------------------------------------------------
    @_exclusive
    def add(self, paths: Iterable[str | Path] | str | Path, show_progress: bool = True) -> IndexUpdate:
        """Index new and changed articles under ``paths`` (unchanged ones are not re-embedded).

        When the assistant has an ``index_dir``, the updated index replaces it atomically.
        Files that cannot be used are reported in the result's ``problems``.
        """
        report = load_articles(_paths(paths), self.config.max_file_bytes)
        with self._writing() as lock:
            update = self.index.update(report.articles, self.config, self.models.embedder(), show_progress)
            if lock is not None and (update.added or update.replaced):
                self.index.persist(lock.root, lock)
        return replace(update, problems=report.problems + update.duplicates)

    @_exclusive
    def remove(self, doc_ids: Sequence[str] | str) -> list[str]:
        """Delete articles (FAISS vectors, docstore passages, article text); persists if it has an index_dir.

        Raises ``UnknownArticleError`` if an id is not indexed; nothing is removed then.
        """
        ids = list(_texts(doc_ids, "doc_ids"))
        if not ids:
            return []
        with self._writing() as lock:
            removed = self.index.remove(ids)
            if lock is not None:
                self.index.persist(lock.root, lock)
        return removed

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

    def condense(self, resolution: Resolution, turns: Sequence[tuple[str, str]]) -> Resolution:
        """Return ``resolution`` with its text rewritten by the LLM from earlier (question, answer) turns.

        The rule-based reading is kept when the LLM's rewrite is unusable (see ``GenerativeReader.condense``).
        """
        llm = self.llm
        if llm is None:
            return resolution
        rewritten = GenerativeReader(llm, None, self.config).condense(resolution.question, turns)
        if not rewritten:
            return resolution
        own = set(key_terms(resolution.question))
        borrowed = tuple(t for t in key_terms(rewritten) if t not in own)
        return replace(resolution, text=rewritten, borrowed=borrowed)

    # ---- questions ---------------------------------------------------------------
    @_shared
    def ask(
        self,
        question: str,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        as_of: str | date | None = None,
        context_terms: Sequence[str] = (),
        resolved: str | None = None,
        within: Collection[str] | None = None,
        reader: str | None = None,
        on_token: Callable[[str], None] | None = None,
        strictness: float | None = None,
    ) -> Answer:
        """Answer one question from the articles, with citations, or abstain.

        ``sources`` and ``since``/``until`` (``YYYY-MM-DD``, inclusive) restrict which
        articles are searched; ``within`` (doc ids) restricts them further. ``as_of``
        (``YYYY-MM-DD`` or ``"today"``) answers as a reader would on that day: later articles
        are left out and the news of the weeks before it is favoured (see ``qa.retrieve``).
        ``resolved`` is
        the question as it is searched and scored (a conversation's reading of a follow-up)
        and ``context_terms`` (names from earlier turns) are added to it; the answer only
        needs to mention the names of ``question`` itself.

        ``reader`` is ``"sentence"`` or ``"llm"`` (default: the LLM when one is configured). The
        LLM's text streams to ``on_token`` as it is generated; the answer returned keeps only
        its sentences supported by the evidence they cite (see ``qa.generate``).

        ``strictness`` (0 to 1; default ``config.strictness``, else the shipped operating point)
        is the estimated probability that the evidence answers below which the assistant
        abstains (see ``qa.abstain``): higher abstains more often.
        """
        use_llm = self.uses_llm(reader)
        question = clean_question(question, self.config.max_question_chars)
        strictness = _strictness(strictness)
        filters = make_filters(sources, since, until, as_of)
        if within is not None:
            within = _texts(within, "within")
            base = filters or Filters()
            filters = _Within(base.sources, base.since, base.until, base.as_of, frozenset(within))
        cross_encoder = self.models.cross_encoder()  # loaded once, before the clock starts
        self.models.embedder()
        nlp = self.models.nlp()
        started = time.perf_counter()
        own_terms = question_names(nlp, question)
        resolved = clean_question(resolved, self.config.max_question_chars) if resolved else question
        if context_terms:
            resolved = f"{resolved} ({' '.join(context_terms)})"
        retrieval = self._retriever.retrieve(resolved, filters=filters)
        read_started = time.perf_counter()
        config = self.config if strictness is None else self.config.with_changes(strictness=strictness)
        reading = SentenceReader(cross_encoder, config, self.abstention).read(
            resolved, retrieval.hits, self.index.article, required_terms=own_terms
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
        )
        if use_llm and not reading.abstained:
            generated = GenerativeReader(self.llm, cross_encoder, self.config).read(
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
            )
            timings["generate"] = round(time.perf_counter() - read_done, 4)
        timings["total"] = round(time.perf_counter() - started, 4)
        return replace(answer, timings=timings)

    def search(
        self,
        question: str,
        top_k: int = 10,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        as_of: str | date | None = None,
    ) -> list[Hit]:
        """Return the ``top_k`` passages retrieved (and reranked) for ``question``, best first."""
        return list(self.retrieve(question, top_k, sources=sources, since=since, until=until, as_of=as_of).hits)

    @_shared
    def retrieve(
        self,
        question: str,
        top_k: int = 10,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        as_of: str | date | None = None,
    ) -> Retrieval:
        """Like ``search``, with the seconds each retrieval stage took."""
        question = clean_question(question, self.config.max_question_chars)
        top_k = _top_k(top_k)
        self.models.embedder()
        if self.config.rerank:
            self.models.cross_encoder()
        return self._retriever.retrieve(question, top_k, make_filters(sources, since, until, as_of))

    def chat(self, history: Sequence[Turn] = ()) -> Conversation:
        """Start a conversation (or resume one from ``history``) for follow-up questions."""
        return Conversation(self, history)

    # ---- articles ------------------------------------------------------------------
    @_shared
    def article(self, doc_id: str) -> Article:
        """Return the article with ``doc_id``; raises ``UnknownArticleError`` if there is none."""
        return self.index.article(doc_id)

    @_shared
    def articles(self) -> list[Article]:
        """Return every indexed article."""
        return self.index.articles()

    @_shared
    def library(self) -> list[tuple[Article, int]]:
        """Return every indexed article with its number of passages, in one consistent view."""
        return [(a, self.index.passage_count(a.doc_id)) for a in self.index.articles()]


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: Answer


class Conversation:
    """A dialogue with the assistant: follow-up questions are read in the light of the earlier turns.

    A question that points back ("Who said that?", "Where was he when he said it?", "And
    what did Pakistan's prime minister say?", "What about South Korea?") is rewritten from
    the names, people, quotations and articles of earlier turns (see ``qa.dialogue``) and
    searched first in the articles of the turn it points to. ``Answer.resolved_question``
    shows what was searched; names borrowed from the conversation are never required in
    the answer.
    """

    def __init__(self, assistant: Assistant, history: Sequence[Turn] = ()) -> None:
        self.assistant = assistant
        self._turns: list[Turn] = list(history)
        if not all(isinstance(t, Turn) for t in self._turns):
            raise InvalidArgumentError("history must be a list of Turn values, as Conversation.history returns.")

    @property
    def history(self) -> tuple[Turn, ...]:
        """The turns so far, oldest first."""
        return tuple(self._turns)

    def reset(self) -> None:
        """Forget the conversation."""
        self._turns.clear()

    def resolve(self, question: str) -> Resolution:
        """Return how ``question`` reads in this conversation: what would be searched, and where first."""
        question = clean_question(question, self.assistant.config.max_question_chars)
        return resolve(question, [t.answer for t in self._turns], self._article_text)

    def _article_text(self, doc_id: str) -> str:
        try:
            return self.assistant.article(doc_id).text
        except UnknownArticleError:  # removed from the library since it was cited
            return ""

    def ask(
        self,
        question: str,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        as_of: str | date | None = None,
        reader: str | None = None,
        on_token: Callable[[str], None] | None = None,
        strictness: float | None = None,
    ) -> Answer:
        """Answer ``question`` in the context of the conversation (filters, ``reader``, ``on_token`` and
        ``strictness`` as in ``Assistant.ask``). When the LLM answers, it also rewrites follow-ups that point back."""
        resolution = self.resolve(question)
        use_llm = self.assistant.uses_llm(reader)
        if use_llm and self._turns and self.assistant.config.llm_condense and points_back(resolution.question):
            turns = [(t.question, t.answer.text) for t in self._turns]
            resolution = self.assistant.condense(resolution, turns)
        options = {
            "sources": sources,
            "since": since,
            "until": until,
            "as_of": as_of,
            "reader": reader,
            "on_token": on_token,
            "strictness": strictness,
        }
        answer = None
        if resolution.doc_ids:
            answer = self.assistant.ask(question, resolved=resolution.text, within=resolution.doc_ids, **options)
        if answer is None or answer.abstained:
            answer = self.assistant.ask(question, resolved=resolution.text, **options)
        self._turns.append(Turn(answer.question, answer))
        return answer

    def context_terms(self, question: str) -> list[str]:
        """Return the names ``question`` borrows from the conversation (none for a question that stands alone)."""
        return list(self.resolve(question).borrowed)
