"""The Gradio chat page: a thin shell over ``Assistant``.

Each browser session keeps its own conversation (a tuple of turns in ``gr.State``);
the assistant, its index and models are shared. Everything that comes from an article
is HTML-escaped before it is shown.
"""

from __future__ import annotations

import html
import logging
from collections.abc import Sequence
from typing import Any

import gradio as gr

from qa.assistant import Assistant, Turn
from qa.config import Config
from qa.errors import QAError
from qa.types import Answer, Citation

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = [
    "What did China say about the Taliban?",
    "What did Pakistan's prime minister say?",
    "Where did President Ashraf Ghani go?",
    "What did Russia say about the Taliban?",
]

CSS = """
.qa-source { border-left: 3px solid #888; padding: 4px 10px; margin: 8px 0; }
.qa-source mark { background: #ffe58a; color: inherit; padding: 0 2px; }
.qa-meta { color: #666; font-size: 0.9em; }
"""


def answer_markdown(answer: Answer) -> str:
    """Return the answer as chat Markdown: escaped sentences, each with its ``[n]`` marker."""
    if answer.abstained or not answer.citations:
        return html.escape(answer.text)
    parts = [f"{html.escape(c.quote)} **[{c.number}]**" for c in answer.citations]
    text = " ".join(parts)
    if answer.resolved_question and answer.resolved_question != answer.question:
        text += f"\n\n<small>Searched: {html.escape(answer.resolved_question)}</small>"
    return text


def _paragraph_around(text: str, start: int, end: int) -> tuple[int, int]:
    left = text.rfind("\n", 0, start) + 1
    right = text.find("\n", end)
    return left, len(text) if right < 0 else right


def sources_html(assistant: Assistant, citations: Sequence[Citation]) -> str:
    """Return the sources panel: per citation its article and paragraph, quote highlighted."""
    if not citations:
        return "<p class='qa-meta'>No sources: the answer quotes no article.</p>"
    blocks = []
    for c in citations:
        text = assistant.article(c.doc_id).text
        left, right = _paragraph_around(text, c.start, c.end)
        passage = (
            html.escape(text[left : c.start])
            + f"<mark>{html.escape(text[c.start : c.end])}</mark>"
            + html.escape(text[c.end : right])
        )
        meta = " · ".join(html.escape(x) for x in (c.source, c.date) if x)
        link = (
            f" · <a href='{html.escape(c.url, quote=True)}' target='_blank' rel='noopener noreferrer'>article</a>"
            if c.url
            else ""
        )
        blocks.append(
            f"<div class='qa-source' id='source-{c.number}'><b>[{c.number}] {html.escape(c.title)}</b>"
            f"<div class='qa-meta'>{meta}{' · ' if meta else ''}{html.escape(c.doc_id)}, "
            f"characters {c.start}–{c.end}, score {c.score:.2f}{link}</div><p>{passage}</p></div>"
        )
    return "\n".join(blocks)


def build_app(assistant: Assistant) -> gr.Blocks:
    """Return the chat page for ``assistant``."""

    def respond(  # noqa: ANN202
        message: str,
        chat: list[dict[str, Any]],
        turns: tuple[Turn, ...],
        sources: list[str] | None = None,
        since: str = "",
        until: str = "",
    ):
        chat = list(chat or [])
        message = message or ""
        try:
            conversation = assistant.chat(turns or ())
            answer = conversation.ask(message, sources=sources or None, since=since or None, until=until or None)
        except QAError as exc:
            chat += [
                {"role": "user", "content": html.escape(message)},
                {"role": "assistant", "content": html.escape(str(exc))},
            ]
            return "", chat, turns, sources_html(assistant, [])
        chat += [
            {"role": "user", "content": html.escape(answer.question)},
            {"role": "assistant", "content": answer_markdown(answer)},
        ]
        return "", chat, conversation.history, sources_html(assistant, answer.citations)

    def clear() -> tuple[list, tuple, str]:
        return [], (), ""

    def ask_api(question: str, sources: list[str] | None = None, since: str = "", until: str = "") -> dict:
        """Answer one question without a conversation; returns the Answer as a dict."""
        try:
            return assistant.ask(question, sources=sources or None, since=since or None, until=until or None).to_dict()
        except QAError as exc:
            return {"error": str(exc)}

    titles = ", ".join(a.title for a in assistant.articles()[:5])
    count = len(assistant.articles())
    with gr.Blocks(title="Newsdesk QA") as app:
        gr.Markdown(
            f"## Newsdesk QA\nAnswers from {count} indexed article(s) "
            f"({html.escape(titles)}{'…' if count > 5 else ''}), "
            "each sentence with its source. When the articles do not say, it says so."
        )
        turns = gr.State(())
        with gr.Row():
            with gr.Column(scale=3):
                chatbot = gr.Chatbot(label="Conversation", height=460, sanitize_html=True)
                question = gr.Textbox(label="Question", placeholder="Ask about the articles…", lines=1)
                with gr.Row():
                    ask_btn = gr.Button("Ask", variant="primary")
                    clear_btn = gr.Button("Clear conversation")
                with gr.Accordion("Filters", open=False), gr.Row():
                    known = sorted({a.source for a in assistant.articles() if a.source})
                    source_filter = gr.Dropdown(known, multiselect=True, label="Sources", value=[])
                    since_filter = gr.Textbox(label="Since (YYYY-MM-DD)", max_lines=1)
                    until_filter = gr.Textbox(label="Until (YYYY-MM-DD)", max_lines=1)
                gr.Examples(EXAMPLE_QUESTIONS, inputs=[question], label="Examples")
            with gr.Column(scale=2):
                gr.Markdown("### Sources")
                sources = gr.HTML("<p class='qa-meta'>Sources of the latest answer appear here.</p>")
        outputs = [question, chatbot, turns, sources]
        inputs = [question, chatbot, turns, source_filter, since_filter, until_filter]
        ask_btn.click(respond, inputs, outputs, api_name="chat")
        question.submit(respond, inputs, outputs, api_visibility="private")
        clear_btn.click(clear, None, [chatbot, turns, sources], api_visibility="private")
        gr.api(ask_api, api_name="ask")
    return app


def serve(config: Config, host: str = "127.0.0.1", port: int = 7860, seed_paths: Sequence[str] = ("seeds",)) -> None:
    """Load (or build from ``seed_paths``) the index and serve the chat page until stopped."""
    assistant = Assistant.load_or_build(config.index_dir, seed_paths, config)
    app = build_app(assistant)
    log.info("Serving on http://%s:%d", host, port)
    app.queue(default_concurrency_limit=4).launch(
        server_name=host, server_port=port, css=CSS, footer_links=["api"], show_error=False
    )
