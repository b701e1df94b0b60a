"""The chat page's event handlers, over one shared ``Assistant``.

Each browser session keeps its own conversation (its turns in a ``gr.State``); the assistant,
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
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from qa.assistant import Assistant
from qa.errors import QAError, UnknownArticleError
from qa.options import AskOptions
from qa.types import Answer, IndexUpdate, Turn
from qa.web import render
from qa.web.gradio_shim import gr

log = logging.getLogger(__name__)

Outputs = dict[Any, Any]  # component -> new value (``gr.skip()``: leave it as it is)


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

    @property
    def chat_outputs(self) -> list[Any]:
        """What answering a question changes."""
        return [self.question, self.chatbot, self.turns, self.sources, self.export]

    @property
    def library_outputs(self) -> list[Any]:
        """What a change of the library changes."""
        return [self.library, self.to_remove, self.source_filter, self.header, self.seen]


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
    summary = assistant.summary()
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
    def articles_api(self) -> list[dict[str, Any]]:
        """Return the library: each article's metadata and passage count (no text)."""
        return [
            {k: v for k, v in a.to_dict().items() if k not in ("text", "path")} | {"passages": n}
            for a, n in self.assistant.library()
        ]

    def refresh(self) -> Outputs:
        """The library table, the removal and source choices, the heading and the library's signature."""
        seen = library_signature(self.assistant)  # first: a change made meanwhile is shown by the next poll
        library = self.assistant.library()
        v = self.view
        return {
            v.library: render.library_html(library),
            v.to_remove: gr.update(choices=[(f"{a.title} ({a.doc_id})", a.doc_id) for a, _ in library], value=[]),
            v.source_filter: gr.update(choices=sorted({a.source for a, _ in library if a.source})),
            v.header: render.header_markdown(library),
            v.seen: seen,
        }

    def refresh_if_changed(self, seen: str | None) -> Outputs:
        """Like ``refresh``, but change nothing when the library is as this page last saw it."""
        if seen == library_signature(self.assistant):  # cheap: no article is read while nothing changed
            return {component: gr.skip() for component in self.view.library_outputs}
        return self.refresh()

    def upload(self, files: Sequence[Any] | None) -> Outputs:
        """Add uploaded article files to the library; returns a status message and the refreshed library.

        Gradio refuses files of other types or over the size limit before they get here;
        files that cannot be read as articles are named with the reason.
        """
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", str(f))) for f in files or []]
        if not paths:
            return {self.view.status: "Choose one or more article files first.", **self.refresh()}
        try:
            lines = self.describe_update(self.assistant.add(paths, show_progress=False))
        except QAError as exc:
            lines = [f"✗ {render.escape_text(str(exc))}"]
        return {self.view.status: "\n".join(f"- {line}" for line in lines), **self.refresh()}

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

    def remove(self, doc_ids: Sequence[str] | None) -> Outputs:
        """Delete the chosen articles from the library; returns a status message and the refreshed library."""
        ids = list(doc_ids or [])
        if not ids:
            return {self.view.status: "Choose the articles to remove first.", **self.refresh()}
        titles = {d: self._title(d) for d in ids}
        try:
            removed = self.assistant.remove(ids)
        except QAError as exc:  # UnknownArticleError: removed meanwhile by another session
            return {self.view.status: f"✗ {render.escape_text(str(exc))}", **self.refresh()}
        esc = render.escape_text
        status = "\n".join(f"- ✓ Removed: {esc(titles[d])} (id {esc(d)})" for d in removed)
        return {self.view.status: status, **self.refresh()}
