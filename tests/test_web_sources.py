"""The Library tab's "Add from URL" and Feeds panel: app.py on a free port, driven through gradio_client and in
a real browser, fetching from a real HTTP server on 127.0.0.1; and the private-address rule of a page served
on a non-local address."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client
from playwright.sync_api import Browser, expect

from qa.ingest.web import url_doc_id
from qa.web.sources import Done, in_thread

from .test_browser import ANSWER_TIMEOUT_MS, ARTIFACTS, Watched, ask, browser  # noqa: F401 - browser: a fixture
from .ui_server import running_app
from .web_site import LIBRARY, Route, Site, article_html, newsroom, rss, serving

pytestmark = pytest.mark.slow  # servers and a browser


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serving(Site()) as served:
        yield newsroom(served)


@pytest.fixture(scope="module")
def server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    with running_app(seed_index_dir, tmp_path_factory.mktemp("sources")) as url:
        yield url


def plain(markdown: str) -> str:
    """The status Markdown as it reads: the backslashes that escape what came from a page or a URL removed."""
    return re.sub(r"\\(.)", r"\1", markdown)


def test_in_thread_yields_what_the_work_tells_then_its_result() -> None:
    gate = threading.Event()

    def work(tell) -> int:  # noqa: ANN001
        tell("one")
        gate.wait(60)
        tell("two")
        return 42

    events = in_thread(work)
    assert next(events) == "one"  # told while the work still waits
    gate.set()
    rest = list(events)
    assert rest[-1] == Done(42) and all(e == "two" for e in rest[:-1])
    with pytest.raises(ZeroDivisionError):
        list(in_thread(lambda tell: 1 / 0))


def test_add_from_url_streams_its_progress_and_names_each_page_that_failed(server: str, site: Site) -> None:
    client = Client(server, verbose=False)
    urls = [site.url("/news/porto-tram-line"), site.url("/nothing-here"), "/etc/passwd", "file:///etc/hosts"]
    job = client.submit("\n".join(urls), api_name="/add_urls")
    status, box, table, *_ = job.result(timeout=120)
    status = plain(status)
    assert f"✓ Added: Porto opens its new tram line to Gaia (id {url_doc_id(urls[0])})" in status
    assert f"✗ {urls[1]}: HTTP 404 Not Found" in status
    assert "✗ /etc/passwd: not an http(s) address" in status and "✗ file:///etc/hosts: not an http(s) address" in status
    assert box == "" and "Porto opens its new tram line" in table
    assert any("page(s)" in plain(update[0]) for update in job.outputs()[:-1])  # progress shown as it went
    answer = client.predict("How many passengers does the Porto tram line carry?", api_name="/ask")
    assert "20,000" in answer["text"] and answer["citations"][0]["url"] == urls[0]
    assert not [path for path, _ in site.requests if "passwd" in path or "hosts" in path]


def test_feeds_are_added_refreshed_listed_and_removed_from_the_page(server: str, site: Site) -> None:
    client = Client(server, verbose=False)
    feed = site.url("/feeds/atom.xml")
    job = client.submit(feed, "1h", api_name="/add_feed")
    status, box, table, *_ = job.result(timeout=120)
    status = plain(status)
    assert "**Coimbra News**: 1 added" in status and "✓ Added: Coimbra closes the Santa Clara bridge" in status
    assert box == "" and "Coimbra News" in table and "1h" in table
    assert any("Coimbra News: " in plain(update[0]) for update in job.outputs()[:-1])
    (listed,) = client.predict(api_name="/feeds")
    assert (listed["url"], listed["every"], listed["outcome"]) == (feed, 3600, "1 added")
    status, *_ = client.predict([], api_name="/refresh_feeds")
    assert "not modified (HTTP 304)" in plain(status)
    status, *_ = client.predict(site.url("/feeds/broken.xml"), "30m", api_name="/add_feed")
    assert "✗" in status and "malformed feed" in plain(status)
    status, table, *_ = client.predict([feed], api_name="/remove_feeds")
    assert f"Stopped following {feed}" in plain(status) and "No feeds yet" in table
    assert client.predict(api_name="/feeds") == []


def test_served_to_others_the_page_does_not_fetch_this_machine_or_private_networks(
    seed_index_dir: Path, tmp_path: Path, site: Site
) -> None:
    before = len(site.requests)
    with running_app(seed_index_dir, tmp_path / "exposed", args=["--host", "0.0.0.0"]) as url:
        client = Client(url, verbose=False)
        status, *_ = client.predict(site.url("/news/porto-tram-line"), api_name="/add_urls")
        assert "refused: 127.0.0.1 is at 127.0.0.1, an address on this machine or a private network" in plain(status)
        status, *_ = client.predict(site.url("/feeds/rss.xml"), "30m", api_name="/add_feed")
        assert "refused:" in plain(status) and "allow-private-fetch" in plain(status)
        assert len(client.predict(api_name="/articles")) == 1 and client.predict(api_name="/feeds") == []
    assert len(site.requests) == before  # nothing reached the server
    with running_app(seed_index_dir, tmp_path / "allowed", args=["--host", "0.0.0.0", "--allow-private-fetch"]) as url:
        status, *_ = Client(url, verbose=False).predict(site.url("/news/porto-tram-line"), api_name="/add_urls")
        assert "✓ Added: Porto opens its new tram line" in plain(status)


def test_in_the_browser_a_url_is_added_from_the_library_tab_and_answered_from(
    browser: Browser,  # noqa: F811 - the fixture
    server: str,
    site: Site,
) -> None:
    gate = threading.Event()
    path = "/news/braga-library-held"
    site.routes[path] = Route(
        article_html("Braga reopens its public library", LIBRARY),
        gate=gate,
    )
    page = browser.new_page(viewport={"width": 1280, "height": 900})
    watched = Watched(page)
    page.goto(server)
    page.get_by_role("tab", name="Library").click()
    page.locator("#qa-url textarea").fill(site.url(path))
    page.locator("#qa-add-url").click()
    status = page.locator("#qa-library-status")
    expect(status).to_contain_text("Fetching 1 page(s)", timeout=ANSWER_TIMEOUT_MS)  # held by the server meanwhile
    page.screenshot(path=str(ARTIFACTS / "browser-url-progress.png"))
    gate.set()
    expect(status).to_contain_text("Added: Braga reopens its public library", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#qa-library")).to_contain_text("Braga reopens its public library")

    site.routes["/feeds/lisbon.xml"] = Route(  # its one item is in no other test's library
        rss("Lisbon Today", [("Ferry strike", site.url("/stories/lisbon-ferry-strike"), "Mon, 04 Mar 2024")]),
        "application/rss+xml",
    )
    page.locator("#qa-feed-url input").fill(site.url("/feeds/lisbon.xml"))
    page.locator("#qa-feed-add").click()
    expect(page.locator("#qa-feed-status")).to_contain_text("Lisbon Today: 1 added", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#qa-feed-status")).to_contain_text("Added: Lisbon ferry strike")
    expect(page.locator("#qa-feeds")).to_contain_text("Lisbon Today")
    expect(page.locator("#qa-feeds")).to_contain_text("1 added")
    page.screenshot(path=str(ARTIFACTS / "browser-feeds.png"))
    page.locator("#qa-feed-refresh").click()  # none chosen: every feed
    expect(page.locator("#qa-feed-status")).to_contain_text("Lisbon Today: 1 unchanged", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#qa-feed-status")).to_contain_text("1 item(s) read at earlier refreshes")
    page.locator("#qa-feed-choice input").click()
    page.get_by_role("option", name="Lisbon Today").click()
    page.keyboard.press("Escape")
    page.locator("#qa-feed-remove").click()
    expect(page.locator("#qa-feed-status")).to_contain_text("Stopped following", timeout=ANSWER_TIMEOUT_MS)
    expect(page.locator("#qa-feeds")).to_contain_text("No feeds yet")
    expect(page.locator("#qa-library")).to_contain_text("Lisbon ferry strike")  # its article stays

    page.get_by_role("tab", name="Chat").click()
    ask(page, "How many books does the Braga library hold?")
    answer = page.locator("#qa-chat [data-testid='bot']").last
    expect(answer).to_contain_text("140,000 books")
    expect(page.locator("#qa-sources details[open]").first).to_contain_text("Braga reopens its public library")
    assert watched.errors == [] and watched.dialogs == []
    page.close()
