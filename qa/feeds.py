"""The RSS and Atom feeds a library follows (``Feeds``), and their refresh on a schedule (``FeedScheduler``).

A refresh fetches a feed with the ETag/Last-Modified it gave last time (an unchanged feed answers 304
and costs nothing more), fetches the pages of its new items and adds their articles through the
assistant: pages are fetched while questions go on, and questions wait only while the index is
written. What the refresh saw goes to ``feeds.json`` in the index folder under the same locks. Every
item is reported: added, updated, unchanged or failed, with why; an item whose page failed is tried
again at the next refreshes, ``TRIES`` times in all. A feed or page that fails loses nothing indexed.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import replace
from pathlib import Path

from qa.assistant import Assistant
from qa.config import Config
from qa.errors import FetchError, InvalidArgumentError, QAError, UnknownFeedError
from qa.index.durability import WriteLock, write_atomically
from qa.ingest.feeds import (
    FEED_ACCEPT,
    FEEDS_FILE,
    TRIES,
    FeedItem,
    FeedRecord,
    check_feed_url,
    format_every,
    parse_every,
    parse_feed,
    read_registry,
    registry_text,
)
from qa.ingest.http import Fetcher, Response
from qa.ingest.web import fetch_pages, unique_articles
from qa.types import Article, FeedItemResult, FeedStatus, FileProblem, IndexUpdate

log = logging.getLogger(__name__)


def write_registry(root: Path, records: dict[str, FeedRecord]) -> None:
    """Replace ``root/feeds.json`` in one step (the caller holds the index's write lock)."""
    write_atomically(root / FEEDS_FILE, registry_text(records))


OnProgress = Callable[[str], None]  # told what a refresh is doing, as it goes
SEEN_BEFORE = "read at an earlier refresh"
OUTCOMES = ("added", "updated", "unchanged", "failed")


class Feeds:
    """The feeds of the library in ``index_dir``: follow, list, stop following, refresh.

    Refreshing needs the ``assistant`` that serves that index (``Feeds.of(assistant)``); listing and
    editing the list do not. Safe to share between threads: one refresh runs at a time.
    """

    SEEN_BEFORE = SEEN_BEFORE  # the reason given for an item already read at an earlier refresh
    parse_every = staticmethod(parse_every)  # "30m" -> 1800 seconds
    format_every = staticmethod(format_every)  # 1800 -> "30m"

    def __init__(self, index_dir: str | Path, config: Config | None = None, assistant: Assistant | None = None) -> None:
        self.index_dir = Path(index_dir)
        if assistant is not None and (assistant.index_dir is None or Path(assistant.index_dir) != self.index_dir):
            raise InvalidArgumentError("Feeds are kept in the assistant's own index folder: use Feeds.of(assistant).")
        self.config = config or (assistant.config if assistant is not None else Config.from_env())
        self.assistant = assistant
        self.fetcher = assistant.fetcher if assistant is not None else Fetcher(self.config)
        self._refreshing = threading.Lock()

    @classmethod
    def of(cls, assistant: Assistant) -> Feeds:
        """The feeds of ``assistant``'s index folder, refreshed into it."""
        if assistant.index_dir is None:
            raise InvalidArgumentError("Feeds are kept in the index folder: load the assistant from one.")
        return cls(assistant.index_dir, assistant.config, assistant)

    @staticmethod
    def describe(status: FeedStatus) -> str:
        """The feed and its last refresh as text lines: each item, but those read at earlier refreshes counted."""
        when = f"refreshed {status.refreshed_at}" if status.refreshed_at else "not refreshed yet"
        lines = [
            f"{status.title or status.url} <{status.url}> every {format_every(status.every)}, {when}: {status.outcome}"
        ]
        for i in status.items:
            if i.reason != SEEN_BEFORE:
                lines.append(
                    f"  {i.outcome:<9} {i.url}"
                    + (f" ({i.doc_id})" if i.doc_id else "")
                    + f": {i.reason}" * bool(i.reason)
                )
        if earlier := sum(i.reason == SEEN_BEFORE for i in status.items):
            lines.append(f"  {earlier} item(s) read at earlier refreshes")
        return "\n".join(lines)

    # ---- the list ----------------------------------------------------------------
    def list(self) -> list[FeedStatus]:
        """Every followed feed, in the order added, with its last refresh."""
        return [r.status() for r in read_registry(self.index_dir).values()]

    def seconds_to_next(self, now: float | None = None) -> float | None:
        """Seconds until a feed is next due for its scheduled refresh (0: one is due); None without feeds."""
        now = time.time() if now is None else now
        records = read_registry(self.index_dir).values()
        return min((0.0 if r.due(now) else r.refreshed_at + r.every - now for r in records), default=None)

    def add(
        self,
        url: str,
        every: str | int = "30m",
        refresh: bool = True,
        show_progress: bool = False,
        on_progress: OnProgress | None = None,
    ) -> FeedStatus:
        """Follow the feed at ``url``, refreshed every ``every`` (``"30m"``, or seconds); with ``refresh`` (and an
        assistant) its articles are fetched now. A feed followed already only gets the new schedule.
        Raises ``FetchError`` when ``url`` cannot be fetched or is not an RSS or Atom feed."""
        url, seconds = check_feed_url(url), parse_every(every)
        known = read_registry(self.index_dir).get(url)
        if known is not None:
            self._edit(lambda records: records.update({url: replace(records.get(url, known), every=seconds)}))
            return replace(known, every=seconds).status()
        response = self.fetcher.get(url, FEED_ACCEPT)
        record = FeedRecord(url, parse_feed(response).title, seconds)
        with self._refreshing:  # a scheduled refresh must not take the new feed before this one has
            self._edit(lambda records: records.setdefault(url, record))
            if not refresh or self.assistant is None:
                return record.status()
            return self._refresh(record, response, show_progress, on_progress)

    def remove(self, urls: Iterable[str] | str) -> list[str]:
        """Stop following feeds (their articles stay in the library); ``UnknownFeedError`` for one not followed."""
        gone = [u.strip() for u in ([urls] if isinstance(urls, str) else urls)]
        records = read_registry(self.index_dir)
        for url in gone:
            if url not in records:
                raise UnknownFeedError(url)
        self._edit(lambda records: [records.pop(u, None) for u in gone])
        return gone

    def _edit(self, change: Callable[[dict[str, FeedRecord]], object]) -> None:
        """Change the list under the index's write lock (and the assistant's, so its own writes wait)."""

        def write(root: Path) -> None:
            records = read_registry(root)
            change(records)
            write_registry(root, records)

        if self.assistant is not None:
            self.assistant.add_articles([], show_progress=False, also=lambda root, _update: write(root))
        else:
            with WriteLock(self.index_dir) as lock:
                write(lock.root)

    # ---- refreshing --------------------------------------------------------------
    def refresh(
        self,
        urls: Sequence[str] | None = None,
        due_only: bool = False,
        show_progress: bool = False,
        on_progress: OnProgress | None = None,
    ) -> list[FeedStatus]:
        """Refresh the feeds at ``urls`` (default: all), or only those due with ``due_only``; returns each
        feed's status with its items. A feed that fails is reported as such (``failed``), never raised."""
        if self.assistant is None:
            raise InvalidArgumentError("Refreshing feeds adds articles: use Feeds.of(assistant).")
        with self._refreshing:
            records = read_registry(self.index_dir)
            wanted = list(records) if urls is None else list(dict.fromkeys(u.strip() for u in urls))
            for url in wanted:
                if url not in records:
                    raise UnknownFeedError(url)
            now = time.time()
            chosen = [records[u] for u in wanted if not due_only or records[u].due(now)]
            return [self._refresh(record, None, show_progress, on_progress) for record in chosen]

    def _refresh(
        self, record: FeedRecord, response: Response | None, show_progress: bool, on_progress: OnProgress | None
    ) -> FeedStatus:
        """Refresh one feed (``response``: the feed, fetched already) and record what it saw."""
        assert self.assistant is not None
        name = record.title or record.url
        tell = on_progress or (lambda _message: None)
        tell(f"{name}: fetching the feed")
        now = time.time()
        try:
            response = response or self.fetcher.get(record.url, FEED_ACCEPT, record.etag, record.last_modified)
            parsed = None if response.not_modified else parse_feed(response)
        except FetchError as exc:
            log.warning("Feed %s: %s", record.url, exc.reason)
            failed = replace(record, refreshed_at=now, outcome=f"failed: {exc.reason}", failed=True)
            try:
                self._edit(lambda records: records.update({record.url: _kept_schedule(failed, records)}))
            except QAError as error:  # the list could not be written: the failure is still reported
                log.warning("Feed %s: its failure could not be recorded: %s", record.url, error)
            tell(f"{name}: {failed.outcome}")
            return failed.status()
        retry = record.retry_counts()
        listed = parsed.items[: self.config.feed_max_items] if parsed else ()
        new = [i for i in listed if i.id not in record.seen and i.id not in retry]
        wanted = [item for item, _ in record.retry] + new
        tell(f"{name}: {len(new)} new item(s)" + (f", {len(retry)} to try again" if retry else ""))

        def fetched(done: int, total: int, url: str, _result: Article | FileProblem) -> None:
            tell(f"{name}: {done} of {total} page(s) fetched ({url})")

        pages = fetch_pages([i.url for i in wanted], self.fetcher, show_progress, fetched)
        pages = [_with_feed_metadata(page, item) for page, item in zip(pages, wanted, strict=True)]
        kept = unique_articles(pages)
        tries = {
            i.id: retry.get(i.id, 0) + 1 for i, page in zip(wanted, pages, strict=True) if isinstance(page, FileProblem)
        }
        refreshed = replace(
            record.remembering([i.id for i in wanted if tries.get(i.id, TRIES) >= TRIES]),
            title=(parsed.title if parsed else "") or record.title,
            etag=response.etag or record.etag,
            last_modified=response.last_modified or record.last_modified,
            retry=tuple((i, tries[i.id]) for i in wanted if tries.get(i.id, TRIES) < TRIES),
            refreshed_at=now,
            failed=False,
        )
        done: list[FeedStatus] = []

        def record_outcome(root: Path, update: IndexUpdate) -> None:
            items = [
                _item_result(i, p, k, update, tries.get(i.id, 0)) for i, p, k in zip(wanted, pages, kept, strict=True)
            ]
            items += [
                FeedItemResult(i.url, "unchanged", i.title, None, SEEN_BEFORE) for i in listed if i.id in record.seen
            ]
            final = replace(refreshed, outcome=_summary(items, response.not_modified))
            records = read_registry(root)
            if final.url in records:  # not removed meanwhile
                records[final.url] = _kept_schedule(final, records)
                write_registry(root, records)
            done.append(final.status(tuple(items)))

        articles = [a for a in kept if isinstance(a, Article)]
        tell(f"{name}: adding {len(articles)} article(s) to the library" if articles else f"{name}: nothing new to add")
        try:
            self.assistant.add_articles(articles, show_progress=show_progress, also=record_outcome)
        except QAError as exc:  # the index could not be written (another writer has it...): tried again next time
            log.warning("Feed %s: its articles could not be added: %s", record.url, exc)
            tell(f"{name}: failed: {exc}")
            return replace(record.status(), outcome=f"failed: {exc}", failed=True)
        tell(f"{name}: {done[0].outcome}")
        return done[0]


def _kept_schedule(record: FeedRecord, records: dict[str, FeedRecord]) -> FeedRecord:
    """``record`` with the schedule the list has now (it may have been changed during a refresh)."""
    current = records.get(record.url)
    return replace(record, every=current.every) if current is not None else record


def _with_feed_metadata(page: Article | FileProblem, item: FeedItem) -> Article | FileProblem:
    """The page's article, dated and titled by its feed item where the page itself does not say."""
    if isinstance(page, FileProblem):
        return page
    return replace(page, date=page.date or item.date, title=page.title or item.title)


def _item_result(
    item: FeedItem, page: Article | FileProblem, kept: Article | FileProblem, update: IndexUpdate, tries: int
) -> FeedItemResult:
    """What became of one item: failed (its page not read), added, updated, or unchanged (and why)."""
    if isinstance(page, FileProblem):
        attempt = f" (given up after {tries} tries)" if tries >= TRIES else f" (try {tries} of {TRIES})"
        return FeedItemResult(item.url, "failed", item.title, None, page.reason + attempt)
    if isinstance(kept, FileProblem):  # the same page as another item of this refresh
        return FeedItemResult(item.url, "unchanged", page.title, page.doc_id, kept.reason)
    if page.doc_id in update.added:
        return FeedItemResult(item.url, "added", page.title, page.doc_id)
    if page.doc_id in update.replaced:
        return FeedItemResult(item.url, "updated", page.title, page.doc_id, "the page changed")
    copies = {p.path: p.reason for p in update.duplicates}
    return FeedItemResult(item.url, "unchanged", page.title, page.doc_id, copies.get(page.path, "in the library"))


def _summary(items: Sequence[FeedItemResult], not_modified: bool) -> str:
    """``2 added, 5 unchanged, 1 failed`` (``not modified`` first for a 304)."""
    parts = ["not modified (HTTP 304)"] if not_modified else []
    parts += [f"{n} {kind}" for kind in OUTCOMES if (n := sum(i.outcome == kind for i in items))]
    return ", ".join(parts) or "no items"


class FeedScheduler:
    """Refreshes the feeds that are due in a background thread, until ``stop()``.

    It looks again when the next feed is due, and at least every ``poll`` seconds (so feeds added by
    another process, ``qa feed add``, are picked up). A refresh that raises is logged, and it goes on.
    """

    def __init__(self, feeds: Feeds, poll: float = 30.0) -> None:
        self.feeds = feeds
        self.poll = poll
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="feed-refresh", daemon=True)

    def start(self) -> FeedScheduler:
        """Start refreshing in the background."""
        self._thread.start()
        return self

    def stop(self, timeout: float | None = None) -> None:
        """Stop after the refresh in progress, if any (waiting ``timeout`` seconds at most)."""
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def _run(self) -> None:
        while not self._stop.is_set():
            wait = None
            try:
                for status in self.feeds.refresh(due_only=True):
                    log.info("Feed %s refreshed: %s", status.url, status.outcome)
                wait = self.feeds.seconds_to_next()
            except Exception:  # a server's background work goes on
                log.exception("Refreshing the feeds failed")
            self._stop.wait(self.poll if wait is None else min(max(wait, 0.5), self.poll))
