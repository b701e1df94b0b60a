"""How a question is asked (``AskOptions``, or the keywords ``AskChanges``) and which articles a search
may read (``Filters``, what the options become once checked)."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, fields, replace
from datetime import date
from typing import Any, TypedDict

from typing_extensions import Unpack

from qa.text import parse_date
from qa.types import Article


@dataclass(frozen=True)
class Filters:
    """Which articles may be searched: by source (case-insensitive), date range (inclusive), and id."""

    sources: tuple[str, ...] = ()
    since: date | None = None
    until: date | None = None
    # The day the question is asked as of: later articles are left out, recent ones favoured.
    as_of: date | None = None
    # Only these articles (None: any); a follow-up searches its conversation's articles first.
    doc_ids: frozenset[str] | None = None

    @property
    def active(self) -> bool:
        """True when any filter is set."""
        dated = any(d is not None for d in (self.since, self.until, self.as_of))
        return bool(self.sources) or dated or self.doc_ids is not None

    def allows(self, article: Article) -> bool:
        """True when ``article`` passes every filter (an undated article fails a date range but
        not ``as_of``: nothing says it was written later)."""
        return self.admits(article.doc_id, article.source, article.date)

    def admits(self, doc_id: str, source: str | None, day_written: str | None) -> bool:
        """``allows`` for an article known by its id, source and date only."""
        if self.doc_ids is not None and doc_id not in self.doc_ids:
            return False
        if self.sources and (source or "").casefold() not in {s.casefold() for s in self.sources}:
            return False
        if self.since is None and self.until is None and self.as_of is None:
            return True
        day = parse_date(day_written)
        if day is None:
            return self.since is None and self.until is None
        return (
            (self.since is None or day >= self.since)
            and (self.until is None or day <= self.until)
            and (self.as_of is None or day <= self.as_of)
        )


class AskChanges(TypedDict, total=False):
    """``AskOptions`` fields given as keywords (``ask(question, sources=["cnn.com"])``); ``within`` is
    ``doc_ids``."""

    sources: tuple[str, ...] | list[str] | str | None
    since: str | date | None
    until: str | date | None
    as_of: str | date | None
    within: Sequence[str] | None
    doc_ids: Sequence[str] | None
    strictness: float | None
    reader: str | None


@dataclass(frozen=True)
class AskOptions:
    """How a question is asked: which articles are searched, how strict the assistant is, who writes.

    ``sources`` (one name or several, case-insensitive) and ``since``/``until`` (``YYYY-MM-DD``,
    inclusive) restrict the articles searched, and ``doc_ids`` to those articles; ``as_of``
    (``YYYY-MM-DD`` or ``"today"``) answers as a reader would on that day. ``strictness`` (0 to 1;
    None: the configured or calibrated default) is the estimated probability that the evidence
    answers below which the assistant abstains. ``reader`` is ``"sentence"`` or ``"llm"`` (None:
    the LLM when one is configured). Empty strings mean "not set", as a form sends them.
    """

    sources: tuple[str, ...] | str | None = None
    since: str | date | None = None
    until: str | date | None = None
    as_of: str | date | None = None
    doc_ids: tuple[str, ...] | frozenset[str] | None = None
    strictness: float | None = None
    reader: str | None = None

    def overridden(self, **changes: Unpack[AskChanges]) -> AskOptions:
        """A copy with the ``changes`` that are set (not None or empty) applied; ``within`` is ``doc_ids``."""
        given: dict[str, Any] = {k: v for k, v in changes.items() if v is not None and v != ""}
        if "within" in given:
            given["doc_ids"] = given.pop("within")
        unknown = sorted(set(given) - {f.name for f in fields(self)})
        if unknown:
            allowed = ", ".join(f.name for f in fields(self))
            raise TypeError(f"unknown question option(s) {', '.join(unknown)}: use {allowed} (or within)")
        return replace(self, **given)
