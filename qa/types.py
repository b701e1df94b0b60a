"""Typed, immutable values that the pipeline stages hand each other. Offsets are character offsets into
``Article.text``: for every ``Sentence``, ``Passage`` and ``Citation`` of an article,
``article.text[x.start:x.end] == x.text`` (or ``.quote``)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from functools import cached_property
from typing import Any

from qa.catalog import Catalog as Catalog  # the library's catalog and summary, kept beside (re-exported)
from qa.catalog import CatalogEntry as CatalogEntry
from qa.catalog import LibrarySummary as LibrarySummary
from qa.catalog import Listed as Listed


@dataclass(frozen=True)
class Article:
    """A news article as stored in the index; citations point into ``text``."""

    doc_id: str
    title: str
    text: str
    date: str | None = None
    source: str | None = None
    url: str | None = None
    path: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """Return the article as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class Sentence:
    """One sentence of an article, with its exact character span, its entities and, for reported
    speech, its speaker (from the annotation stored with the index)."""

    doc_id: str
    start: int
    end: int
    text: str
    speaker: Speaker | None = None
    entities: tuple[Entity, ...] = ()


@dataclass(frozen=True)
class Entity:
    """A named entity of an article: ``article.text[start:end]`` is its text; ``label`` is spaCy's."""

    start: int
    end: int
    label: str


@dataclass(frozen=True)
class Speaker:
    """Who said a sentence of reported speech, resolved to the name the article gives.

    ``name`` is the speaker's fullest name in the article ("Hua Chunying", "Chinese Embassy");
    ``role`` what the article calls them ("Chinese foreign ministry spokesperson"), when it does;
    ``start``/``end`` the offsets in ``Article.text`` of the mention that names them (None when
    only the headline names them). ``mention_start``/``mention_end`` are the words of the sentence
    itself that refer to the speaker ("she", "the spokesperson", "the statement"; None when the
    sentence continues a quotation without attribution), and ``kind`` says which they are:
    ``name``, ``pronoun``, ``role``, ``document`` or ``continuation``.
    """

    name: str
    role: str | None = None
    start: int | None = None
    end: int | None = None
    mention_start: int | None = None
    mention_end: int | None = None
    kind: str = "name"

    @property
    def named_in_sentence(self) -> bool:
        """True when the sentence itself names the speaker (nothing to add beside a quote of it)."""
        return self.kind == "name"

    def label(self) -> str:
        """``Name (role)``, as shown beside a quote whose sentence does not name its speaker."""
        return f"{self.name} ({self.role})" if self.role else self.name

    def to_dict(self) -> dict[str, Any]:
        """Return the speaker as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class SentenceNotes:
    """What annotation found in one sentence: its span, its entities and, for reported speech, its speaker."""

    start: int
    end: int
    entities: tuple[Entity, ...] = ()
    speaker: Speaker | None = None


@dataclass(frozen=True)
class ArticleNotes:
    """The annotation of one article: every sentence, in order (they are also its chunking's sentences)."""

    doc_id: str
    sentences: tuple[SentenceNotes, ...]

    def to_json(self) -> dict[str, Any]:
        """A compact JSON form (stored with the index)."""
        return {
            "doc_id": self.doc_id,
            "sentences": [
                [s.start, s.end, [[e.start, e.end, e.label] for e in s.entities], s.speaker and s.speaker.to_dict()]
                for s in self.sentences
            ],
        }

    @cached_property
    def by_start(self) -> dict[int, SentenceNotes]:
        """The sentences by start offset."""
        return {s.start: s for s in self.sentences}

    def sentence(self, text: str, start: int, end: int) -> Sentence:
        """The sentence ``text[start:end]`` of the article, with what annotation found in it."""
        note = self.by_start.get(start)
        speaker, entities = (note.speaker, note.entities) if note is not None else (None, ())
        return Sentence(self.doc_id, start, end, text[start:end], speaker, entities)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> ArticleNotes:
        """Read ``to_json``'s form back."""
        sentences = tuple(
            SentenceNotes(start, end, tuple(Entity(*e) for e in entities), Speaker(**speaker) if speaker else None)
            for start, end, entities, speaker in data["sentences"]
        )
        return cls(data["doc_id"], sentences)


@dataclass(frozen=True)
class Passage:
    """A run of consecutive sentences of one article: the unit that is embedded."""

    doc_id: str
    position: int
    start: int
    end: int
    text: str
    sentences: tuple[Sentence, ...]

    @property
    def passage_id(self) -> str:
        """Stable id of the passage: ``<doc_id>::<position>``."""
        return f"{self.doc_id}::{self.position}"


@dataclass(frozen=True)
class Name:
    """A name that a question asks about, which the evidence must mention to answer it.

    ``label`` is the kind of name (spaCy's entity label, e.g. ``PERSON``, ``ORG``, ``GPE``;
    ``ACRONYM``; or ``""`` when it was read by capitalisation alone)."""

    text: str
    label: str = ""


# How an abstention begins, and how it sets apart the nearest information it offers.
NO_ANSWER = "The articles do not answer this question."
NEAREST = "Nearest information in the articles (not an answer):"


@dataclass(frozen=True)
class Citation:
    """A quoted sentence that supports part of an answer."""

    number: int
    doc_id: str
    title: str
    source: str | None
    date: str | None
    url: str | None
    quote: str
    start: int
    end: int
    score: float
    speaker: Speaker | None = None  # who said the quoted sentence, when it is reported speech

    def to_dict(self) -> dict[str, Any]:
        """Return the citation as a JSON-serialisable dict."""
        return asdict(self)

    @property
    def attribution(self) -> str:
        """``Name (role)`` of the speaker when the quote does not name them itself, else ``""``: shown
        beside the quote on every surface ("Hua Chunying (Chinese foreign ministry spokesperson): …")."""
        return self.speaker.label() if self.speaker is not None and not self.speaker.named_in_sentence else ""

    @classmethod
    def quoting(
        cls, number: int, article: Article, start: int, end: int, score: float, speaker: Speaker | None = None
    ) -> Citation:
        """Citation ``number`` of ``article.text[start:end]``, exactly as the article has it."""
        return cls(
            number=number,
            doc_id=article.doc_id,
            title=article.title,
            source=article.source,
            date=article.date,
            url=article.url,
            quote=article.text[start:end],
            start=start,
            end=end,
            score=round(float(score), 4),
            speaker=speaker,
        )


@dataclass(frozen=True)
class Evidence:
    """A sentence the reader scored, ranked: what the answer was chosen from."""

    doc_id: str
    start: int
    end: int
    text: str
    score: float

    def to_dict(self) -> dict[str, Any]:
        """Return the evidence as a JSON-serialisable dict."""
        return asdict(self)


@dataclass(frozen=True)
class ShortAnswer:
    """The few words that answer a question asking for a person, organisation, date, number, place or named
    thing: ``text == article.text[start:end]`` of article ``doc_id``, inside the quote of citation ``number``."""

    text: str
    doc_id: str
    start: int
    end: int
    number: int  # the citation whose sentence holds it
    kind: str  # what was asked for: person, org, time, number, place, thing

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def within(self, citations: Sequence[Citation]) -> ShortAnswer | None:
        """This short answer numbered as the citation of ``citations`` whose quote holds it (None if none does)."""
        holding = (c for c in citations if c.doc_id == self.doc_id and c.start <= self.start and self.end <= c.end)
        found = next(holding, None)
        return replace(self, number=found.number) if found else None


@dataclass(frozen=True)
class Answer:
    """The assistant's reply to one question.

    ``text`` contains the answer sentences, each followed by its citation marker ``[n]``.
    When ``abstained`` is true it says that the articles do not answer the question, names
    the question's terms that no article mentions (``missing``), and may go on with the
    nearest information the articles do hold, clearly marked as not an answer: then
    ``citations`` are those nearest sentences (else empty). ``confidence`` is the estimated
    probability that the evidence answers (``qa.pipeline.abstain``); ``reason`` says why it abstained
    (empty for an answer). ``timings`` holds seconds per stage.
    ``resolved_question`` is what was searched (differs from ``question`` for follow-ups).
    ``evidence`` holds the best-scored sentences, best first, whether or not they were used.

    ``reader`` says what wrote the text: ``"sentence"`` (quoted sentences), ``"llm"`` (a
    generative answer whose sentences were each checked against the sentences they cite),
    or ``"llm-fallback"`` (the LLM's answer had no supported sentence, so the sentences are
    quoted instead). ``draft`` is the LLM's text before that check (its ``[n]`` number the
    first ``evidence`` sentences); ``dropped`` are the draft's sentences removed as
    unsupported, and ``unsupported`` how many they were.
    """

    question: str
    text: str
    citations: tuple[Citation, ...]
    abstained: bool
    timings: dict[str, float] = field(default_factory=dict)
    resolved_question: str = ""
    evidence: tuple[Evidence, ...] = ()
    reader: str = "sentence"
    draft: str = ""
    dropped: tuple[str, ...] = ()
    unsupported: int = 0
    confidence: float | None = None
    missing: tuple[str, ...] = ()
    reason: str = ""
    short: ShortAnswer | None = None  # the short answer, shown first, when the question asks for one

    @property
    def nearest(self) -> tuple[Citation, ...]:
        """What the articles do say, offered with an abstention as not an answer (empty for an answer)."""
        return self.citations if self.abstained else ()

    def to_dict(self) -> dict[str, Any]:
        """Return the answer as a JSON-serialisable dict (citations as objects)."""
        return {
            "question": self.question,
            "resolved_question": self.resolved_question or self.question,
            "text": self.text,
            "citations": [c.to_dict() for c in self.citations],
            "abstained": self.abstained,
            "timings": dict(self.timings),
            "evidence": [e.to_dict() for e in self.evidence],
            "reader": self.reader,
            "draft": self.draft,
            "dropped": list(self.dropped),
            "unsupported": self.unsupported,
            "confidence": self.confidence,
            "missing": list(self.missing),
            "reason": self.reason,
            "short": self.short.to_dict() if self.short else None,
        }

    def to_markdown(self) -> str:
        """Return the answer with a numbered list of its sources, as Markdown."""
        lines = [self.text]
        if self.unsupported:
            lines += ["", f"({removed_note(self.unsupported)})"]
        if self.citations:
            lines.append("")
            lines.append("Sources:")
            for c in self.citations:
                meta = ", ".join(x for x in (c.source, c.date) if x)
                where = f"{c.title}" + (f" ({meta})" if meta else "")
                link = f" <{c.url}>" if c.url else ""
                said = f"{c.attribution}: " if c.attribution else ""
                lines.append(f'[{c.number}] {where}{link}, chars {c.start}-{c.end}: {said}"{c.quote}"')
        return "\n".join(lines)


def removed_note(count: int) -> str:
    """Return the note that says how many generated sentences were removed as unsupported."""
    sentences = "sentence" if count == 1 else "sentences"
    return f"{count} {sentences} of the generated answer removed: not supported by the sources they cited"


@dataclass(frozen=True)
class FileProblem:
    """Something wrong with an input: ``skipped`` when nothing of it was indexed."""

    path: str
    reason: str
    skipped: bool = True

    def __str__(self) -> str:
        verb = "skipped" if self.skipped else "note"
        return f"{self.path}: {verb}: {self.reason}"


# The article files that can be read (``qa.ingest.articles``).
SUPPORTED_SUFFIXES = (".txt", ".md", ".markdown", ".html", ".htm", ".json", ".jsonl")


@dataclass(frozen=True)
class LoadReport:
    """Articles that loaded, and the problems met on the way."""

    articles: tuple[Article, ...]
    problems: tuple[FileProblem, ...] = field(default_factory=tuple)


@dataclass(frozen=True)
class Hit:
    """A retrieved passage with its retrieval score (cosine similarity, or the reranker's logit)."""

    passage: Passage
    score: float


@dataclass(frozen=True)
class IndexUpdate:
    """What an incremental update did."""

    added: tuple[str, ...]
    replaced: tuple[str, ...]
    unchanged: tuple[str, ...]
    duplicates: tuple[FileProblem, ...]
    passages_embedded: int
    problems: tuple[FileProblem, ...] = ()


@dataclass(frozen=True)
class Retrieval:
    """The passages for the reader, best first, and the seconds each stage took."""

    hits: tuple[Hit, ...]
    timings: dict[str, float]


@dataclass(frozen=True)
class Turn:
    """One exchange of a conversation."""

    question: str
    answer: Answer


@dataclass(frozen=True)
class FeedItemResult:
    """One item of a feed refresh: ``outcome`` added, updated, unchanged or failed, and why (``reason``)."""

    url: str
    outcome: str
    title: str = ""
    doc_id: str | None = None
    reason: str = ""


@dataclass(frozen=True)
class FeedStatus:
    """A followed feed: ``every`` seconds between refreshes, its last refresh (local time) and outcome."""

    url: str
    title: str
    every: int
    refreshed_at: str | None = None
    outcome: str = "not refreshed yet"
    failed: bool = False  # the feed itself could not be read
    items: tuple[FeedItemResult, ...] = ()  # of the refresh just made
