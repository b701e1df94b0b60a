"""The one front door: build or load an index, ask questions, hold conversations."""

from __future__ import annotations

import logging
import re
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path

from qa.articles import FileProblem, load_articles
from qa.config import Config
from qa.errors import InvalidQuestionError, NoArticlesError
from qa.index import Hit, PassageIndex, index_exists
from qa.models import Models
from qa.reader import SentenceReader, key_terms
from qa.retrieve import DenseRetriever
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


class Assistant:
    """Answers questions about a collection of articles, citing the sentences it used."""

    def __init__(
        self,
        index: PassageIndex,
        config: Config | None = None,
        models: Models | None = None,
        problems: Sequence[FileProblem] = (),
    ) -> None:
        self.config = config or Config.from_env()
        self.models = models or Models(self.config.embed_model, self.config.cross_encoder, self.config.embed_batch_size)
        self.index = index
        self.problems = tuple(problems)
        self._retriever = DenseRetriever(index, self.models.embedder, self.config.top_k)

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
        return cls(index, config, models, problems)

    @classmethod
    def load(cls, index_dir: str | Path, config: Config | None = None, models: Models | None = None) -> Assistant:
        """Load a persisted index (nothing is embedded; models load on first question)."""
        config = config or Config.from_env()
        models = models or Models(config.embed_model, config.cross_encoder, config.embed_batch_size)
        index = PassageIndex.load(index_dir, config, models.embedder)
        return cls(index, config, models)

    @classmethod
    def load_or_build(
        cls, index_dir: str | Path, seed_paths: Iterable[str | Path], config: Config | None = None
    ) -> Assistant:
        """Load ``index_dir``, or build it from ``seed_paths`` when it holds no index yet."""
        if index_exists(index_dir):
            return cls.load(index_dir, config)
        log.info("No index in %s yet: building it from %s", index_dir, ", ".join(map(str, seed_paths)))
        return cls.from_articles(seed_paths, index_dir=index_dir, config=config)

    # ---- questions ---------------------------------------------------------------
    def ask(self, question: str, *, context_terms: Sequence[str] = ()) -> Answer:
        """Answer one question from the articles, with citations, or abstain.

        ``context_terms`` (names from earlier turns of a conversation) are added to what
        is searched and scored, but the answer never needs to mention them.
        """
        question = clean_question(question, self.config.max_question_chars)
        cross_encoder = self.models.cross_encoder()  # loaded once, before the clock starts
        self.models.embedder()
        started = time.perf_counter()
        own_terms = key_terms(question)
        resolved = f"{question} ({' '.join(context_terms)})" if context_terms else question
        hits = self._retriever.retrieve(resolved)
        retrieved = time.perf_counter()
        reading = SentenceReader(cross_encoder, self.config).read(
            resolved, hits, self.index.article, required_terms=own_terms
        )
        done = time.perf_counter()
        return Answer(
            question=question,
            text=reading.text,
            citations=reading.citations,
            abstained=reading.abstained,
            timings={
                "retrieve": round(retrieved - started, 4),
                "read": round(done - retrieved, 4),
                "total": round(done - started, 4),
            },
            resolved_question=resolved,
            evidence=reading.evidence,
        )

    def search(self, question: str, top_k: int = 10) -> list[Hit]:
        """Return the ``top_k`` passages retrieved for ``question``, best first (no reading)."""
        question = clean_question(question, self.config.max_question_chars)
        return self._retriever.retrieve(question, top_k)

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

    def ask(self, question: str) -> Answer:
        """Answer ``question`` in the context of the conversation."""
        answer = self.assistant.ask(question, context_terms=self.context_terms(question))
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
