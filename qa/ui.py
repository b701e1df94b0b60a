"""The Gradio chat page: a thin shell over ``Assistant``.

Each browser session keeps its own conversation (its turns in ``gr.State``); the
assistant, its index and its models are shared by all sessions, and ``Assistant`` makes
that safe (questions run together, library changes wait for them). Everything that comes
from an article is escaped before it is shown: titles, quotes, passages, names, URLs.
"""

from __future__ import annotations

import html
import logging
import queue
import re
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

from qa.articles import SUPPORTED_SUFFIXES
from qa.assistant import Assistant, Turn, start_loading
from qa.auth import Credentials, exposure_warning
from qa.config import Config
from qa.errors import QAError, UnknownArticleError
from qa.llm import LLMSpec
from qa.reader import NEAREST
from qa.types import Answer, Article, Citation, removed_note
from qa.webui import gr

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = [
    "What did China say about the Taliban?",
    "What did Pakistan's prime minister say?",
    "Where was he when he said it?",
    "Where did President Ashraf Ghani go?",
    "What did Russia say about the Taliban?",
]
CONTEXT_CHARS = 400  # of the article shown on each side of a quoted sentence
REFRESH_SECONDS = 5.0  # how often a page looks for articles added or removed elsewhere
SEARCHING = "<em>Searching the articles…</em>"
EARLIER_TURNS_SHOWN = 10  # earlier answers whose sources stay in the panel
FAILED = "<em>Something went wrong while answering; the server log has the details.</em>"
NO_SOURCES = "<p class='qa-meta'>The sources of each answer appear here.</p>"
DRAFTING = "<em>Drafting (to be checked against the sources)…</em>\n\n"
_MARKERS = re.compile(r"\[(\d+)\]")

CSS = """
.qa-source { border-left: 3px solid #999; padding: 2px 10px; margin: 8px 0; }
.qa-source[open] { border-left-color: #c89b00; }
.qa-source summary { cursor: pointer; }
.qa-source mark { background: #ffe58a; color: #111; padding: 0 2px; }
.qa-source.qa-flash { background: rgba(255, 229, 138, 0.35); }
.qa-earlier > summary { cursor: pointer; margin-top: 12px; }
.qa-meta { color: #777; font-size: 0.9em; }
.qa-library table { width: 100%; border-collapse: collapse; }
.qa-library th, .qa-library td { text-align: left; padding: 4px 8px; border-bottom: 1px solid #ddd; }
a.qa-cite { text-decoration: none; font-weight: 600; }
"""

# Citation markers are links to "#source-<turn>-<n>": open that source (and the group of
# earlier answers it may be in) in the panel and show it.
HEAD = """
<script>
document.addEventListener("click", (event) => {
  const link = event.target.closest && event.target.closest('a[href^="#source-"]');
  if (!link) return;
  event.preventDefault();
  event.stopPropagation();
  const source = document.getElementById(link.getAttribute("href").slice(1));
  if (!source) return;
  for (let d = source; d; d = d.parentElement && d.parentElement.closest("details")) d.open = true;
  source.scrollIntoView({block: "nearest"});
  source.classList.add("qa-flash");
  setTimeout(() => source.classList.remove("qa-flash"), 1500);
}, true);
</script>
"""

_MARKDOWN_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~$])")


def escape_text(text: str) -> str:
    """Return ``text`` safe to show in Markdown: HTML escaped, Markdown syntax neutralised."""
    return html.escape(_MARKDOWN_SPECIAL.sub(r"\\\1", text), quote=False)


def safe_url(url: str | None) -> str | None:
    """Return ``url`` if it is an http(s) address (never ``javascript:`` and the like), else None."""
    if not url:
        return None
    parsed = urlparse(url.strip())
    return url.strip() if parsed.scheme in ("http", "https") and parsed.netloc else None


def source_id(turn: int, number: int) -> str:
    """Return the element id of source ``number`` of the answer to question ``turn`` (from 1)."""
    return f"source-{turn}-{number}"


def marker(turn: int, number: int) -> str:
    """Return the citation marker ``[n]``, a link to its source in the sources panel."""
    return f"<a href='#{source_id(turn, number)}' class='qa-cite' title='Show source {number}'>[{number}]</a>"


def answer_markdown(answer: Answer, turn: int, shown: int | None = None) -> str:
    """Return the answer to question ``turn`` as chat Markdown: escaped sentences, each with its linked marker.

    ``shown`` limits it to the first sentences (while an answer is being streamed); the
    full answer ends with what was searched when a follow-up was resolved.
    """
    if answer.abstained and answer.citations:  # what the articles do say, set apart from an answer
        said = answer.text.split("\n\n", 1)[0]
        nearest = " ".join(f"{escape_text(c.quote)} {marker(turn, c.number)}" for c in answer.citations)
        return f"{escape_text(said)}\n\n> *{escape_text(NEAREST)}* {nearest}"
    if answer.abstained or not answer.citations:
        return escape_text(answer.text)
    if answer.reader == "llm":
        return _generated_markdown(answer, turn)
    citations = answer.citations[:shown]
    text = " ".join(f"{escape_text(c.quote)} {marker(turn, c.number)}" for c in citations)
    if shown is None and answer.resolved_question and answer.resolved_question != answer.question:
        text += f"\n\n<small>Searched: {escape_text(answer.resolved_question)}</small>"
    return text


def _generated_markdown(answer: Answer, turn: int) -> str:
    """An LLM's checked answer: escaped text with linked markers, and how many sentences were removed."""
    numbers = {c.number for c in answer.citations}
    parts, cursor = [], 0
    for match in _MARKERS.finditer(answer.text):
        parts.append(escape_text(answer.text[cursor : match.start()]))
        number = int(match.group(1))
        parts.append(marker(turn, number) if number in numbers else escape_text(match.group()))
        cursor = match.end()
    parts.append(escape_text(answer.text[cursor:]))
    text = "".join(parts)
    if answer.unsupported:
        text += f"\n\n<small>{escape_text(removed_note(answer.unsupported))}.</small>"
    if answer.resolved_question and answer.resolved_question != answer.question:
        text += f"\n\n<small>Searched: {escape_text(answer.resolved_question)}</small>"
    return text


def _streamed(ask: Callable[[Callable[[str], None]], Answer], every: float = 0.1) -> Iterator[str | Answer]:
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


def _context(text: str, start: int, end: int) -> tuple[int, int]:
    """The paragraph around ``text[start:end]``, at most ``CONTEXT_CHARS`` on each side."""
    left = max(text.rfind("\n", 0, start) + 1, start - CONTEXT_CHARS)
    right = text.find("\n", end)
    right = min(len(text) if right < 0 else right, end + CONTEXT_CHARS)
    return left, right


def source_html(citation: Citation, article: Article | None, turn: int, open_: bool = False) -> str:
    """Return one source: title, source, date, link, and the passage with the quote highlighted."""
    c = citation
    quote = f"<mark>{html.escape(c.quote)}</mark>"
    if article is not None and article.text[c.start : c.end] == c.quote:
        left, right = _context(article.text, c.start, c.end)
        passage = (
            ("…" if left > 0 and article.text[left - 1] != "\n" else "")
            + html.escape(article.text[left : c.start])
            + quote
            + html.escape(article.text[c.end : right])
            + ("…" if right < len(article.text) and article.text[right] != "\n" else "")
        )
    else:
        passage = quote + " <span class='qa-meta'>(the article has since been removed from the library)</span>"
    meta = " · ".join(html.escape(x) for x in (c.source, c.date) if x)
    url = safe_url(c.url)
    link = (
        f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer'>open article</a>"
        if url
        else ""
    )
    details = [f"{html.escape(c.doc_id)}, characters {c.start}–{c.end}", f"score {c.score:.2f}", link]
    return (
        f"<details class='qa-source' id='{source_id(turn, c.number)}'{' open' if open_ else ''}>"
        f"<summary><b>[{c.number}] {html.escape(c.title)}</b> <span class='qa-meta'>{meta}</span></summary>"
        f"<div class='qa-meta'>{' · '.join(d for d in details if d)}</div>"
        f"<p class='qa-passage'>{passage}</p></details>"
    )


def sources_html(answers: Sequence[Answer], article: Callable[[str], Article], shown: int | None = None) -> str:
    """Return the sources panel of a conversation: the latest answer's sources (the first
    one open), then those of earlier answers, folded. ``article`` looks articles up;
    ``shown`` limits the latest answer to its first sources (while it is streamed)."""
    if not answers:
        return NO_SOURCES

    def block(turn: int, citations: Sequence[Citation], open_first: bool) -> str:
        parts = []
        for c in citations:
            try:
                found: Article | None = article(c.doc_id)
            except UnknownArticleError:  # removed from the library since it was cited
                found = None
            parts.append(source_html(c, found, turn, open_=open_first and c.number == 1))
        return "\n".join(parts)

    latest = answers[-1]
    panel = block(len(answers), latest.citations[:shown], True) or (
        "<p class='qa-meta'>No sources: the answer quotes no article.</p>"
    )
    if latest.abstained and latest.citations:
        panel = f"<p class='qa-meta'>{html.escape(NEAREST)}</p>" + panel
    earlier = []
    for turn in range(len(answers) - 1, max(0, len(answers) - 1 - EARLIER_TURNS_SHOWN), -1):
        answer = answers[turn - 1]
        if answer.citations:
            question = f"<p class='qa-meta'>Question {turn}: {html.escape(answer.question)}</p>"
            earlier.append(question + block(turn, answer.citations, False))
    if earlier:
        panel += "<details class='qa-earlier'><summary>Sources of earlier answers</summary>" + "".join(earlier)
        panel += "</details>"
    return panel


def library_html(library: Sequence[tuple[Article, int]]) -> str:
    """Return the article library as an HTML table (title, source, date, passages, id)."""
    if not library:
        return "<p class='qa-meta'>The library is empty: upload articles below.</p>"
    rows = []
    for a, passages in sorted(library, key=lambda item: (item[0].date or "", item[0].title), reverse=True):
        url = safe_url(a.url)
        title = html.escape(a.title)
        if url:
            title = f"<a href='{html.escape(url, quote=True)}' target='_blank' rel='noopener noreferrer'>{title}</a>"
        cells = [title, html.escape(a.source or ""), html.escape(a.date or ""), str(passages), html.escape(a.doc_id)]
        rows.append("<tr>" + "".join(f"<td>{cell}</td>" for cell in cells) + "</tr>")
    head = "".join(f"<th>{h}</th>" for h in ("Title", "Source", "Date", "Passages", "ID"))
    return f"<table><thead><tr>{head}</tr></thead><tbody>{''.join(rows)}</tbody></table>"


def header_markdown(library: Sequence[tuple[Article, int]]) -> str:
    """Return the page's heading: how many articles it answers from."""
    count = len(library)
    return (
        f"## Newsdesk QA\nAnswers from **{count}** indexed article{'' if count == 1 else 's'}, "
        "every sentence with its source. When the articles do not say, it says so."
    )


def _user(text: str) -> dict[str, str]:
    return {"role": "user", "content": escape_text(text)}


def _bot(text: str) -> dict[str, str]:
    return {"role": "assistant", "content": text}


def library_signature(library: Sequence[tuple[Article, int]]) -> str:
    """Return a string that changes whenever an article is added, changed or removed."""
    return "|".join(sorted(f"{a.doc_id}:{a.title}:{n}" for a, n in library))


class ChatPage:
    """The page's event handlers, over one shared assistant."""

    def __init__(self, assistant: Assistant) -> None:
        self.assistant = assistant

    # ---- chat ------------------------------------------------------------------
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
    ) -> Iterator[tuple[Any, ...]]:
        """Answer ``message`` in this session's conversation, streaming the answer sentence by sentence.

        With the LLM as ``reader``, its draft streams as it is written, then the checked answer
        replaces it. Yields (textbox, chat, turns, sources panel, Markdown export).
        """
        chat, turns = list(chat or []), tuple(turns or ())
        message = message or ""
        asked = [*chat, _user(message)] if message.strip() else chat
        yield "", [*asked, _bot(SEARCHING)], turns, NO_SOURCES, gr.skip()
        conversation = self.assistant.chat(turns)
        options = {
            "sources": sources or None,
            "since": since or None,
            "until": until or None,
            "as_of": as_of or None,
            "reader": reader or None,
            "strictness": None if strictness is None else float(strictness),
        }
        try:
            if self.assistant.uses_llm(reader or None):
                answer = None
                for item in _streamed(lambda on_token: conversation.ask(message, on_token=on_token, **options)):
                    if isinstance(item, Answer):
                        answer = item
                    else:
                        yield "", [*asked, _bot(DRAFTING + escape_text(item))], turns, NO_SOURCES, gr.skip()
            else:
                answer = conversation.ask(message, **options)
        except QAError as exc:
            yield "", [*asked, _bot(escape_text(str(exc)))], turns, NO_SOURCES, ""
            return
        except Exception:  # the page must say so rather than search forever
            log.exception("Answering %r failed", message)
            yield "", [*asked, _bot(FAILED)], turns, NO_SOURCES, ""
            return
        asked[-1] = _user(answer.question)
        answers, turn = [*(t.answer for t in turns), answer], len(turns) + 1
        for shown in range(1, len(answer.citations) if answer.reader != "llm" else 0):
            partial = sources_html(answers, self.assistant.article, shown)
            yield "", [*asked, _bot(answer_markdown(answer, turn, shown))], turns, partial, gr.skip()
        panel = sources_html(answers, self.assistant.article)
        yield "", [*asked, _bot(answer_markdown(answer, turn))], conversation.history, panel, answer.to_markdown()

    def clear(self) -> tuple[list[Any], tuple[()], str, str]:
        """Forget this session's conversation."""
        return [], (), NO_SOURCES, ""

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
        try:
            answer = self.assistant.ask(
                question,
                sources=sources or None,
                since=since or None,
                until=until or None,
                as_of=as_of or None,
                strictness=None if strictness is None else float(strictness),
            )
        except QAError as exc:
            return {"error": str(exc)}
        return answer.to_dict()

    # ---- library ---------------------------------------------------------------
    def articles_api(self) -> list[dict[str, Any]]:
        """Return the library: each article's metadata and passage count (no text)."""
        return [
            {k: v for k, v in a.to_dict().items() if k not in ("text", "path")} | {"passages": n}
            for a, n in self.assistant.library()
        ]

    def refresh(self, library: Sequence[tuple[Article, int]] | None = None) -> tuple[Any, ...]:
        """Return (library table, removal choices, source filter choices, heading, library signature)."""
        library = self.assistant.library() if library is None else library
        choices = [(f"{a.title} ({a.doc_id})", a.doc_id) for a, _ in library]
        sources = sorted({a.source for a, _ in library if a.source})
        return (
            library_html(library),
            gr.update(choices=choices, value=[]),
            gr.update(choices=sources),
            header_markdown(library),
            library_signature(library),
        )

    def refresh_if_changed(self, seen: str | None) -> tuple[Any, ...]:
        """Like ``refresh``, but change nothing when the library is as this page last saw it."""
        library = self.assistant.library()
        if seen == library_signature(library):
            return (gr.skip(),) * 5
        return self.refresh(library)

    def upload(self, files: Sequence[Any] | None) -> tuple[Any, ...]:
        """Add uploaded article files to the library; returns a status message, then ``refresh()``.

        Gradio refuses files of other types or over the size limit before they get here;
        files that cannot be read as articles are named with the reason.
        """
        paths = [Path(f if isinstance(f, str) else getattr(f, "name", str(f))) for f in files or []]
        if not paths:
            return ("Choose one or more article files first.", *self.refresh())
        try:
            lines = self._describe_update(self.assistant.add(paths, show_progress=False))
        except QAError as exc:
            lines = [f"✗ {escape_text(str(exc))}"]
        return ("\n".join(f"- {line}" for line in lines), *self.refresh())

    def _describe_update(self, update: Any) -> list[str]:
        lines = []
        for verb, ids in (("Added", update.added), ("Updated", update.replaced), ("Already there", update.unchanged)):
            for doc_id in ids:
                lines.append(f"✓ {verb}: {escape_text(self._title(doc_id))} (id {escape_text(doc_id)})")
        for problem in update.problems:
            lines.append(f"✗ {escape_text(Path(problem.path).name)}: {escape_text(problem.reason)}")
        return lines or ["✗ Nothing could be read from these files."]

    def _title(self, doc_id: str) -> str:
        try:
            return self.assistant.article(doc_id).title
        except UnknownArticleError:
            return doc_id

    def remove(self, doc_ids: Sequence[str] | None) -> tuple[Any, ...]:
        """Delete the chosen articles from the library; returns a status message, then ``refresh()``."""
        ids = list(doc_ids or [])
        if not ids:
            return ("Choose the articles to remove first.", *self.refresh())
        titles = {d: self._title(d) for d in ids}
        try:
            removed = self.assistant.remove(ids)
        except QAError as exc:  # UnknownArticleError: removed meanwhile by another session
            return (f"✗ {escape_text(str(exc))}", *self.refresh())
        status = "\n".join(f"- ✓ Removed: {escape_text(titles[d])} (id {escape_text(d)})" for d in removed)
        return (status, *self.refresh())


def build_app(assistant: Assistant) -> gr.Blocks:
    """Return the chat page for ``assistant``; launch it with ``launch_options()``."""
    page = ChatPage(assistant)
    library = assistant.library()
    # No telemetry: the assistant works offline and its questions stay on this machine.
    with gr.Blocks(title="Newsdesk QA", analytics_enabled=False) as app:
        header = gr.Markdown(header_markdown(library), elem_id="qa-header")
        turns = gr.State(())
        seen = gr.State("")
        with gr.Tabs():
            with gr.Tab("Chat", id="chat"), gr.Row():
                with gr.Column(scale=3):
                    chatbot = gr.Chatbot(
                        label="Conversation",
                        height=460,
                        sanitize_html=True,
                        latex_delimiters=[],
                        buttons=["copy", "copy_all"],
                        elem_id="qa-chat",
                    )
                    question = gr.Textbox(
                        label="Question", placeholder="Ask about the articles…", lines=1, elem_id="qa-question"
                    )
                    with gr.Row():
                        ask_btn = gr.Button("Ask", variant="primary", elem_id="qa-ask")
                        clear_btn = gr.Button("Clear conversation", elem_id="qa-clear")
                    gr.Examples(EXAMPLE_QUESTIONS, inputs=[question], label="Example questions")
                    with gr.Accordion("Filters", open=False), gr.Row():
                        source_filter = gr.Dropdown(
                            sorted({a.source for a, _ in library if a.source}),
                            multiselect=True,
                            label="Sources",
                            value=[],
                        )
                        since_filter = gr.Textbox(label="Since (YYYY-MM-DD)", max_lines=1)
                        until_filter = gr.Textbox(label="Until (YYYY-MM-DD)", max_lines=1)
                        as_of_filter = gr.Textbox(
                            label="As of (YYYY-MM-DD or today): leave out later news, favour the weeks before",
                            value="",
                            max_lines=1,
                            elem_id="qa-as-of",
                        )
                    strictness = gr.Slider(
                        0.0,
                        1.0,
                        value=assistant.abstention.strictness
                        if assistant.config.strictness is None
                        else assistant.config.strictness,
                        step=0.05,
                        label="Strictness: answer only when the estimated chance that the articles answer is at least",
                        elem_id="qa-strictness",
                    )
                    reader_choice = _reader_setting(assistant)
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(NO_SOURCES, elem_id="qa-sources")
                    with gr.Accordion("Latest answer as Markdown (copy or download)", open=False):
                        export = gr.Code(
                            language="markdown",
                            buttons=["copy", "download"],
                            interactive=False,
                            lines=6,
                            show_label=False,
                            elem_id="qa-export",
                        )
            with gr.Tab("Library", id="library"):
                library_view = gr.HTML(library_html(library), elem_id="qa-library", elem_classes="qa-library")
                with gr.Row():
                    with gr.Column():
                        uploads = gr.File(
                            label=f"Add articles ({', '.join(SUPPORTED_SUFFIXES)}; "
                            f"up to {assistant.config.max_file_bytes / 1_000_000:g} MB each)",
                            file_count="multiple",
                            file_types=list(SUPPORTED_SUFFIXES),
                            elem_id="qa-upload",
                        )
                        upload_btn = gr.Button("Add to library", variant="primary", elem_id="qa-add")
                    with gr.Column():
                        to_remove = gr.Dropdown(
                            [(f"{a.title} ({a.doc_id})", a.doc_id) for a, _ in library],
                            multiselect=True,
                            label="Remove articles",
                            value=[],
                            elem_id="qa-remove-choice",
                        )
                        remove_btn = gr.Button("Remove", variant="stop", elem_id="qa-remove")
                status = gr.Markdown(elem_id="qa-library-status")

        chat_in = [question, chatbot, turns, source_filter, since_filter, until_filter, strictness, as_of_filter]
        if reader_choice is not None:
            chat_in.append(reader_choice)
        chat_out = [question, chatbot, turns, sources, export]
        ask_btn.click(page.respond, chat_in, chat_out, api_name="chat")
        question.submit(page.respond, chat_in, chat_out, api_visibility="private")
        clear_btn.click(page.clear, None, [chatbot, turns, sources, export], api_name="clear")

        library_out = [library_view, to_remove, source_filter, header, seen]
        upload_btn.click(page.upload, [uploads], [status, *library_out], api_name="upload").then(
            lambda: None, None, [uploads], api_visibility="private"
        )
        remove_btn.click(page.remove, [to_remove], [status, *library_out], api_name="remove")
        app.load(page.refresh, None, library_out, api_visibility="private")
        gr.Timer(REFRESH_SECONDS).tick(
            page.refresh_if_changed, [seen], library_out, api_visibility="private", show_progress="hidden"
        )
        gr.api(page.ask_api, api_name="ask")
        gr.api(page.articles_api, api_name="articles")
    return app


def _reader_setting(assistant: Assistant) -> gr.Radio | None:
    """The "Answer with" setting: shown only when an LLM is configured (``--llm``)."""
    if not assistant.uses_llm():
        return None
    name = LLMSpec.parse(assistant.config.llm, assistant.config.llm_model).name
    return gr.Radio(
        [("Quoted sentences", "sentence"), (f"LLM ({name}), every sentence checked against its sources", "llm")],
        value="llm",
        label="Answer with",
        elem_id="qa-reader",
    )


def launch_options(config: Config) -> dict[str, Any]:
    """Return the ``launch()`` options the page needs: its CSS and script, the upload limit."""
    return {"css": CSS, "head": HEAD, "max_file_size": config.max_file_bytes, "footer_links": ["api"]}


def serve(
    config: Config,
    host: str = "127.0.0.1",
    port: int = 7860,
    seed_paths: Sequence[str] = ("seeds",),
    auth: Credentials | None = None,
    loading: Future[Assistant] | None = None,
) -> None:
    """Load (or build from ``seed_paths``) the index and serve the chat page until stopped.

    ``loading`` is the assistant being loaded already (``qa.assistant.start_loading``, which
    app.py calls before it imports this module). With ``auth`` (user, password) pairs, the
    page and its API require a login. Serving a non-loopback ``host`` without one (or with
    one over plain HTTP) logs a warning first.
    """
    if warning := exposure_warning(host, auth):
        log.warning(warning)
    assistant = (loading or start_loading(config, seed_paths)).result()
    app = build_app(assistant)
    log.info("Serving on http://%s:%d%s", host, port, f" (login required: {len(auth)} user(s))" if auth else "")
    app.queue(default_concurrency_limit=4).launch(
        server_name=host,
        server_port=port,
        show_error=False,
        auth=auth or None,
        auth_message="Newsdesk QA: log in with the user name and password you were given." if auth else None,
        **launch_options(config),
    )
