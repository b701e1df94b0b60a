"""RSS and Atom feeds: reading one (feedparser, from bytes fetched by ``qa.ingest.http``), and the record
of the feeds a library follows, kept in ``feeds.json`` beside the index versions.

``feeds.json`` is not part of an index version (versions are immutable and checksummed): it is the
library's subscription list and what each feed's refreshes remembered (ETag/Last-Modified, the items
done with, the items to try again, when it was last refreshed and how that went). It is replaced
atomically (temporary file, fsync, rename) by whoever holds the index's write lock.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any
from urllib.parse import urljoin
from xml.sax import SAXParseException

from qa.errors import FeedListError, FetchError, InvalidArgumentError
from qa.ingest.http import Response, http_url
from qa.types import FeedItemResult, FeedStatus

FEEDS_FILE = "feeds.json"
FEED_ACCEPT = "application/rss+xml, application/atom+xml, application/xml;q=0.9, text/xml;q=0.9, */*;q=0.1"
FORMAT = 1
SEEN_KEPT = 5_000  # item ids remembered per feed (the oldest are forgotten first)
TRIES = 3  # an item that fails this many refreshes running is given up
_EVERY = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(s|sec|m|min|h|hr|d|day)s?\s*$", re.I)
_UNIT_SECONDS = {"s": 1, "sec": 1, "m": 60, "min": 60, "h": 3600, "hr": 3600, "d": 86400, "day": 86400}


def parse_every(text: str | int | float) -> int:
    """Seconds of a refresh interval: ``90s``, ``30m``, ``6h``, ``1d`` (or a number of seconds)."""
    if isinstance(text, (int, float)) and not isinstance(text, bool):
        seconds = float(text)
    else:
        match = _EVERY.match(str(text))
        if match is None:
            raise InvalidArgumentError(f"{text!r} is not an interval: use a number and a unit, e.g. 90s, 30m, 6h, 1d.")
        seconds = float(match.group(1)) * _UNIT_SECONDS[match.group(2).lower()]
    if not 1 <= seconds <= 366 * 86400:
        raise InvalidArgumentError(f"A refresh interval of {seconds:g} s is out of range: use 1 s to 366 days.")
    return round(seconds)


def format_every(seconds: int) -> str:
    """``seconds`` in the largest unit that divides it (1800 gives ``30m``)."""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds % size == 0:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


@dataclass(frozen=True)
class FeedItem:
    """One entry of a feed: its id (the feed's, else its link), the article's URL, title and date (YYYY-MM-DD)."""

    id: str
    url: str
    title: str = ""
    date: str | None = None


@dataclass(frozen=True)
class ParsedFeed:
    """A feed as read: its title and items, in the feed's order (newest first in most feeds)."""

    title: str
    items: tuple[FeedItem, ...]


def parse_feed(response: Response) -> ParsedFeed:
    """Read the RSS or Atom feed in ``response``; raises ``FetchError`` when it is not one."""
    import feedparser

    headers = {"content-location": response.final_url, "content-type": response.media_type or "application/xml"}
    parsed = feedparser.parse(response.body, response_headers=headers)  # bytes: feedparser fetches nothing itself
    problem = parsed.get("bozo_exception")
    if not parsed.get("version"):
        why = f": {problem}" if problem else ""
        raise FetchError(response.url, f"not an RSS or Atom feed ({response.media_type or 'no Content-Type'}){why}")
    if isinstance(problem, SAXParseException) and not parsed.entries:  # nothing could be recovered from it
        raise FetchError(response.url, f"malformed feed: not well-formed XML ({problem.getMessage()})")
    items = []
    for entry in parsed.entries:
        link = urljoin(response.final_url, (entry.get("link") or "").strip())
        if not http_url(link):
            continue
        stamp = entry.get("published_parsed") or entry.get("updated_parsed")
        date = time.strftime("%Y-%m-%d", stamp) if stamp else None
        items.append(FeedItem(str(entry.get("id") or link), link, " ".join((entry.get("title") or "").split()), date))
    return ParsedFeed(" ".join((parsed.feed.get("title") or "").split()), tuple(items))


@dataclass(frozen=True)
class FeedRecord:
    """What ``feeds.json`` keeps of one feed."""

    url: str
    title: str = ""
    every: int = 1800  # seconds between scheduled refreshes
    etag: str | None = None
    last_modified: str | None = None
    seen: tuple[str, ...] = ()  # ids of the items done with, oldest first
    retry: tuple[tuple[FeedItem, int], ...] = ()  # items that failed, with how many refreshes running
    refreshed_at: float | None = None  # seconds since the epoch
    outcome: str = "not refreshed yet"
    failed: bool = False
    added_at: float = field(default_factory=time.time)

    def due(self, now: float) -> bool:
        """True when the feed's next scheduled refresh is at ``now`` or before."""
        return self.refreshed_at is None or now >= self.refreshed_at + self.every

    def status(self, items: tuple[FeedItemResult, ...] = ()) -> FeedStatus:
        """The feed as the front door shows it."""
        when = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(self.refreshed_at)) if self.refreshed_at else None
        return FeedStatus(self.url, self.title, self.every, when, self.outcome, self.failed, items)

    def to_json(self) -> dict[str, Any]:
        """The record as ``feeds.json`` stores it."""
        data = asdict(self)
        data["retry"] = [[asdict(item), tries] for item, tries in self.retry]
        return data

    @classmethod
    def from_json(cls, data: Mapping[str, Any]) -> FeedRecord:
        """Read ``to_json``'s form back."""
        fields = dict(data)
        fields["seen"] = tuple(fields.get("seen", ()))
        fields["retry"] = tuple((FeedItem(**item), int(tries)) for item, tries in fields.get("retry", ()))
        return cls(**fields)

    def retry_counts(self) -> dict[str, int]:
        """How many refreshes running each item to try again has failed, by item id."""
        return {item.id: tries for item, tries in self.retry}

    def remembering(self, ids: list[str]) -> FeedRecord:
        """This record with ``ids`` added to the items done with (the oldest forgotten past ``SEEN_KEPT``)."""
        seen = list(dict.fromkeys([*self.seen, *ids]))
        return replace(self, seen=tuple(seen[-SEEN_KEPT:]))


def read_registry(index_dir: str | Path) -> dict[str, FeedRecord]:
    """The feeds recorded in ``index_dir`` (none when it has no ``feeds.json``), by URL, in the order added."""
    path = Path(index_dir) / FEEDS_FILE
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise FeedListError(f"{path} cannot be read ({exc}): remove it and add the feeds again.") from None
    try:
        if data.get("format") != FORMAT:
            raise ValueError(f"format {data.get('format')!r}, expected {FORMAT}")
        records = [FeedRecord.from_json(d) for d in data["feeds"]]
    except (AttributeError, KeyError, TypeError, ValueError) as exc:
        raise FeedListError(f"{path} is not a feed list ({exc}): remove it and add the feeds again.") from None
    return {r.url: r for r in records}


def registry_text(records: Mapping[str, FeedRecord]) -> str:
    """``feeds.json``'s content for ``records`` (``qa.feeds`` writes it atomically under the write lock)."""
    return json.dumps({"format": FORMAT, "feeds": [r.to_json() for r in records.values()]}, ensure_ascii=False)


def check_feed_url(url: object) -> str:
    """``url`` as a feed URL (stripped); raises ``InvalidArgumentError`` for anything but an http(s) URL."""
    if not isinstance(url, str) or not http_url(url.strip()):
        raise InvalidArgumentError(f"{url!r:.120} is not a feed URL: give the http(s) address of an RSS or Atom feed.")
    return url.strip()
