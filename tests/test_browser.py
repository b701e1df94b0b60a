"""The chat page in a real browser: Playwright driving Debian's Chromium (headless).

Screenshots go to ``test-artifacts/``. Chromium is found at ``$QA_CHROMIUM`` or
``/usr/bin/chromium`` (``make setup`` installs it with apt-get when it is missing). Without
it these tests are skipped, or fail when ``QA_REQUIRE_BROWSER`` is set (as in CI).
"""

from __future__ import annotations

import os
import shutil
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Locator, Page, expect, sync_playwright

from .conftest import ROOT
from .ui_server import running_app

CHROMIUM = os.environ.get("QA_CHROMIUM") or shutil.which("chromium") or "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
ANSWER_TIMEOUT_MS = 90_000


@pytest.fixture(scope="module")
def server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_app(seed_index_dir, tmp_path_factory.mktemp("browser")) as url:
        yield url


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    if not Path(CHROMIUM).exists():
        missing = f"no Chromium at {CHROMIUM}: `make browser` or `apt-get install -y chromium` (or set QA_CHROMIUM)"
        if os.environ.get("QA_REQUIRE_BROWSER"):
            pytest.fail(missing)
        pytest.skip(missing)
    ARTIFACTS.mkdir(exist_ok=True)
    with sync_playwright() as playwright:
        chromium = playwright.chromium.launch(executable_path=CHROMIUM, headless=True, args=CHROMIUM_ARGS)
        yield chromium
        chromium.close()


class Watched:
    """A page, with the dialogs (alert, confirm) and uncaught script errors it produced."""

    def __init__(self, page: Page) -> None:
        self.page = page
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        page.on("dialog", lambda dialog: (self.dialogs.append(dialog.message), dialog.dismiss()))
        page.on("pageerror", lambda error: self.errors.append(str(error)))


@pytest.fixture
def watched(browser: Browser, server: str) -> Iterator[Watched]:
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    page.goto(server)
    expect(page.locator("#qa-header")).to_contain_text("indexed article")
    yield Watched(page)
    page.close()


def ask(page: Page, question: str) -> str:
    """Ask in the chat; return the answer's text once it has stopped changing (it is streamed)."""
    bots = page.locator("#qa-chat [data-testid='bot']")
    before = bots.count()
    page.get_by_role("textbox", name="Question").fill(question)
    page.locator("#qa-ask").click()
    expect(bots).to_have_count(before + 1)
    deadline, last = time.monotonic() + ANSWER_TIMEOUT_MS / 1000, None
    while time.monotonic() < deadline:
        text = bots.last.inner_text()
        if text == last and "Searching the articles" not in text:
            return text
        last = text
        page.wait_for_timeout(500)
    raise AssertionError(f"no answer to {question!r} within {ANSWER_TIMEOUT_MS} ms: {last!r}")


def type_into_new_field(field: Locator, text: str, tries: int = 5) -> None:
    """Type ``text`` into a field of a panel just opened. Opening the Filters panel mounts its fields, and a
    value typed within the first tenth of a second or so (seen under load) is reset by that mounting; a
    person starts typing later. So type, and type again until the field keeps it."""
    for _ in range(tries):
        field.fill(text)
        field.press("Tab")
        try:
            expect(field).to_have_value(text, timeout=1000)
            return
        except AssertionError:
            continue


def upload(page: Page, path: Path) -> None:
    page.get_by_role("tab", name="Library").click()
    page.locator("#qa-upload input[type=file]").set_input_files(str(path))
    page.locator("#qa-add").click()
    expect(page.locator("#qa-library-status")).to_contain_text("Added", timeout=ANSWER_TIMEOUT_MS)


def test_ask_see_cited_answer_and_open_its_highlighted_source(watched: Watched) -> None:
    page = watched.page
    ask(page, "What did China say about the Taliban?")
    answer = page.locator("#qa-chat [data-testid='bot']").last
    expect(answer).to_contain_text("friendly and cooperative")
    markers = answer.locator("a.qa-cite")
    assert markers.count() >= 2
    expect(markers.first).to_have_text("[1]")
    first = page.locator("#source-1-1")
    expect(first.locator("mark")).to_be_visible()  # the first source is open, its quote highlighted
    page.screenshot(path=str(ARTIFACTS / "browser-answer.png"))

    last = markers.count()
    source = page.locator(f"#source-1-{last}")
    assert source.get_attribute("open") is None
    markers.last.click()  # a marker opens its source in the panel
    expect(source).to_have_attribute("open", "")
    quote = source.locator("mark")
    expect(quote).to_be_visible()
    assert quote.inner_text().strip() and quote.inner_text().strip()[:40] in answer.inner_text()
    expect(source).to_contain_text("China Taliban")
    page.screenshot(path=str(ARTIFACTS / "browser-source-opened.png"))

    page.get_by_text("Latest answer as Markdown").click()
    expect(page.locator("#qa-export")).to_contain_text("Sources:")

    ask(page, "Who said that?")
    expect(page.locator("#qa-chat [data-testid='bot']").last).to_contain_text("Searched: Who said")
    # A marker of the first answer still opens its source, now among the earlier answers' sources.
    earlier = page.locator("#source-1-1")
    assert not earlier.is_visible()
    page.locator("#qa-chat [data-testid='bot']").first.locator("a.qa-cite").first.click()
    expect(earlier.locator("mark")).to_be_visible()
    page.locator("#qa-clear").click()
    expect(page.locator("#qa-chat [data-testid='bot']")).to_have_count(0)
    assert watched.errors == [] and watched.dialogs == []


def test_a_statement_is_shown_with_its_speaker_where_the_sentence_says_only_she(watched: Watched) -> None:
    page = watched.page
    text = ask(page, "Who said “We welcome this”?")
    assert "Hua Chunying (Chinese foreign ministry spokesperson): “" in text and "she said" in text
    answer = page.locator("#qa-chat [data-testid='bot']").last
    expect(answer.locator("em").first).to_have_text("Hua Chunying (Chinese foreign ministry spokesperson):")
    expect(answer.locator("strong").first).to_have_text("Hua Chunying")  # the short answer leads
    source = page.locator("#source-1-1")
    expect(source.locator(".qa-speaker")).to_have_text("Said by Hua Chunying (Chinese foreign ministry spokesperson)")
    expect(source.locator("mark")).to_contain_text("We welcome this")
    page.screenshot(path=str(ARTIFACTS / "browser-speaker.png"))

    text = ask(page, "What did Hua Chunying say?")
    assert text.count("Hua Chunying (Chinese foreign ministry spokesperson):") >= 2  # "she said", "the spokesperson"
    expect(page.locator("#source-2-3 .qa-speaker")).to_contain_text("Said by Hua Chunying")
    assert watched.errors == [] and watched.dialogs == []


def test_asked_as_of_a_day_before_the_article_the_page_says_the_articles_do_not_answer(watched: Watched) -> None:
    page = watched.page
    page.get_by_text("Filters").click()
    as_of = page.locator("#qa-as-of input")
    type_into_new_field(as_of, "2021-08-15")  # the seed is dated 2021-08-16
    expect(as_of).to_have_value("2021-08-15")
    assert "do not answer" in ask(page, "What did China say about the Taliban?")
    as_of.fill("today")
    as_of.press("Tab")
    assert "friendly and cooperative" in ask(page, "What did China say about the Taliban?")
    assert watched.errors == [] and watched.dialogs == []


def test_uploaded_article_is_answered_from_and_other_sessions_see_it(
    watched: Watched, browser: Browser, server: str, tmp_path: Path
) -> None:
    other = browser.new_page()
    other.goto(server)
    other.get_by_role("tab", name="Library").click()
    expect(other.locator("#qa-library")).to_contain_text("China Taliban")

    article = tmp_path / "2024-03-05-tram-line.txt"
    article.write_text(
        "Porto opens its new tram line\n\nPorto opened its new tram line to Gaia on Tuesday. "
        "The line carries 20,000 passengers a day, the operator said.\n",
        encoding="utf-8",
    )
    page = watched.page
    upload(page, article)
    expect(page.locator("#qa-library")).to_contain_text("Porto opens its new tram line")
    expect(page.locator("#qa-header")).to_contain_text("2 indexed articles")
    # Another browser session sees the new article without reloading.
    expect(other.locator("#qa-library")).to_contain_text("Porto opens its new tram line", timeout=20_000)
    other.close()

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How many passengers does the Porto tram line carry?")
    expect(page.locator("#qa-chat [data-testid='bot']").last).to_contain_text("20,000 passengers")
    expect(page.locator("#qa-sources details[open]").first).to_contain_text("Porto opens its new tram line")
    page.screenshot(path=str(ARTIFACTS / "browser-uploaded.png"))

    page.get_by_role("tab", name="Library").click()
    page.locator("#qa-remove-choice input").click()
    page.get_by_role("option", name="Porto opens its new tram line (2024-03-05-tram-line)").click()
    page.keyboard.press("Escape")  # close the (multiselect) list
    page.locator("#qa-remove").click()
    expect(page.locator("#qa-library-status")).to_contain_text("Removed")
    expect(page.locator("#qa-library")).not_to_contain_text("Porto")
    assert watched.errors == [] and watched.dialogs == []


def test_an_article_with_script_and_html_does_not_run(watched: Watched, tmp_path: Path) -> None:
    evil = tmp_path / "evil.txt"
    evil.write_text(
        "Evil <script>window.pwned = 1; alert('title')</script> headline\n\n"
        "The harbour board of Lisbon voted <img src=x onerror=\"window.pwned = 2; alert('img')\"> "
        "to close the old fish market on Thursday. Critics called the vote "
        "<a href=\"javascript:alert('link')\">rushed</a> and <b>unfair</b>.\n",
        encoding="utf-8",
    )
    page = watched.page
    upload(page, evil)
    library = page.locator("#qa-library")
    expect(library).to_contain_text("Evil <script>window.pwned = 1; alert('title')</script> headline")
    assert library.locator("script, img").count() == 0

    page.get_by_role("tab", name="Chat").click()
    ask(page, "What did the harbour board of Lisbon vote?")
    answer = page.locator("#qa-chat [data-testid='bot']").last
    expect(answer).to_contain_text("voted <img src=x onerror=\"window.pwned = 2; alert('img')\"> to close")
    expect(page.locator("#qa-sources")).to_contain_text("<img src=x onerror=")
    assert page.locator("#qa-chat img[src='x'], #qa-sources img, #qa-sources script").count() == 0
    assert page.locator("#qa-sources a[href^='javascript'], #qa-chat a[href^='javascript']").count() == 0
    page.screenshot(path=str(ARTIFACTS / "browser-escaped.png"))
    assert page.evaluate("window.pwned") is None
    assert watched.dialogs == [] and watched.errors == []


@pytest.fixture(scope="module")
def library_server(catalog_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The page over a library of more articles than its library table shows at a time."""
    with running_app(catalog_index_dir, tmp_path_factory.mktemp("browser-library")) as url:
        yield url


def test_the_library_tab_shows_a_page_at_a_time_with_a_filter(browser: Browser, library_server: str) -> None:
    watched = Watched(browser.new_page(viewport={"width": 1280, "height": 900}))
    page = watched.page
    page.goto(library_server)
    expect(page.locator("#qa-header")).to_contain_text("55 indexed articles")
    page.get_by_role("tab", name="Library").click()
    library, rows = page.locator("#qa-library"), page.locator("#qa-library tbody tr")
    expect(library).to_contain_text("Articles 1–50 of 55, newest first")
    expect(rows).to_have_count(50)
    expect(rows.first).to_contain_text("Harbour report 51")  # the latest day
    expect(rows.first.locator("a[href='https://news.example/report-51']")).to_have_count(0)  # it has no URL
    expect(rows.nth(1).locator("a[href='https://news.example/report-50']")).to_have_count(1)
    page.locator("#qa-remove-choice input").click()  # chosen on this page, removed from another (below)
    page.get_by_role("option", name="Harbour report 51 (report-51)").click()
    page.keyboard.press("Escape")

    page.locator("#qa-library-next").click()
    expect(library).to_contain_text("Articles 51–55 of 55", timeout=20_000)
    expect(rows).to_have_count(5)
    expect(rows.last).to_contain_text("Harbour report 52")  # undated: last
    page.screenshot(path=str(ARTIFACTS / "browser-library-page-2.png"))
    page.locator("#qa-library-previous").click()
    expect(library).to_contain_text("Articles 1–50 of 55", timeout=20_000)

    type_into_new_field(page.locator("#qa-library-filter input"), "report 4")
    expect(library).to_contain_text("Articles 1–11 of 11 matching “report 4”", timeout=20_000)
    expect(rows).to_have_count(11)
    page.locator("#qa-remove-choice input").click()  # the removal choices are the page's articles
    expect(page.get_by_role("option", name="Harbour report 40 (report-40)")).to_have_count(1)
    expect(page.get_by_role("option", name="Harbour report 51 (report-51)")).to_have_count(0)
    page.locator("#qa-remove-choice input").fill("report-53")  # an article of no page shown: by its id
    page.keyboard.press("Enter")
    page.keyboard.press("Escape")
    page.locator("#qa-remove").click()
    status = page.locator("#qa-library-status")
    expect(status).to_contain_text("Removed: Harbour report 53", timeout=20_000)
    expect(status).to_contain_text("Removed: Harbour report 51")
    expect(page.locator("#qa-header")).to_contain_text("53 indexed articles")
    expect(library).to_contain_text("Articles 1–11 of 11 matching", timeout=20_000)  # the filter stays
    assert watched.errors == [] and watched.dialogs == []
    page.close()
