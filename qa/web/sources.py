"""The Library tab's sources on the web: "Add from URL", and the Feeds panel (add, remove, refresh now).

Fetching takes seconds, so each handler runs its work in a thread and shows what it is doing as it
goes (which page was fetched, which feed is being read), then the outcome of each page or item,
with the library refreshed. Only http(s) addresses are taken from the page: anything else typed in
the box is refused, never read as a path on the server.
"""

from __future__ import annotations

import logging
import queue
import threading
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Generic, TypeVar
from urllib.parse import urlsplit

from qa import Feeds
from qa.errors import QAError
from qa.types import Article, FeedStatus, FileProblem
from qa.web import render
from qa.web.gradio_shim import gr
from qa.web.page import Browsing, ChatPage, Outputs

log = logging.getLogger(__name__)

T = TypeVar("T")
ICONS = {"added": "✓ Added", "updated": "✓ Updated", "unchanged": "· Unchanged", "failed": "✗ Failed"}


@dataclass(frozen=True)
class Done(Generic[T]):
    """The result of work run by ``in_thread``."""

    value: T


def in_thread(work: Callable[[Callable[[str], None]], T]) -> Iterator[str | Done[T]]:
    """Run ``work(tell)`` in a thread; yield the latest of what it tells as it goes, then ``Done(result)``.

    An exception raised by ``work`` is raised here.
    """
    events: queue.Queue[tuple[str, Any]] = queue.Queue()

    def run() -> None:
        try:
            events.put(("done", work(lambda message: events.put(("tell", message)))))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            events.put(("error", exc))

    threading.Thread(target=run, daemon=True, name="qa-fetch").start()
    while True:
        batch = [events.get()]
        while not events.empty():  # what came meanwhile: only the latest message is worth showing
            batch.append(events.get_nowait())
        told = [value for kind, value in batch if kind == "tell"]
        if told:
            yield told[-1]
        for kind, value in batch:
            if kind == "error":
                raise value
            if kind == "done":
                yield Done(value)
                return


def http_address(text: str) -> bool:
    """True for an absolute http(s) URL with a host."""
    parts = urlsplit(text)
    return parts.scheme.lower() in ("http", "https") and bool(parts.netloc)


@dataclass(frozen=True)
class SourcesView:
    """The components of "Add from URL" and of the Feeds panel."""

    urls: Any
    feeds: Any
    feed_url: Any
    feed_every: Any
    feed_choice: Any
    feed_status: Any
    feeds_seen: Any

    @property
    def feed_outputs(self) -> list[Any]:
        """What a change of the feed list changes."""
        return [self.feeds, self.feed_choice, self.feeds_seen]


class SourcesPanel:
    """The handlers of "Add from URL" and of the Feeds panel, over the page's assistant and its feeds."""

    def __init__(self, page: ChatPage, feeds: Feeds | None, view: SourcesView) -> None:
        self.page = page
        self.feeds = feeds
        self.view = view

    # ---- pages -----------------------------------------------------------------
    def add_urls(self, text: str | None, browsing: Browsing | None = None) -> Iterator[Outputs]:
        """Fetch the article pages at the URLs in ``text`` (one a line) and add them, showing each as it is fetched."""
        status, esc = self.page.view.status, render.escape_text
        given = list(dict.fromkeys((text or "").split()))
        urls = [u for u in given if http_address(u)]
        refused = [f"✗ {esc(u)}: not an http(s) address" for u in given if u not in urls]
        if not urls:
            yield {status: _bullets(refused or ["Paste the address (http or https) of an article page first."])}
            return

        def work(tell: Callable[[str], None]) -> Any:
            def fetched(done: int, total: int, url: str, result: Article | FileProblem) -> None:
                then = " Adding to the library…" if done == total else ""
                tell(f"Fetched {done} of {total} page(s): {url} {'✓' if isinstance(result, Article) else '✗'}.{then}")

            tell(f"Fetching {len(urls)} page(s)…")
            return self.page.assistant.add(urls, show_progress=False, on_fetched=fetched)

        try:
            for event in in_thread(work):
                if isinstance(event, Done):
                    lines = refused + self.page.describe_update(event.value)
                    yield {status: _bullets(lines), self.view.urls: "", **self.page.refresh(browsing)}
                else:
                    yield {status: f"*{esc(event)}*"}
        except QAError as exc:
            yield {status: f"✗ {esc(str(exc))}", **self.page.refresh(browsing)}
        except Exception:  # the page must say so rather than wait forever
            log.exception("Adding %s failed", urls)
            yield {status: "✗ Something went wrong; the server log has the details.", **self.page.refresh(browsing)}

    # ---- feeds -----------------------------------------------------------------
    def feeds_api(self) -> list[dict[str, Any]]:
        """Return the followed feeds: address, title, schedule (seconds), last refresh and its outcome."""
        return [asdict(f) for f in (self.feeds.list() if self.feeds is not None else [])]

    def feeds_state(self, chosen: Sequence[str] = ()) -> Outputs:
        """The feed table, the choice of feeds (keeping those of ``chosen`` still followed) and their signature."""
        listed = self.feeds.list() if self.feeds is not None else []
        urls = {f.url for f in listed}
        v = self.view
        return {
            v.feeds: render.feeds_html(listed, Feeds.format_every),
            v.feed_choice: gr.update(
                choices=[(f.title or f.url, f.url) for f in listed], value=[c for c in chosen if c in urls]
            ),
            v.feeds_seen: render.feeds_signature(listed),
        }

    def refresh_feeds_if_changed(self, seen: str | None, chosen: Sequence[str] | None = None) -> Outputs:
        """Like ``feeds_state``, but change nothing when the feeds are as this page last saw them."""
        listed = self.feeds.list() if self.feeds is not None else []
        if seen == render.feeds_signature(listed):
            return {component: gr.skip() for component in self.view.feed_outputs}
        return self.feeds_state(chosen or ())

    def add_feed(self, url: str | None, every: str | None, browsing: Browsing | None = None) -> Iterator[Outputs]:
        """Follow the feed at ``url`` and fetch its articles now, showing what it does as it goes."""
        yield from self._feed_work(
            lambda tell: [self._need().add((url or "").strip(), every or "30m", on_progress=tell)], browsing
        )

    def refresh_now(self, chosen: Sequence[str] | None, browsing: Browsing | None = None) -> Iterator[Outputs]:
        """Refresh the chosen feeds now (all of them when none is chosen)."""
        yield from self._feed_work(
            lambda tell: self._need().refresh(list(chosen or []) or None, on_progress=tell), browsing
        )

    def remove_feeds(self, chosen: Sequence[str] | None) -> Outputs:
        """Stop following the chosen feeds; their articles stay in the library."""
        v, esc = self.view, render.escape_text
        if not chosen:
            return {v.feed_status: "Choose the feeds to remove first.", **self.feeds_state()}
        try:
            gone = self._need().remove(list(chosen))
            lines = [f"✓ Stopped following {esc(u)} (its articles stay in the library)" for u in gone]
        except QAError as exc:
            lines = [f"✗ {esc(str(exc))}"]
        return {v.feed_status: _bullets(lines), **self.feeds_state()}

    def _need(self) -> Feeds:
        if self.feeds is None:
            raise QAError("This library has no index folder, so it cannot follow feeds.")
        return self.feeds

    def _feed_work(
        self, work: Callable[[Callable[[str], None]], list[FeedStatus]], browsing: Browsing | None = None
    ) -> Iterator[Outputs]:
        v = self.view
        try:
            for event in in_thread(work):
                if isinstance(event, Done):
                    lines = [line for status in event.value for line in _feed_lines(status)]
                    text = "\n".join(lines) or "No feeds to refresh: add one first."
                    yield {v.feed_status: text, v.feed_url: "", **self.feeds_state(), **self.page.refresh(browsing)}
                else:
                    yield {v.feed_status: f"*{render.escape_text(event)}*"}
        except QAError as exc:
            yield {v.feed_status: f"✗ {render.escape_text(str(exc))}", **self.feeds_state()}
        except Exception:  # the page must say so rather than wait forever
            log.exception("A feed action failed")
            yield {v.feed_status: "✗ Something went wrong; the server log has the details.", **self.feeds_state()}


def _bullets(lines: Sequence[str]) -> str:
    return "\n".join(f"- {line}" for line in lines)


def _feed_lines(status: FeedStatus) -> list[str]:
    """A feed's refresh as Markdown: the feed and its outcome, then each item (earlier ones counted)."""
    esc = render.escape_text
    lines = [f"**{esc(status.title or status.url)}**: {esc(status.outcome)}"]
    for item in status.items:
        if item.reason != Feeds.SEEN_BEFORE:
            why = f": {esc(item.reason)}" if item.reason else ""
            lines.append(
                f"- {ICONS.get(item.outcome, item.outcome)}: {esc(item.title or item.url)} ({esc(item.url)}){why}"
            )
    if earlier := sum(i.reason == Feeds.SEEN_BEFORE for i in status.items):
        lines.append(f"- {earlier} item(s) read at earlier refreshes")
    return lines
