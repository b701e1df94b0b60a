"""The chat page's event handlers, over one shared ``Assistant``.

Each browser session keeps its own conversation (its turns in a ``gr.State``) and its place in the
library (``Browsing``: which page of the catalog, with which filter); the assistant,
its index and its models are shared by all sessions, and ``Assistant`` makes that safe
(questions run together, library changes wait for them). Handlers return their outputs keyed
by component (``View``), never as positional tuples.
"""

from __future__ import annotations

import logging
import queue
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa.assistant import Assistant
from qa.errors import QAError, UnknownArticleError
from qa.options import AskOptions
from qa.types import Answer, Catalog, IndexUpdate, LibrarySummary, Turn
from qa.web import render
from qa.web.gradio_shim import gr

log = logging.getLogger(__name__)

Outputs = dict[Any, Any]  # component -> new value (``gr.skip()``: leave it as it is)
PAGE_ROWS = 50  # articles the library table shows at a time


@dataclass(frozen=True)
class Browsing:
    """Where a session is in the library: the page of the catalog from ``offset``, filtered by ``query``."""

    offset: int = 0
    query: str = ""


@dataclass(frozen=True)
class View:
    """The components the handlers update."""

    question: Any
    chatbot: Any
    turns: Any
    sources: Any
    export: Any
    library: Any
    to_remove: Any
    source_filter: Any
    header: Any
    seen: Any
    status: Any
    browsing: Any  # the session's ``Browsing`` (a ``gr.State``)

    @property
    def chat_outputs(self) -> list[Any]:
        """What answering a question changes."""
        return [self.question, self.chatbot, self.turns, self.sources, self.export]

    @property
    def library_outputs(self) -> list[Any]:
        """What a change of the library changes."""
        return [self.library, self.to_remove, self.source_filter, self.header, self.seen, self.browsing]

    @property
    def browse_outputs(self) -> list[Any]:
        """What moving through the library (a page on, back, another filter) changes."""
        return [self.library, self.to_remove, self.browsing]


def streamed(ask: Callable[[Callable[[str], None]], Answer], every: float = 0.1) -> Iterator[str | Answer]:
    """Run ``ask(on_token)`` in a thread; yield the text generated so far (at most every ``every`` s), then the answer.

    An exception raised by ``ask`` is raised here.
    """
    pieces: queue.Queue[tuple[str, Any]] = queue.Queue()

    def work() -> None:
        try:
            pieces.put(("answer", ask(lambda token: pieces.put(("token", token)))))
        except BaseException as exc:  # noqa: BLE001 - handed to the caller's thread
            pieces.put(("error", exc))

    threading.Thread(target=work, daemon=True, name="qa-answer").start()
    draft, last = "", 0.0
    while True:
        kind, value = pieces.get()
        if kind == "token":
            draft += value
            if time.monotonic() - last >= every:
                last = time.monotonic()
                yield draft
        elif kind == "error":
            raise value
        else:
            yield value
            return


def library_signature(assistant: Assistant) -> str:
    """A string that changes whenever the assistant's library changes (articles added, replaced or removed)."""
    return _signature(assistant.summary())


def _signature(summary: LibrarySummary) -> str:
    return f"{summary.changes}:{summary.articles}:{summary.passages}"


class ChatPage:
    """The page's event handlers, over one shared assistant."""

    def __init__(self, assistant: Assistant, view: View) -> None:
        self.assistant = assistant
        self.view = view

    # ---- chat ------------------------------------------------------------------
    def _chat(self, chat: list[dict[str, str]], turns: Any, sources: str, export: Any = None) -> Outputs:
        v = self.view
        return {
            v.question: "",
            v.chatbot: chat,
            v.turns: turns,
            v.sources: sources,
            v.export: gr.skip() if export is None else export,
        }

    def respond(
        self,
        message: str,
        chat: list[dict[str, Any]] | None,
        turns: tuple[Turn, ...] | None,
        sources: list[str] | None = None,
        since: str | None = "",
        until: str | None = "",
        strictness: float | None = None,
        as_of: str | None = "",
        reader: str | None = None,
    ) -> Iterator[Outputs]:
        """Answer ``message`` in this session's conversation, streaming the answer sentence by sentence.

        With the LLM as ``reader``, its draft streams as it is written, then the checked answer
        replaces it.
        """
        chat, turns = list(chat or []), tuple(turns or ())
        message = message or ""
        asked = [*chat, render.user_message(message)] if message.strip() else chat
        yield self._chat([*asked, render.bot_message(render.SEARCHING)], turns, render.NO_SOURCES)
        conversation = self.assistant.chat(turns)
        options = AskOptions(
            sources=tuple(sources or ()) or None,
            since=since or None,
            until=until or None,
            as_of=as_of or None,
            reader=reader or None,
            strictness=None if strictness is None else float(strictness),
        )
        try:
            if self.assistant.uses_llm(options.reader):
                answer = None
                for item in streamed(lambda on_token: conversation.ask(message, options, on_token=on_token)):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        draft = render.bot_message(render.DRAFTING + render.escape_text(item))
                        yield self._chat([*asked, draft], turns, render.NO_SOURCES)
            else:
                answer = conversation.ask(message, options)
        except QAError as exc:
            yield self._chat([*asked, render.bot_message(render.escape_text(str(exc)))], turns, render.NO_SOURCES, "")
            return
        except Exception:  # the page must say so rather than search forever
            log.exception("Answering %r failed", message)
            yield self._chat([*asked, render.bot_message(render.FAILED)], turns, render.NO_SOURCES, "")
            return
        assert answer is not None
        asked[-1] = render.user_message(answer.question)
        answers, turn = [*(t.answer for t in turns), answer], len(turns) + 1
        for shown in range(1, len(answer.citations) if answer.reader != "llm" else 0):
            partial = render.sources_html(answers, self.assistant.article, shown)
            yield self._chat([*asked, render.bot_message(render.answer_markdown(answer, turn, shown))], turns, partial)
        panel = render.sources_html(answers, self.assistant.article)
        final = [*asked, render.bot_message(render.answer_markdown(answer, turn))]
        yield self._chat(final, conversation.history, panel, answer.to_markdown())

    def clear(self) -> Outputs:
        """Forget this session's conversation."""
        v = self.view
        return {v.chatbot: [], v.turns: (), v.sources: render.NO_SOURCES, v.export: ""}

    def ask_api(
        self,
        question: str,
        sources: list[str] | None = None,
        since: str = "",
        until: str = "",
        strictness: float | None = None,
        as_of: str = "",
    ) -> dict:
        """Answer one question without a conversation; returns the Answer as a dict (or ``error``)."""
        options = AskOptions(
            sources=tuple(sources or ()) or None,
            since=since or None,
            until=until or None,
            as_of=as_of or None,
            strictness=None if strictness is None else float(strictness),
        )
        try:
            return self.assistant.ask(question, options).to_dict()
        except QAError as exc:
            return {"error": str(exc)}

    # ---- library ---------------------------------------------------------------
    def articles_api(self, offset: int = 0, limit: int | None = None, query: str = "") -> list[dict[str, Any]]:
        """Return the library, newest first: each article's doc_id, title, date, source, url and passages (no article
        is read). ``limit`` articles (none: all) from ``offset``; ``query``: only those whose title, source or id
        contains it (any case)."""
        try:
            return [e.to_dict() for e in self.assistant.catalog(offset, limit, query=query or None).entries]
        except QAError as exc:
            raise gr.Error(str(exc)) from None

    def _page(self, browsing: Browsing) -> tuple[Catalog, Browsing]:
        """The page of the catalog ``browsing`` asks for; past the end (articles removed since), the last page."""
        catalog = self.assistant.catalog(browsing.offset, PAGE_ROWS, query=browsing.query)
        if not catalog.entries and catalog.total:
            browsing = replace(browsing, offset=(catalog.total - 1) // PAGE_ROWS * PAGE_ROWS)
            catalog = self.assistant.catalog(browsing.offset, PAGE_ROWS, query=browsing.query)
        return catalog, browsing

    def _shelf(self, catalog: Catalog, browsing: Browsing, chosen: list[str] | None = None) -> Outputs:
        """The library table and the removal choices (the articles of the page shown) for ``browsing``; what is
        chosen for removal becomes ``chosen`` (None: it stays, of whichever page it was chosen on)."""
        v, choices = self.view, [(f"{e.title} ({e.doc_id})", e.doc_id) for e in catalog.entries]
        removal = gr.update(choices=choices) if chosen is None else gr.update(choices=choices, value=chosen)
        return {v.library: render.library_html(catalog, browsing.query), v.to_remove: removal, v.browsing: browsing}

    def browse(self, browsing: Browsing | None, pages: int = 0, query: str | None = None) -> Outputs:
        """Move ``pages`` pages on (back when negative) in the library, or show the first page filtered by ``query``."""
        browsing = browsing or Browsing()
        if query is not None:
            browsing = Browsing(0, query.strip())
        browsing = replace(browsing, offset=max(0, browsing.offset + pages * PAGE_ROWS))
        return self._shelf(*self._page(browsing))

    def next_page(self, browsing: Browsing | None) -> Outputs:
        """The next page of the library (the last one stays)."""
        return self.browse(browsing, 1)

    def previous_page(self, browsing: Browsing | None) -> Outputs:
        """The page before (the first one stays)."""
        return self.browse(browsing, -1)

    def filter_library(self, query: str | None, browsing: Browsing | None) -> Outputs:
        """The first page of the articles whose title, source or id contains ``query`` (all when it is empty)."""
        return self.browse(browsing, query=query or "")

    def refresh(self, browsing: Browsing | None = None) -> Outputs:
        """The library table (the page ``browsing`` shows, kept within the library), the removal and source
        choices, the heading and the library's signature. No article is read."""
        summary = self.assistant.summary()  # first: a change made meanwhile is shown by the next poll
        catalog, browsing = self._page(browsing or Browsing())
        v = self.view
        return {
            **self._shelf(catalog, browsing, chosen=[]),
            v.source_filter: gr.update(choices=list(catalog.sources)),
            v.header: render.header_markdown(summary),
            v.seen: _signature(summary),
        }

    def refresh_if_changed(self, seen: str | None, browsing: Browsing | None = None) -> Outputs:
        """Like ``refresh``, but change nothing when the library is as this page last saw it."""
        if seen == library_signature(self.assistant):  # cheap: nothing is listed while nothing changed
            return {component: gr.skip() for component in self.view.library_outputs}
        return self.refresh(browsing)

    def upload(self, files: Sequence[Any] | None, browsing: Browsing | None = None) -> Outputs:
        """Add uploaded article files to the library; returns a status message and the refreshed library.

        Gradio refuses files of other types or over the size limit before they get here;
        files that cannot be read as articles are named with the reason.
        """
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", str(f))) for f in files or []]
        if not paths:
            return {self.view.status: "Choose one or more article files first.", **self.refresh(browsing)}
        try:
            lines = self.describe_update(self.assistant.add(paths, show_progress=False))
        except QAError as exc:
            lines = [f"✗ {render.escape_text(str(exc))}"]
        return {self.view.status: "\n".join(f"- {line}" for line in lines), **self.refresh(browsing)}

    def describe_update(self, update: IndexUpdate) -> list[str]:
        """One line per article added, updated or already there, and per file or page that could not be used."""
        esc = render.escape_text
        lines = []
        for verb, ids in (("Added", update.added), ("Updated", update.replaced), ("Already there", update.unchanged)):
            for doc_id in ids:
                lines.append(f"✓ {verb}: {esc(self._title(doc_id))} (id {esc(doc_id)})")
        for problem in update.problems:
            where = problem.path if "://" in problem.path else Path(problem.path).name  # a page: its whole URL
            lines.append(f"✗ {esc(where)}: {esc(problem.reason)}")
        return lines or ["✗ Nothing could be read from these files."]

    def _title(self, doc_id: str) -> str:
        try:
            return self.assistant.article(doc_id).title
        except UnknownArticleError:
            return doc_id

    def remove(self, doc_ids: Sequence[str] | None, browsing: Browsing | None = None) -> Outputs:
        """Delete the chosen articles (of the page shown, or ids typed in) from the library; returns a status
        message and the refreshed library."""
        ids = [d.strip() for d in doc_ids or [] if d.strip()]
        if not ids:
            return {self.view.status: "Choose the articles to remove first.", **self.refresh(browsing)}
        titles = {d: self._title(d) for d in ids}
        try:
            removed = self.assistant.remove(ids)
        except QAError as exc:  # UnknownArticleError: a mistyped id, or removed meanwhile by another session
            return {self.view.status: f"✗ {render.escape_text(str(exc))}", **self.refresh(browsing)}
        esc = render.escape_text
        status = "\n".join(f"- ✓ Removed: {esc(titles[d])} (id {esc(d)})" for d in removed)
        return {self.view.status: status, **self.refresh(browsing)}
