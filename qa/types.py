"""Typed, immutable values that the pipeline stages hand each other.

Offsets are character offsets into ``Article.text``: for every ``Sentence``, ``Passage``
and ``Citation`` of an article, ``article.text[x.start:x.end] == x.text`` (or ``.quote``).
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any


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
    """One sentence of an article, with its exact character span."""

    doc_id: str
    start: int
    end: int
    text: str


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

    def to_dict(self) -> dict[str, Any]:
        """Return the citation as a JSON-serialisable dict."""
        return asdict(self)


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
class Answer:
    """The assistant's reply to one question.

    ``text`` contains the answer sentences, each followed by its citation marker ``[n]``.
    When ``abstained`` is true it says that the articles do not answer the question, names
    the question's terms that no article mentions (``missing``), and may go on with the
    nearest information the articles do hold, clearly marked as not an answer: then
    ``citations`` are those nearest sentences (else empty). ``confidence`` is the estimated
    probability that the evidence answers (``qa.abstain``); ``reason`` says why it abstained
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
                lines.append(f'[{c.number}] {where}{link}, chars {c.start}-{c.end}: "{c.quote}"')
        return "\n".join(lines)


def removed_note(count: int) -> str:
    """Return the note that says how many generated sentences were removed as unsupported."""
    sentences = "sentence" if count == 1 else "sentences"
    return f"{count} {sentences} of the generated answer removed: not supported by the sources they cited"
