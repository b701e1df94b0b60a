"""Articles from URLs, against a real HTTP server on 127.0.0.1 (``tests/web_site.py``): pages with and
without metadata, the same article under several addresses, and every way a fetch goes wrong, each
reported by URL with its reason; then indexed through ``Assistant.add`` and answered with citations."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Assistant, Config, FetchError
from qa.ingest.http import Fetcher, public_address
from qa.ingest.web import canonical_form, read_sources, url_doc_id

from .conftest import SEED_DOC, assert_citations_exact
from .web_site import FERRY, PORTO, Route, Site, article_html, newsroom, serving

CONFIG = Config(fetch_timeout=3.0)


@pytest.fixture(scope="module")
def site() -> Iterator[Site]:
    with serving(Site()) as served:
        yield newsroom(served)


def read(site: Site, *paths: str, config: Config = CONFIG, fetcher: Fetcher | None = None):  # noqa: ANN201
    return read_sources([site.url(p) if p.startswith("/") else p for p in paths], config, fetcher)


def test_an_article_page_with_metadata_becomes_an_article_named_by_its_canonical_url(site: Site) -> None:
    (article,) = read(site, "/news/porto-tram-line?utm_source=rss#top").articles
    canonical = site.url("/news/porto-tram-line")
    assert article.url == canonical and article.doc_id == url_doc_id(canonical)
    assert article.doc_id.startswith("127.0.0.1/porto-tram-line-") and len(article.doc_id.rsplit("-", 1)[1]) == 10
    assert (article.title, article.date, article.source) == (
        "Porto opens its new tram line to Gaia",
        "2024-03-05",
        "Porto Daily",
    )
    assert (
        all(p in article.text for p in PORTO)
        and "All rights reserved" not in article.text
        and "Sport" not in article.text
    )
    assert article.path == site.url("/news/porto-tram-line?utm_source=rss#top")  # what was asked for


def test_a_page_without_metadata_is_titled_from_its_address_and_named_from_its_host(site: Site) -> None:
    (article,) = read(site, "/stories/lisbon-ferry-strike").articles
    assert (article.title, article.source, article.date) == ("Lisbon ferry strike", "127.0.0.1", None)
    assert all(p in article.text for p in FERRY)
    assert article.url == site.url("/stories/lisbon-ferry-strike")


def test_doc_ids_are_stable_and_ignore_what_does_not_name_the_page() -> None:
    a = url_doc_id("HTTPS://WWW.Example.com:443/2024/03/05/Tram-Line/index.html?utm_source=x&id=7#c")
    assert a == url_doc_id("https://www.example.com/2024/03/05/Tram-Line/index.html?id=7")
    assert a.startswith("example.com/Tram-Line-") and a != url_doc_id("https://www.example.com/2024/03/05/Tram-Line/")
    assert canonical_form("http://Example.com") == "http://example.com/"
    assert ".." not in url_doc_id("http://example.com/../../etc/passwd")


def test_every_failure_is_reported_by_url_with_its_reason(site: Site) -> None:
    expected = {
        "/nothing-here": "HTTP 404",
        "/slow": "timed out after 3 s",
        "/loop/a": "redirect loop: ",
        "/huge": "over the limit of 20,000,000 bytes",
        "/report.pdf": "not an HTML page (application/pdf)",
        "/index": "no article text found on the page (not an article?)",
        "/private/memo": "robots.txt does not allow fetching",
        "ftp://127.0.0.1/news.html": "not an http(s) URL",
        f"http://127.0.0.1:{free_port()}/closed": "connection refused",
    }
    report = read(site, "/news/coimbra-bridge", *expected)
    assert [a.title for a in report.articles] == ["Coimbra closes the Santa Clara bridge"]
    reasons = {p.path: p.reason for p in report.problems}
    for path, reason in expected.items():
        url = site.url(path) if path.startswith("/") else path
        assert reason in reasons[url], (url, reasons.get(url))
    assert all(p.skipped for p in report.problems) and len(report.problems) == len(expected)


def free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_the_same_article_under_several_urls_is_read_once(site: Site) -> None:
    report = read(
        site,
        "/news/porto-tram-line",
        "/amp/porto-tram-line",
        "/stories/lisbon-ferry-strike",
        "/copy/lisbon-ferry-strike",
    )
    assert len(report.articles) == 2
    reasons = {p.path: p.reason for p in report.problems}
    assert "the same page as" in reasons[site.url("/amp/porto-tram-line")]  # its canonical URL
    assert "duplicate of article" in reasons[site.url("/copy/lisbon-ferry-strike")]  # its text


def test_redirects_are_followed_to_a_limit(site: Site) -> None:
    for i in range(7):
        site.routes[f"/hop/{i}"] = Route(status=307, location=f"/hop/{i + 1}")
    site.routes["/hop/7"] = Route(
        article_html("Coimbra bridge", ["Coimbra closed the Santa Clara bridge to cars on Thursday."])
    )
    (article,) = read(site, "/moved").articles  # 301 to the article: named by where it ended
    assert article.url == site.url("/news/coimbra-bridge")
    assert read(site, "/hop/2", config=Config(fetch_redirects=5)).articles  # five redirects
    (problem,) = read(site, "/hop/1", config=Config(fetch_redirects=5)).problems  # six
    assert problem.reason == "more than 5 redirects"


def test_bodies_are_capped_while_they_stream_in_and_when_they_say_their_size(site: Site) -> None:
    small = Config(max_file_bytes=10_000)
    site.routes["/big-declared"] = Route(article_html("Big", ["Words. " * 3000]))
    (problem,) = read(site, "/big-declared", config=small).problems
    assert "bytes, over the limit of 10,000" in problem.reason
    bomb = gzip.compress(b"<p>" + b"a" * 30_000_000 + b"</p>")  # 30 MB that travel as about 30 KB
    site.routes["/bomb"] = Route(bomb, headers={"Content-Encoding": "gzip"})
    (problem,) = read(site, "/bomb").problems
    assert "over the limit of 20,000,000 bytes" in problem.reason
    site.routes["/zipped"] = Route(gzip.compress(article_html("Zipped", PORTO)), headers={"Content-Encoding": "gzip"})
    (article,) = read(site, "/zipped").articles
    assert PORTO[1] in article.text


def test_requests_name_the_product_and_read_robots_txt_once_per_site(site: Site) -> None:
    fetcher = Fetcher(CONFIG)
    before = len(site.hits("/robots.txt"))
    read(site, "/news/porto-tram-line", "/news/braga-library", fetcher=fetcher)
    read(site, "/news/coimbra-bridge", fetcher=fetcher)
    assert len(site.hits("/robots.txt")) - before == 1
    agent = site.hits("/news/braga-library")[-1]["User-Agent"]
    assert agent.startswith("NewsdeskQA/") and "robots.txt" in agent
    ignoring = read(site, "/private/memo", config=Config(fetch_robots=False))
    assert ignoring.articles and not ignoring.problems


def test_a_site_whose_robots_txt_cannot_be_read_is_not_fetched() -> None:
    with serving(Site()) as other:
        other.routes["/robots.txt"] = Route(b"down", "text/plain", status=503)
        other.routes["/news"] = Route(article_html("News", PORTO))
        (problem,) = read(other, "/news").problems
        assert "robots.txt could not be read (HTTP 503" in problem.reason and other.hits("/news") == []
        other.routes["/robots.txt"] = Route(status=404)  # no robots.txt: everything may be fetched
        assert read(other, "/news").articles


def test_at_most_n_requests_go_to_one_host_at_once() -> None:
    with serving(Site()) as busy:
        busy.routes["/robots.txt"] = Route(b"", "text/plain")
        for i in range(6):
            busy.routes[f"/a/{i}"] = Route(article_html(f"Story {i}", [f"Story number {i} happened on a Tuesday."]))
        busy.hold_until_in_flight = 2
        report = read(busy, *[f"/a/{i}" for i in range(6)], config=Config(fetch_per_host=2))
        assert len(report.articles) == 6
        assert busy.most_in_flight == 2  # two at once happened, and never more


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("127.0.0.1", False),
        ("10.1.2.3", False),
        ("172.16.0.9", False),
        ("192.168.1.20", False),
        ("169.254.169.254", False),  # cloud metadata
        ("100.64.0.1", False),  # carrier-grade NAT
        ("0.0.0.0", False),
        ("224.0.0.1", False),
        ("::1", False),
        ("fe80::1%eth0", False),
        ("fd00::1", False),
        ("::ffff:127.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("93.184.215.14", True),
        ("2606:2800:21f:cb07:6820:80da:af6b:8b2c", True),
    ],
)
def test_which_addresses_count_as_public(address: str, public: bool) -> None:
    assert public_address(address) is public


def test_with_private_fetching_off_this_machine_is_refused_under_any_name(site: Site) -> None:
    fetcher = Fetcher(Config(fetch_private=False))
    before = len(site.requests)
    for host in ("127.0.0.1", "localhost", "127.1", "2130706433", "0.0.0.0"):  # 127.1...: 127.0.0.1 spelt otherwise
        with pytest.raises(FetchError, match="refused: .* an address on this machine or a private network"):
            fetcher.get(f"http://{host}:{site.port}/news/porto-tram-line")
    with pytest.raises(FetchError, match="refused: "):  # https too: refused before any TLS handshake
        fetcher.get(f"https://127.0.0.1:{site.port}/news/porto-tram-line")
    assert len(site.requests) == before  # not even robots.txt was asked for


# ---- through the assistant ---------------------------------------------------------------------------------
@pytest.fixture
def library(index_copy: Path, config: Config, models) -> Assistant:  # noqa: ANN001
    return Assistant.load(index_copy, config.with_changes(fetch_timeout=3.0), models)


def test_pages_are_indexed_and_answer_with_citations_and_failures_lose_nothing(site: Site, library: Assistant) -> None:
    urls = [site.url(p) for p in ("/news/porto-tram-line", "/stories/lisbon-ferry-strike", "/nothing-here", "/index")]
    seen: list[tuple[int, int, str]] = []
    update = library.add(
        urls, show_progress=False, on_fetched=lambda done, total, url, _r: seen.append((done, total, url))
    )
    porto = url_doc_id(site.url("/news/porto-tram-line"))
    assert set(update.added) == {porto, url_doc_id(site.url("/stories/lisbon-ferry-strike"))}
    assert {p.path for p in update.problems} == set(urls[2:])
    assert sorted(done for done, _, _ in seen) == [1, 2, 3, 4] and {u for _, _, u in seen} == set(urls)
    answer = library.ask("How many passengers a day does the Porto tram line carry?")
    assert not answer.abstained and "20,000" in answer.text
    cited = answer.citations[0]
    assert (cited.doc_id, cited.url, cited.source) == (porto, site.url("/news/porto-tram-line"), "Porto Daily")
    assert_citations_exact(library, answer)
    reloaded = Assistant.load(library.index_dir, library.config, library.models)
    assert {a.doc_id for a in reloaded.articles()} == {SEED_DOC, *update.added}


def test_a_page_fetched_again_is_kept_when_unchanged_and_replaced_when_changed(site: Site, library: Assistant) -> None:
    path = "/news/gaia-bridge"
    canonical = site.url(path)
    site.routes[path] = Route(article_html("Gaia bridge", PORTO[:2], canonical=canonical))
    doc_id = url_doc_id(canonical)
    assert library.add([canonical], show_progress=False).added == (doc_id,)
    again = library.add([canonical, site.url(path + "?utm_medium=email")], show_progress=False)
    assert again.unchanged == (doc_id,) and not again.added and not again.replaced
    changed = [*PORTO[:2], "The bridge was repainted in green at a cost of 3 million euros, the council said."]
    site.routes[path] = Route(article_html("Gaia bridge", changed, canonical=canonical))
    update = library.add([canonical], show_progress=False)
    assert update.replaced == (doc_id,) and len(library.articles()) == 2
    assert "3 million euros" in library.ask("How much did repainting the bridge cost?").text
    copy = library.add(
        [site.url("/stories/lisbon-ferry-strike"), site.url("/copy/lisbon-ferry-strike")], show_progress=False
    )
    assert len(copy.added) == 1 and "duplicate of article" in copy.problems[0].reason


def test_pages_are_fetched_while_questions_are_answered(site: Site, index_copy: Path, config: Config, models) -> None:  # noqa: ANN001
    """Fetching holds no lock: a question asked while a page is still coming is answered meanwhile."""
    library = Assistant.load(index_copy, config.with_changes(fetch_timeout=300.0), models)
    gate = threading.Event()
    site.routes["/held-news"] = Route(article_html("Held news", FERRY), gate=gate)
    added: list[tuple[str, ...]] = []
    worker = threading.Thread(
        target=lambda: added.append(library.add([site.url("/held-news")], show_progress=False).added)
    )
    worker.start()
    try:
        while not site.hits("/held-news"):  # the page has been asked for; the server holds it until the gate opens
            gate.wait(0.05)
        answer = library.ask("What did China say about the Taliban?")
        assert not answer.abstained and not added  # answered while the page was still on its way
    finally:
        gate.set()
        worker.join(120)
    assert added == [(url_doc_id(site.url("/held-news")),)]
