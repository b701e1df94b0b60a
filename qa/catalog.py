"""What a library holds, from the headings every library keeps in memory: how big it is
(``LibrarySummary``) and its catalog, a page at a time (``Catalog``). No article is read to make either,
so a page of a library of 50,000 articles costs milliseconds, not the parsing of 500 MB of text."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import date
from typing import Any

from qa.errors import InvalidArgumentError
from qa.text import parse_date


@dataclass(frozen=True)
class LibrarySummary:
    """How big a library is and where its passage vectors live."""

    articles: int
    passages: int
    vectors: str  # "faiss" (the index folder), "milvus://host:port/library" or "milvus-vectors://host:port/collection"
    changes: int = 0  # how many times this process has changed the library (a page polls it, not the articles)


# An article as a library lists it (``listing()``): (doc_id, title, date, source, url, passages). A plain tuple:
# a library of 50,000 articles makes these in 10 ms where as many frozen dataclasses take 90 ms, so a
# ``CatalogEntry`` is made only for the articles of the page asked for.
Listed = tuple[str, str, str | None, str | None, str | None, int]


@dataclass(frozen=True)
class CatalogEntry:
    """One article as the library lists it, without its text: its heading and number of passages."""

    doc_id: str
    title: str
    date: str | None
    source: str | None
    url: str | None  # None also for articles indexed before headings kept their url
    passages: int

    def to_dict(self) -> dict[str, Any]:
        """Return the entry as a JSON-serialisable dict."""
        return asdict(self)

    def describe(self) -> str:
        """One line, as ``qa articles`` prints it: ``doc id<TAB>title (source, date)<TAB>N passage(s)``."""
        meta = ", ".join(x for x in (self.source, self.date) if x)
        return f"{self.doc_id}\t{self.title}{f' ({meta})' if meta else ''}\t{self.passages} passage(s)"


@dataclass(frozen=True)
class Catalog:
    """A page of a library's catalog.

    ``total`` counts the articles that match the query (all of them without one); ``entries`` are those
    from ``offset`` on, at most the ``limit`` asked for. ``sources`` are the sources of the whole library,
    sorted, whatever the query (a choice of sources to search in).
    """

    total: int
    entries: tuple[CatalogEntry, ...]
    offset: int = 0
    sources: tuple[str, ...] = ()

    @property
    def more(self) -> bool:
        """True when entries follow this page."""
        return self.offset + len(self.entries) < self.total

    def to_dict(self) -> dict[str, Any]:
        """Return the page as a JSON-serialisable dict."""
        return {
            "total": self.total,
            "offset": self.offset,
            "entries": [e.to_dict() for e in self.entries],
            "sources": list(self.sources),
        }

    @classmethod
    def of(
        cls,
        listing: Sequence[Listed],
        offset: int = 0,
        limit: int | None = None,
        newest_first: bool = True,
        query: str | None = None,
    ) -> Catalog:
        """A page of ``listing`` (every article, in indexing order), ordered and filtered as
        ``Assistant.catalog`` documents; raises ``InvalidArgumentError`` for a bad offset, limit or query."""
        offset, limit = _count(offset, "offset"), None if limit is None else _count(limit, "limit")
        if query is not None and not isinstance(query, str):
            raise InvalidArgumentError(f"query must be text, not {query!r:.80}.")
        sources = tuple(sorted({row[3] for row in listing if row[3]}))
        needle = (query or "").strip().casefold()
        kept = [row for row in listing if _matches(row, needle)] if needle else listing
        stop = None if limit is None else offset + limit
        page = [kept[i] for i in _newest_first(kept)[offset:stop]] if newest_first else kept[offset:stop]
        return cls(len(kept), tuple(CatalogEntry(*row) for row in page), offset, sources)


def _matches(row: Listed, needle: str) -> bool:
    """True when the article's title, doc id or source contains ``needle`` (already case-folded)."""
    return needle in row[1].casefold() or needle in row[0].casefold() or needle in (row[3] or "").casefold()


def _newest_first(listing: Sequence[Listed]) -> list[int]:
    """The places of ``listing`` (in indexing order) newest first: dated before undated, the latest day first,
    then the latest indexed first. A date that cannot be read as a day (``qa.text.parse_date``) counts as
    undated."""
    days = map(parse_date, [row[2] for row in listing])
    keys = [(day is not None, day or date.min, place) for place, day in enumerate(days)]
    keys.sort(reverse=True)
    return [key[2] for key in keys]


def _count(value: object, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise InvalidArgumentError(f"{name} must be a whole number, 0 or more, not {value!r:.80}.")
    return value
