"""The Gradio chat page: a thin shell over ``Assistant``, built (``build_app``) and served (``serve``).

What it shows is made by ``qa.web.render`` (pure functions); what its events do, by
``qa.web.page``. ``python app.py`` and ``qa serve`` start it.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import Future
from typing import Any

from qa import Feeds, FeedScheduler, start_loading
from qa.assistant import Assistant
from qa.config import Config
from qa.types import SUPPORTED_SUFFIXES
from qa.web import render
from qa.web.auth import Credentials, exposure_warning
from qa.web.gradio_shim import gr
from qa.web.page import PAGE_ROWS, Browsing, ChatPage, View, library_signature
from qa.web.sources import SourcesPanel, SourcesView

log = logging.getLogger(__name__)

EXAMPLE_QUESTIONS = [
    "What did China say about the Taliban?",
    "What did Pakistan's prime minister say?",
    "Where was he when he said it?",
    "Where did President Ashraf Ghani go?",
    "What did Russia say about the Taliban?",
]
REFRESH_SECONDS = 5.0  # how often a page looks for articles added or removed elsewhere


def build_app(assistant: Assistant, feeds: Feeds | None = None) -> gr.Blocks:
    """Return the chat page for ``assistant``; launch it with ``launch_options()``. ``feeds``: the feeds of its
    index folder (default: ``Feeds.of(assistant)`` when it has one), shared with a ``FeedScheduler``."""
    page_signature = library_signature(assistant)  # before the library is listed: see ChatPage.refresh
    summary, catalog = assistant.summary(), assistant.catalog(0, PAGE_ROWS)  # reads no article
    if feeds is None and assistant.index_dir is not None:
        feeds = Feeds.of(assistant)
    # No telemetry: the assistant works offline and its questions stay on this machine.
    with gr.Blocks(title="Newsdesk QA", analytics_enabled=False) as app:
        header = gr.Markdown(render.header_markdown(summary), elem_id="qa-header")
        turns = gr.State(())
        seen = gr.State(page_signature)  # what the page shows as built
        browsing = gr.State(Browsing())  # this session's page of the library and filter
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
                            list(catalog.sources),
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
                        value=assistant.default_strictness,
                        step=0.05,
                        label="Strictness: answer only when the estimated chance that the articles answer is at least",
                        elem_id="qa-strictness",
                    )
                    reader_choice = _reader_setting(assistant)
                with gr.Column(scale=2):
                    gr.Markdown("### Sources")
                    sources = gr.HTML(render.NO_SOURCES, elem_id="qa-sources")
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
                with gr.Row(equal_height=True):
                    library_filter = gr.Textbox(
                        label="Filter: title, source or id contains",
                        max_lines=1,
                        scale=4,
                        elem_id="qa-library-filter",
                    )
                    previous_btn = gr.Button("← Previous", scale=1, elem_id="qa-library-previous")
                    next_btn = gr.Button(f"Next {PAGE_ROWS} →", scale=1, elem_id="qa-library-next")
                library_view = gr.HTML(render.library_html(catalog), elem_id="qa-library", elem_classes="qa-library")
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
                            [(f"{e.title} ({e.doc_id})", e.doc_id) for e in catalog.entries],
                            multiselect=True,
                            allow_custom_value=True,  # an article of another page, by its id
                            label="Remove articles (of the page shown, or type an id and press Enter)",
                            value=[],
                            elem_id="qa-remove-choice",
                        )
                        remove_btn = gr.Button("Remove", variant="stop", elem_id="qa-remove")
                with gr.Row(equal_height=True):
                    url_box = gr.Textbox(
                        label="Add from URL: the addresses (http or https) of article pages, one a line",
                        placeholder="https://…",
                        lines=1,
                        max_lines=8,
                        scale=4,
                        elem_id="qa-url",
                    )
                    url_btn = gr.Button("Fetch and add", variant="primary", scale=1, elem_id="qa-add-url")
                status = gr.Markdown(elem_id="qa-library-status")
                feed_parts, (add_feed_btn, refresh_feeds_btn, remove_feeds_btn) = _feeds_panel(feeds)

        view = View(
            question,
            chatbot,
            turns,
            sources,
            export,
            library_view,
            to_remove,
            source_filter,
            header,
            seen,
            status,
            browsing,
        )
        page = ChatPage(assistant, view)
        chat_in = [question, chatbot, turns, source_filter, since_filter, until_filter, strictness, as_of_filter]
        if reader_choice is not None:
            chat_in.append(reader_choice)
        ask_btn.click(page.respond, chat_in, view.chat_outputs, api_name="chat")
        question.submit(page.respond, chat_in, view.chat_outputs, api_visibility="private")
        clear_btn.click(page.clear, None, [chatbot, turns, sources, export], api_name="clear")

        library_out = view.library_outputs
        upload_btn.click(page.upload, [uploads, browsing], [status, *library_out], api_name="upload").then(
            lambda: None, None, [uploads], api_visibility="private"
        )
        remove_btn.click(page.remove, [to_remove, browsing], [status, *library_out], api_name="remove")
        hidden: dict[str, Any] = {"api_visibility": "private", "show_progress": "hidden"}
        previous_btn.click(page.previous_page, [browsing], view.browse_outputs, **hidden)
        next_btn.click(page.next_page, [browsing], view.browse_outputs, **hidden)
        # change, not input: a pasted filter counts too (only a person changes this box)
        library_filter.change(
            page.filter_library, [library_filter, browsing], view.browse_outputs, trigger_mode="always_last", **hidden
        )
        sources_view = SourcesView(url_box, *feed_parts)
        panel = SourcesPanel(page, feeds, sources_view)
        url_btn.click(panel.add_urls, [url_box, browsing], [status, url_box, *library_out], api_name="add_urls")
        url_box.submit(panel.add_urls, [url_box, browsing], [status, url_box, *library_out], api_visibility="private")
        feed_out = [sources_view.feed_status, sources_view.feed_url, *sources_view.feed_outputs, *library_out]
        feed_in = [sources_view.feed_url, sources_view.feed_every, browsing]
        add_feed_btn.click(panel.add_feed, feed_in, feed_out, api_name="add_feed")
        choice = [sources_view.feed_choice]
        refresh_feeds_btn.click(panel.refresh_now, [*choice, browsing], feed_out, api_name="refresh_feeds")
        remove_out = [sources_view.feed_status, *sources_view.feed_outputs]
        remove_feeds_btn.click(panel.remove_feeds, choice, remove_out, api_name="remove_feeds")
        gr.api(panel.feeds_api, api_name="feeds")
        # a page opened later shows the library as it is then, but is left alone when it is as built: an update of
        # the Filters row while someone types in it would wipe what they typed
        app.load(page.refresh_if_changed, [seen, browsing], library_out, **hidden)
        gr.Timer(REFRESH_SECONDS).tick(page.refresh_if_changed, [seen, browsing], library_out, **hidden)
        # the feed table shows each scheduled refresh within seconds
        feeds_in, feeds_out = [sources_view.feeds_seen, sources_view.feed_choice], sources_view.feed_outputs
        app.load(panel.refresh_feeds_if_changed, feeds_in, feeds_out, api_visibility="private", show_progress="hidden")
        gr.Timer(REFRESH_SECONDS).tick(
            panel.refresh_feeds_if_changed, feeds_in, feeds_out, api_visibility="private", show_progress="hidden"
        )
        gr.api(page.ask_api, api_name="ask")
        gr.api(page.articles_api, api_name="articles")
    return app


def _feeds_panel(feeds: Feeds | None) -> tuple[tuple[Any, ...], tuple[gr.Button, gr.Button, gr.Button]]:
    """The Feeds panel of the Library tab: the followed feeds, adding one, refreshing and removing them.

    Returns its components as ``SourcesView`` takes them (after the URL box), and its three buttons."""
    listed = feeds.list() if feeds is not None else []
    with gr.Accordion("Feeds (RSS and Atom)", open=True, visible=feeds is not None):
        table = gr.HTML(render.feeds_html(listed, Feeds.format_every), elem_id="qa-feeds", elem_classes="qa-library")
        with gr.Row(equal_height=True):
            url = gr.Textbox(label="Feed address (http or https)", max_lines=1, scale=4, elem_id="qa-feed-url")
            every = gr.Textbox(
                label="Refresh every (90s, 30m, 6h, 1d)", value="30m", max_lines=1, scale=1, elem_id="qa-feed-every"
            )
            add = gr.Button("Add feed", variant="primary", scale=1, elem_id="qa-feed-add")
        with gr.Row(equal_height=True):
            choice = gr.Dropdown(
                [(f.title or f.url, f.url) for f in listed],
                multiselect=True,
                label="Feeds to refresh or remove (refresh: all when none is chosen)",
                value=[],
                scale=4,
                elem_id="qa-feed-choice",
            )
            refresh = gr.Button("Refresh now", scale=1, elem_id="qa-feed-refresh")
            remove = gr.Button("Remove feed", variant="stop", scale=1, elem_id="qa-feed-remove")
        status = gr.Markdown(elem_id="qa-feed-status")
    seen = gr.State(render.feeds_signature(listed))
    return (table, url, every, choice, status, seen), (add, refresh, remove)


def _reader_setting(assistant: Assistant) -> gr.Radio | None:
    """The "Answer with" setting: shown only when an LLM is configured (``--llm``)."""
    name = assistant.llm_name
    if name is None:
        return None
    return gr.Radio(
        [("Quoted sentences", "sentence"), (f"LLM ({name}), every sentence checked against its sources", "llm")],
        value="llm",
        label="Answer with",
        elem_id="qa-reader",
    )


def launch_options(config: Config) -> dict[str, Any]:
    """Return the ``launch()`` options the page needs: its CSS and script, the upload limit."""
    return {"css": render.CSS, "head": render.HEAD, "max_file_size": config.max_file_bytes, "footer_links": ["api"]}


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
    if not config.fetch_private:
        log.info("URLs on this machine and private networks are not fetched (--allow-private-fetch allows them)")
    assistant = (loading or start_loading(config, seed_paths)).result()
    feeds = Feeds.of(assistant) if assistant.index_dir is not None else None
    scheduler = FeedScheduler(feeds).start() if feeds is not None else None  # feeds refreshed on their schedule
    app = build_app(assistant, feeds)
    log.info("Serving on http://%s:%d%s", host, port, f" (login required: {len(auth)} user(s))" if auth else "")
    try:
        app.queue(default_concurrency_limit=4).launch(
            server_name=host,
            server_port=port,
            show_error=False,
            auth=auth or None,
            auth_message="Newsdesk QA: log in with the user name and password you were given." if auth else None,
            **launch_options(config),
        )
    finally:
        if scheduler is not None:
            scheduler.stop(timeout=5)
