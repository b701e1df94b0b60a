"""The one front door: build or load an index, ask questions, hold conversations."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, replace
from datetime import date
from pathlib import Path

from qa.articles import FileProblem, load_articles
from qa.config import Config
from qa.errors import InvalidQuestionError, NoArticlesError, UnknownArticleError
from qa.index import Hit, IndexUpdate, PassageIndex, index_exists
from qa.models import Models
from qa.reader import SentenceReader, key_terms
from qa.retrieve import Filters, Retrieval, Retriever, parse_date
from qa.types import Answer, Article

log = logging.getLogger(__name__)

_CONTROL = re.compile(r"[\x00-\x1f\x7f]+")
_FOLLOW_UP = re.compile(
    r"^(and|also|but|so|what about|how about)\b"
    r"|\b(he|she|him|her|his|hers|they|them|their|it|its|that|this|those|these|there)\b",
    re.IGNORECASE,
)


def clean_question(question: str, max_chars: int) -> str:
    """Return the question with control characters and extra spaces removed.

    Raises ``InvalidQuestionError`` for a question that is empty or too long.
    """
    if not isinstance(question, str):
        raise InvalidQuestionError("The question must be text.")
    cleaned = " ".join(_CONTROL.sub(" ", question).split())
    if not cleaned:
        raise InvalidQuestionError("The question is empty: type a question about the articles.")
    if len(cleaned) > max_chars:
        raise InvalidQuestionError(
            f"The question is {len(cleaned):,} characters long; the limit is {max_chars:,}. Ask something shorter."
        )
    return cleaned


def make_filters(sources: Sequence[str] | None, since: str | date | None, until: str | date | None) -> Filters | None:
    """Return the article filters for ``ask``/``search``; raises for an unreadable date."""
    bounds = []
    for name, value in (("since", since), ("until", until)):
        day = parse_date(value) if value not in (None, "") else None
        if value not in (None, "") and day is None:
            raise InvalidQuestionError(f"{name}={value!r} is not a date: use YYYY-MM-DD.")
        bounds.append(day)
    wanted = tuple(s.strip() for s in sources or () if s and s.strip())
    filters = Filters(wanted, bounds[0], bounds[1])
    return filters if filters.active else None


class Assistant:
    """Answers questions about a collection of articles, citing the sentences it used."""

    def __init__(
        self,
        index: PassageIndex,
        config: Config | None = None,
        models: Models | None = None,
        problems: Sequence[FileProblem] = (),
        index_dir: str | Path | None = None,
    ) -> None:
        self.config = config or Config.from_env()
        self.index_dir = Path(index_dir) if index_dir is not None else None
        self.models = models or Models(self.config.embed_model, self.config.cross_encoder, self.config.embed_batch_size)
        self.index = index
        self.problems = tuple(problems)
        self._retriever = Retriever(index, self.config, self.models.embedder, self.models.cross_encoder)

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
        if isinstance(paths, (str, Path)):
            paths = [paths]
        paths = list(paths)
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
        models = models or Models(config.embed_model, config.cross_encoder, config.embed_batch_size)
        index = PassageIndex.build(articles, config, models.embedder(), show_progress=show_progress)
        if index_dir is not None:
            index.persist(index_dir)
        return cls(index, config, models, problems, index_dir)

    @classmethod
    def load(cls, index_dir: str | Path, config: Config | None = None, models: Models | None = None) -> Assistant:
        """Load a persisted index (nothing is embedded; models load on first question)."""
        config = config or Config.from_env()
        models = models or Models(config.embed_model, config.cross_encoder, config.embed_batch_size)
        index = PassageIndex.load(index_dir, config, models.embedder)
        return cls(index, config, models, index_dir=index_dir)

    @classmethod
    def load_or_build(
        cls, index_dir: str | Path, seed_paths: Iterable[str | Path], config: Config | None = None
    ) -> Assistant:
        """Load ``index_dir``, or build it from ``seed_paths`` when it holds no index yet."""
        if index_exists(index_dir):
            return cls.load(index_dir, config)
        log.info("No index in %s yet: building it from %s", index_dir, ", ".join(map(str, seed_paths)))
        return cls.from_articles(seed_paths, index_dir=index_dir, config=config)

    # ---- updates -------------------------------------------------------------------
    def add(self, paths: Iterable[str | Path] | str | Path, show_progress: bool = True) -> IndexUpdate:
        """Index new and changed articles under ``paths`` (unchanged ones are not re-embedded).

        When the assistant has an ``index_dir``, the updated index replaces it atomically.
        Files that cannot be used are reported in the result's ``problems``.
        """
        if isinstance(paths, (str, Path)):
            paths = [paths]
        report = load_articles(list(paths), self.config.max_file_bytes)
        update = self.index.update(report.articles, self.config, self.models.embedder(), show_progress)
        if self.index_dir is not None and (update.added or update.replaced):
            self.index.persist(self.index_dir)
        return replace(update, problems=report.problems + update.duplicates)

    def remove(self, doc_ids: Sequence[str] | str) -> list[str]:
        """Delete articles (FAISS vectors, docstore passages, article text); persists if it has an index_dir.

        Raises ``UnknownArticleError`` if an id is not indexed; nothing is removed then.
        """
        ids = [doc_ids] if isinstance(doc_ids, str) else list(doc_ids)
        try:
            removed = self.index.remove(ids)
        except KeyError as exc:
            raise UnknownArticleError(f"Not in the index: {exc.args[0]}. `qa articles` lists the indexed ids.") from exc
        if self.index_dir is not None:
            self.index.persist(self.index_dir)
        return removed

    # ---- questions ---------------------------------------------------------------
    def ask(
        self,
        question: str,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
        context_terms: Sequence[str] = (),
    ) -> Answer:
        """Answer one question from the articles, with citations, or abstain.

        ``sources`` and ``since``/``until`` (``YYYY-MM-DD``, inclusive) restrict which
        articles are searched. ``context_terms`` (names from earlier turns of a
        conversation) are added to what is searched and scored, but the answer never
        needs to mention them.
        """
        question = clean_question(question, self.config.max_question_chars)
        filters = make_filters(sources, since, until)
        cross_encoder = self.models.cross_encoder()  # loaded once, before the clock starts
        self.models.embedder()
        started = time.perf_counter()
        own_terms = key_terms(question)
        resolved = f"{question} ({' '.join(context_terms)})" if context_terms else question
        retrieval = self._retriever.retrieve(resolved, filters=filters)
        read_started = time.perf_counter()
        reading = SentenceReader(cross_encoder, self.config).read(
            resolved, retrieval.hits, self.index.article, required_terms=own_terms
        )
        done = time.perf_counter()
        return Answer(
            question=question,
            text=reading.text,
            citations=reading.citations,
            abstained=reading.abstained,
            timings={**retrieval.timings, "read": round(done - read_started, 4), "total": round(done - started, 4)},
            resolved_question=resolved,
            evidence=reading.evidence,
        )

    def search(
        self,
        question: str,
        top_k: int = 10,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
    ) -> list[Hit]:
        """Return the ``top_k`` passages retrieved (and reranked) for ``question``, best first."""
        return list(self.retrieve(question, top_k, sources=sources, since=since, until=until).hits)

    def retrieve(
        self,
        question: str,
        top_k: int = 10,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
    ) -> Retrieval:
        """Like ``search``, with the seconds each retrieval stage took."""
        question = clean_question(question, self.config.max_question_chars)
        self.models.embedder()
        if self.config.rerank:
            self.models.cross_encoder()
        return self._retriever.retrieve(question, top_k, make_filters(sources, since, until))

    def chat(self, history: Sequence[Turn] = ()) -> Conversation:
        """Start a conversation (or resume one from ``history``) for follow-up questions."""
        return Conversation(self, history)

    # ---- articles ------------------------------------------------------------------
    def article(self, doc_id: str) -> Article:
        """Return the article with ``doc_id``; raises ``KeyError`` if there is none."""
        return self.index.article(doc_id)

    def articles(self) -> list[Article]:
        """Return every indexed article."""
        return self.index.articles()


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: Answer


class Conversation:
    """A dialogue with the assistant; follow-up questions borrow names from earlier turns.

    A question that refers back ("Who said that?", "And what did Pakistan say?") is
    searched together with the names of the previous question and of the sentence that
    answered it; ``Answer.resolved_question`` shows what was searched.
    """

    max_context_terms = 8

    def __init__(self, assistant: Assistant, history: Sequence[Turn] = ()) -> None:
        self.assistant = assistant
        self._turns: list[Turn] = list(history)

    @property
    def history(self) -> tuple[Turn, ...]:
        """The turns so far, oldest first."""
        return tuple(self._turns)

    def reset(self) -> None:
        """Forget the conversation."""
        self._turns.clear()

    def ask(
        self,
        question: str,
        *,
        sources: Sequence[str] | None = None,
        since: str | date | None = None,
        until: str | date | None = None,
    ) -> Answer:
        """Answer ``question`` in the context of the conversation (filters as in ``Assistant.ask``)."""
        answer = self.assistant.ask(
            question, sources=sources, since=since, until=until, context_terms=self.context_terms(question)
        )
        self._turns.append(Turn(answer.question, answer))
        return answer

    def context_terms(self, question: str) -> list[str]:
        """Return the names a follow-up question borrows from the previous turn (or none)."""
        if not self._turns or not _FOLLOW_UP.search(question):
            return []
        previous = self._turns[-1]
        own = {t.lower() for t in key_terms(question)}
        # A question with names of its own borrows only the topic of the previous question;
        # one that only points back ("Who said that?") also borrows the names in the answer.
        sources = [previous.question]
        if not own and previous.answer.citations:
            sources.append(previous.answer.citations[0].quote)
        terms: list[str] = []
        for source in sources:
            for term in key_terms(source):
                if term.lower() not in own and term not in terms:
                    terms.append(term)
        return terms[: self.max_context_terms]
