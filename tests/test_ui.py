"""The chat UI: app.py on a free port, driven through gradio_client (the endpoints the page uses),
and the page's rendering functions on their own (escaping, links, highlights)."""

from __future__ import annotations

import json
import urllib.request
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path

import pytest
from gradio_client import Client, handle_file

from qa import Answer, Article, Catalog, CatalogEntry, Citation, ShortAnswer
from qa.web.render import answer_markdown, escape_text, library_html, safe_url, source_html

from .ui_server import running_app

UPLOAD_LIMIT = 200_000
CHINA = "What did China say about the Taliban?"
EVIL_TITLE = "Evil <script>window.pwned = 1</script> headline"
EVIL = f"""{EVIL_TITLE}

The harbour board of Lisbon voted <img src=x onerror="window.pwned = 2"> to close the old fish market on Thursday.

Critics said the vote [was rushed](javascript:window.pwned=3) and **unfair**.
"""


@pytest.fixture(scope="module")
def server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_app(seed_index_dir, tmp_path_factory.mktemp("ui"), {"QA_MAX_FILE_BYTES": str(UPLOAD_LIMIT)}) as url:
        yield url


def text_of(message: dict) -> str:
    content = message["content"]
    return content if isinstance(content, str) else " ".join(part.get("text", "") for part in content)


def test_ask_endpoint_returns_cited_answer(server: str) -> None:
    client = Client(server, verbose=False)
    answer = client.predict(CHINA, api_name="/ask")
    assert not answer["abstained"] and "friendly and cooperative" in answer["text"]
    assert answer["citations"] and answer["citations"][0]["quote"] in answer["text"]
    filtered = client.predict(CHINA, [], "2022-01-01", "", api_name="/ask")
    assert filtered["abstained"] and filtered["citations"] == []  # the seed is dated 2021-08-16
    bad = client.predict(CHINA, [], "soon", "", api_name="/ask")
    assert "not a date" in bad["error"]
    before = client.predict(CHINA, [], "", "", 0.32, "2021-08-15", api_name="/ask")  # as of the day before
    assert before["abstained"] and not client.predict(CHINA, [], "", "", 0.32, "today", api_name="/ask")["abstained"]
    _, chat, _, _ = client.predict(CHINA, [], [], "", "", 0.32, "2021-08-15", api_name="/chat")
    assert "do not answer" in text_of(chat[-1])


def test_abstention_explains_itself_and_the_strictness_setting_moves_it(server: str) -> None:
    client = Client(server, verbose=False)
    russia = "What did Russia say about the Taliban?"
    answer = client.predict(russia, api_name="/ask")
    assert answer["abstained"] and answer["missing"] == ["Russia"] and "mention Russia" in answer["text"]
    assert answer["citations"] and "Nearest information" in answer["text"]  # offered as such, not as an answer
    assert not client.predict(russia, [], "", "", 0.0, api_name="/ask")["abstained"]
    assert client.predict(CHINA, [], "", "", 1.0, api_name="/ask")["abstained"]
    _, chat, sources, _ = client.predict(russia, [], [], "", "", api_name="/chat")
    reply = text_of(chat[-1])
    assert "None of the articles mention Russia" in reply and "Nearest information" in reply
    assert "qa-cite" in reply and "Nearest information" in sources and "<mark>" in sources
    _, chat, _, _ = client.predict(CHINA, [], [], "", "", 1.0, api_name="/chat")
    assert "do not answer" in text_of(chat[-1])


def test_chat_endpoint_streams_the_answer_with_linked_markers_sources_and_export(server: str) -> None:
    client = Client(server, verbose=False)
    job = client.submit(CHINA, [], [], "", "", api_name="/chat")
    textbox, chat, sources, export = job.result(timeout=120)
    updates = job.outputs()
    assert len(updates) >= 3  # "searching", then the answer sentence by sentence
    assert "Searching" in text_of(updates[0][1][-1])
    assert textbox == "" and [m["role"] for m in chat] == ["user", "assistant"]
    reply = text_of(chat[-1])
    assert "friendly and cooperative" in reply
    assert "href='#source-1-1'" in reply and "[1]</a>" in reply
    assert "id='source-1-1' open" in sources and "<mark>" in sources and "China Taliban" in sources
    assert export.startswith("On July 28") and "Sources:" in export and "[1] China Taliban (2021-08-16)" in export


def test_each_session_keeps_its_own_conversation(server: str) -> None:
    pakistan, china = Client(server, verbose=False), Client(server, verbose=False)
    _, chat_a, _, _ = pakistan.predict("What did Pakistan's prime minister say?", [], [], "", "", api_name="/chat")
    _, chat_b, _, _ = china.predict(CHINA, [], [], "", "", api_name="/chat")
    _, chat_a, _, _ = pakistan.predict("Where was he when he said it?", chat_a, [], "", "", api_name="/chat")
    reply = text_of(chat_a[-1])
    assert "Islamabad" in reply and "Searched: Where was Imran Khan" in reply
    _, chat_b, sources_b, _ = china.predict("Who said that?", chat_b, [], "", "", api_name="/chat")
    assert "Wang Yi" in text_of(chat_b[-1]) and "Imran Khan" not in text_of(chat_b[-1])
    assert "href='#source-2-1'" in text_of(chat_b[-1])  # markers of the second answer
    # The panel shows this answer's sources, then the first answer's, folded, so that its markers still work.
    assert sources_b.index("id='source-2-1' open") < sources_b.index("Sources of earlier answers")
    assert "id='source-1-1'>" in sources_b and "Question 1: What did China say" in sources_b
    assert len(chat_a) == len(chat_b) == 4

    cleared, panel, export = pakistan.predict(api_name="/clear")
    assert cleared == [] and export == "" and "<mark>" not in panel
    _, chat_a, _, _ = pakistan.predict("Where was he when he said it?", [], [], "", "", api_name="/chat")
    assert "Searched:" not in text_of(chat_a[-1])  # the conversation was forgotten


def test_upload_ask_and_remove_an_article(server: str, tmp_path: Path) -> None:
    client = Client(server, verbose=False)
    article = tmp_path / "2024-02-01-lisbon-bridge.md"
    article.write_text(
        "# Lisbon opens a new bridge\n\nThe new Tagus bridge in Lisbon opened to traffic on Thursday. "
        "Mayor Carlos Moedas said the bridge cost 900 million euros.\n",
        encoding="utf-8",
    )
    status, table, removable, _, heading = client.predict([handle_file(article)], api_name="/upload")
    assert "Added: Lisbon opens a new bridge" in status
    assert "Lisbon opens a new bridge" in table and "2024-02-01" in table
    assert "2024-02-01-lisbon-bridge" in json.dumps(removable) and "**2** indexed articles" in heading
    listed = {a["doc_id"]: a for a in client.predict(api_name="/articles")}
    assert listed["2024-02-01-lisbon-bridge"]["passages"] >= 1 and "text" not in listed["2024-02-01-lisbon-bridge"]
    newest = client.predict(0, 1, api_name="/articles")  # a page: offset, limit (newest first)
    assert [a["doc_id"] for a in newest] == ["2024-02-01-lisbon-bridge"]
    assert [a["doc_id"] for a in client.predict(offset=1, api_name="/articles")] == ["2021-08-16-china-taliban"]
    assert [a["doc_id"] for a in client.predict(query="TALIBAN", api_name="/articles")] == ["2021-08-16-china-taliban"]
    with pytest.raises(Exception, match="offset must be a whole number"):
        client.predict(offset=-1, api_name="/articles")

    answer = client.predict("How much did the bridge in Lisbon cost?", api_name="/ask")
    assert not answer["abstained"] and "900 million euros" in answer["text"]
    assert answer["citations"][0]["doc_id"] == "2024-02-01-lisbon-bridge"

    status, table, *_ = client.predict(["2024-02-01-lisbon-bridge"], api_name="/remove")
    assert "Removed: Lisbon opens a new bridge" in status and "Lisbon" not in table
    assert "2024-02-01-lisbon-bridge" not in {a["doc_id"] for a in client.predict(api_name="/articles")}
    assert client.predict("How much did the bridge in Lisbon cost?", api_name="/ask")["abstained"]


def test_uploads_that_cannot_be_used_get_clear_errors(server: str, tmp_path: Path) -> None:
    client = Client(server, verbose=False)
    pdf = tmp_path / "report.pdf"
    pdf.write_bytes(b"%PDF-1.4 not an article")
    empty = tmp_path / "empty.txt"
    empty.write_text("   \n", encoding="utf-8")
    with pytest.raises(Exception, match="Invalid file type.*'.txt', '.md'"):
        client.predict([handle_file(pdf)], api_name="/upload")  # refused by the upload itself
    status, *_ = client.predict([handle_file(empty)], api_name="/upload")
    assert "✗ empty.txt: file is empty" in status.replace("\\", "") and "Added" not in status
    big = tmp_path / "big.txt"
    big.write_text("Big news\n\n" + "A sentence about nothing at all. " * 8_000, encoding="utf-8")
    assert big.stat().st_size > UPLOAD_LIMIT
    with pytest.raises(Exception, match="(?i)size|large|exceed"):
        client.predict([handle_file(big)], api_name="/upload")  # refused before it reaches the library
    status, *_ = client.predict([], api_name="/remove")
    assert "Choose the articles to remove" in status
    status, *_ = client.predict(["no-such-article"], api_name="/remove")  # a typed id (any page's article)
    assert "✗ Not in the index: 'no-such-article'" in status.replace("\\", "")


def test_article_html_is_shown_as_text_never_as_markup(server: str, tmp_path: Path) -> None:
    client = Client(server, verbose=False)
    evil = tmp_path / "evil.txt"
    evil.write_text(EVIL, encoding="utf-8")
    status, table, *_ = client.predict([handle_file(evil)], api_name="/upload")
    assert "&lt;script&gt;" in status and "<script" not in status
    assert "&lt;script&gt;window.pwned = 1&lt;/script&gt;" in table and "<script" not in table
    _, chat, sources, export = client.predict(
        "What did the harbour board of Lisbon vote?", [], [], "", "", api_name="/chat"
    )
    reply = text_of(chat[-1])
    assert "fish market" in reply
    assert "<img" not in reply and "&lt;img src=x onerror=" in reply
    assert "<img" not in sources and "<script" not in sources and "&lt;img src=x" in sources
    assert "<img src=x" in export  # the Markdown export is plain text: shown in a code box, not rendered
    client.predict(["evil"], api_name="/remove")


def test_page_binds_to_loopback_only(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")
    page = urllib.request.urlopen(server, timeout=5).read().decode()
    assert "Newsdesk QA" in page


# ---- rendering, without a server ---------------------------------------------------------
def _citation(quote: str, number: int = 1, url: str | None = None) -> Citation:
    return Citation(number, "doc", "T <b>itle</b>", "ex<ample>.com", "2024-01-01", url, quote, 7, 7 + len(quote), 3.0)


def test_rendering_escapes_html_and_markdown() -> None:
    quote = "He said <script>alert(1)</script> and [click](javascript:alert(2)) **now**."
    answer = Answer("q?", f"{quote} [1]", (_citation(quote),), False, resolved_question="q (<i>x</i>)?")
    shown = answer_markdown(answer, 3)
    assert "<script>" not in shown and "&lt;script&gt;" in shown
    assert "\\[click\\]\\(javascript:alert\\(2\\)\\)" in shown and "\\*\\*now\\*\\*" in shown
    assert "<a href='#source-3-1' class='qa-cite'" in shown and "Searched: q \\(&lt;i&gt;x&lt;/i&gt;\\)?" in shown
    assert answer_markdown(answer, 3, shown=0) == ""
    assert escape_text("a_b $x$") == "a\\_b \\$x\\$"

    short = ShortAnswer("<script>", "doc", 16, 24, 1, "thing")  # the few words asked for lead, bold and escaped
    shown = answer_markdown(replace(answer, short=short), 3)
    assert shown.startswith("**&lt;script&gt;** <a href='#source-3-1' class='qa-cite'") and shown.count("[1]") == 2

    article = Article("doc", "T", "Intro. " + quote + " Outro <b>bold</b>.")
    panel = source_html(_citation(quote, url="javascript:alert(3)"), article, 1, open_=True)
    assert "<script" not in panel and "<b>itle" not in panel and "ex&lt;ample&gt;.com" in panel
    assert f"<mark>{quote.replace('<', '&lt;').replace('>', '&gt;')}</mark>" in panel
    assert "href='javascript" not in panel and "Outro &lt;b&gt;bold" in panel and " open>" in panel
    assert "href='https://example.com/a?b=1&amp;c=2'" in source_html(
        _citation(quote, url="https://example.com/a?b=1&c=2"), article, 1
    )
    removed = source_html(_citation(quote), None, 1)
    assert "removed from the library" in removed and "&lt;script&gt;" in removed

    evil = CatalogEntry("x", "<img src=x onerror=alert(1)>", None, "<b>", "javascript:1", 2)
    table = library_html(Catalog(1, (evil,)), "<script>x")
    assert "<img" not in table and "&lt;img" in table and "javascript" not in table and "&lt;b&gt;" in table
    assert "<script" not in table and "&lt;script&gt;x" in table  # the filter, shown as typed
    assert "&lt;script&gt;x" in library_html(Catalog(0, ()), "<script>x")
    assert safe_url("https://a.example/x") == "https://a.example/x"
    assert safe_url("javascript:alert(1)") is None and safe_url("data:text/html,x") is None


def test_the_page_imports_gradio_without_regenerating_its_stubs() -> None:
    """qa.web.gradio_shim skips Gradio's per-import rewrite of its .pyi stubs; the components still work."""
    import subprocess
    import sys

    code = (
        "import qa.web.app, qa.web.gradio_shim, gradio\n"
        "assert qa.web.gradio_shim.stubs_skipped(), 'stub regeneration ran'\n"
        "assert qa.web.gradio_shim.gr is gradio and callable(gradio.Textbox.submit)\n"
        "import sys; assert not any(type(f).__name__ == '_SkipStubRegeneration' for f in sys.meta_path)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
