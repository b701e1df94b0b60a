"""Feeds, against a real HTTP server on 127.0.0.1: RSS 2.0 and Atom, a feed that gains items between two
refreshes, ETag/304, a malformed feed, items whose pages fail; the feed list in ``feeds.json``; and a
scheduled refresh while questions are asked."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Assistant, Config, Feeds, FeedScheduler, FetchError
from qa.errors import InvalidArgumentError, UnknownFeedError
from qa.ingest.web import url_doc_id

from .conftest import SEED_DOC, assert_citations_exact
from .web_site import LIBRARY, Route, Site, article_html, atom, newsroom, rss, serving

DEADLINE = 300.0  # seconds any condition waited on may take (they take one or two)


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as served:
        yield newsroom(served)


@pytest.fixture
def library(index_copy: Path, config: Config, models) -> Assistant:  # noqa: ANN001
    return Assistant.load(index_copy, config.with_changes(fetch_timeout=5.0), models)


def outcomes(status) -> dict[str, tuple[str, str]]:  # noqa: ANN001
    return {i.url: (i.outcome, i.reason) for i in status.items}


@pytest.mark.parametrize(
    ("text", "seconds"), [("90s", 90), ("30m", 1800), ("30 min", 1800), ("6h", 21600), ("1d", 86400), (45, 45)]
)
def test_refresh_intervals(text: str | int, seconds: int) -> None:
    assert Feeds.parse_every(text) == seconds
    assert Feeds.parse_every(Feeds.format_every(seconds)) == seconds


@pytest.mark.parametrize("bad", ["30", "soon", "0s", "-5m", "400d", ""])
def test_an_unreadable_interval_says_how_to_write_one(bad: str) -> None:
    with pytest.raises(InvalidArgumentError, match="interval|out of range"):
        Feeds.parse_every(bad)


def test_an_rss_feed_adds_its_items_and_a_refresh_adds_only_the_new_ones(site: Site, library: Assistant) -> None:
    feeds = Feeds.of(library)
    porto, braga = site.url("/news/porto-tram-line"), site.url("/news/braga-library")
    told: list[str] = []
    status = feeds.add(site.url("/feeds/rss.xml"), "1h", on_progress=told.append)
    assert (status.title, status.every, status.failed) == ("Porto Daily", 3600, False)
    assert outcomes(status) == {porto: ("added", "")} and status.outcome == "1 added"
    assert any("1 of 1 page(s) fetched" in m for m in told)

    again = feeds.refresh()
    assert [s.outcome for s in again] == ["1 unchanged"] and outcomes(again[0])[porto] == (
        "unchanged",
        Feeds.SEEN_BEFORE,
    )
    assert len(site.hits("/news/porto-tram-line")) == 1  # an item read before is not fetched again

    site.routes["/feeds/rss.xml"] = Route(
        rss(
            "Porto Daily",
            [
                ("Braga library", braga, "Fri, 08 Mar 2024"),
                ("Porto opens its new tram line", porto, "Tue, 05 Mar 2024"),
            ],
        ),
        "application/rss+xml",
    )
    (gained,) = feeds.refresh([site.url("/feeds/rss.xml")])
    assert outcomes(gained) == {braga: ("added", ""), porto: ("unchanged", Feeds.SEEN_BEFORE)}
    assert gained.outcome == "1 added, 1 unchanged"
    answer = library.ask("How many books does the Braga library hold?")
    assert not answer.abstained and "140,000" in answer.text
    assert answer.citations[0].doc_id == url_doc_id(braga) and answer.citations[0].url == braga
    assert_citations_exact(library, answer)
    (listed,) = feeds.list()
    assert listed.outcome == "1 added, 1 unchanged" and listed.refreshed_at and listed.items == ()


def test_an_atom_feed_is_asked_for_with_its_etag_and_a_304_costs_nothing_more(site: Site, library: Assistant) -> None:
    feeds = Feeds.of(library)
    url = site.url("/feeds/atom.xml")
    status = feeds.add(url)
    assert status.title == "Coimbra News" and status.outcome == "1 added"
    assert "If-None-Match" not in site.hits("/feeds/atom.xml")[0]
    (same,) = feeds.refresh()
    assert same.outcome == "not modified (HTTP 304)" and not same.failed and same.items == ()
    assert site.hits("/feeds/atom.xml")[-1]["If-None-Match"] == '"atom-v1"'
    site.routes["/feeds/atom.xml"] = Route(
        atom(
            "Coimbra News",
            [
                ("Braga library", site.url("/news/braga-library"), "2024-03-08"),
                ("Santa Clara bridge closes", site.url("/news/coimbra-bridge"), "2024-03-07"),
            ],
        ),
        "application/atom+xml",
        etag='"atom-v2"',
    )
    (changed,) = feeds.refresh()
    assert changed.outcome == "1 added, 1 unchanged"
    assert json.loads((library.index_dir / "feeds.json").read_text())["feeds"][0]["etag"] == '"atom-v2"'


def test_a_malformed_feed_is_refused_and_a_feed_that_breaks_loses_nothing(site: Site, library: Assistant) -> None:
    feeds = Feeds.of(library)
    for path, reason in (
        ("/feeds/broken.xml", r"malformed feed: not well-formed XML \(unclosed token\)"),
        ("/news/porto-tram-line", r"not an RSS or Atom feed \(text/html\)"),
    ):
        with pytest.raises(FetchError, match=reason):
            feeds.add(site.url(path))
    with pytest.raises(FetchError, match="HTTP 404"):
        feeds.add(site.url("/feeds/missing.xml"))
    with pytest.raises(InvalidArgumentError, match="not a feed URL"):
        feeds.add("file:///etc/passwd")
    assert feeds.list() == []

    feeds.add(site.url("/feeds/rss.xml"))
    before = {a.doc_id for a in library.articles()}
    site.routes["/feeds/rss.xml"] = Route(b"<html><body>Gone fishing</body></html>", "text/html")
    (broken,) = feeds.refresh()
    assert broken.failed and broken.outcome.startswith("failed: not an RSS or Atom feed")
    assert {a.doc_id for a in library.articles()} == before
    assert feeds.list()[0].failed and "not an RSS or Atom feed" in feeds.list()[0].outcome
    with pytest.raises(UnknownFeedError, match="qa feed list"):
        feeds.refresh(["http://127.0.0.1:1/none.xml"])


def test_an_item_whose_page_fails_is_tried_again_then_given_up(site: Site, library: Assistant) -> None:
    feeds = Feeds.of(library)
    late, gone = site.url("/news/late"), site.url("/news/gone")
    site.routes["/feeds/rss.xml"] = Route(
        rss("Porto Daily", [("Late", late, "Fri, 08 Mar 2024"), ("Gone", gone, "Fri, 08 Mar 2024")]),
        "application/rss+xml",
    )
    first = feeds.add(site.url("/feeds/rss.xml"))
    assert outcomes(first) == {
        late: ("failed", "HTTP 404 Not Found (try 1 of 3)"),
        gone: ("failed", "HTTP 404 Not Found (try 1 of 3)"),
    }
    assert first.outcome == "2 failed" and not first.failed  # the feed was read; two of its pages were not
    site.routes["/news/late"] = Route(article_html("Braga reopens its public library", LIBRARY))
    (second,) = feeds.refresh()
    assert outcomes(second) == {late: ("added", ""), gone: ("failed", "HTTP 404 Not Found (try 2 of 3)")}
    (third,) = feeds.refresh()
    assert outcomes(third)[gone] == ("failed", "HTTP 404 Not Found (given up after 3 tries)")
    (fourth,) = feeds.refresh()
    assert outcomes(fourth) == {late: ("unchanged", Feeds.SEEN_BEFORE), gone: ("unchanged", Feeds.SEEN_BEFORE)}
    assert len(site.hits("/news/gone")) == 3


def test_the_same_article_in_two_feeds_is_indexed_once(site: Site, library: Assistant) -> None:
    feeds = Feeds.of(library)
    site.routes["/feeds/amp.xml"] = Route(
        rss("Porto Daily (AMP)", [("Porto tram", site.url("/amp/porto-tram-line"), "Tue, 05 Mar 2024")]),
        "application/rss+xml",
    )
    feeds.add(site.url("/feeds/rss.xml"))
    status = feeds.add(site.url("/feeds/amp.xml"))
    assert outcomes(status)[site.url("/amp/porto-tram-line")][0] == "unchanged"
    assert len(library.articles()) == 2


def test_the_feed_list_lives_beside_the_versions_written_whole(site: Site, library: Assistant) -> None:
    feeds = Feeds.of(library)
    feeds.add(site.url("/feeds/rss.xml"), "2h", refresh=False)
    root = library.index_dir
    version = (root / "CURRENT").read_text().strip()
    assert (root / "feeds.json").is_file() and not (root / version / "feeds.json").exists()
    assert not [p for p in root.iterdir() if p.name.startswith(".feeds.json")]  # no temporary file left
    library.add([site.url("/stories/lisbon-ferry-strike")], show_progress=False)  # a new version of the index
    assert (root / "CURRENT").read_text().strip() != version
    assert [f.url for f in Feeds(root).list()] == [site.url("/feeds/rss.xml")]  # read without an assistant
    assert Feeds(root).list()[0].outcome == "not refreshed yet"
    assert feeds.add(site.url("/feeds/rss.xml"), "15m").every == 900  # followed already: rescheduled
    assert Feeds(root).seconds_to_next() == 0.0  # never refreshed: due
    feeds.refresh()
    assert 890 < Feeds(root).seconds_to_next() <= 900 and feeds.refresh(due_only=True) == []
    assert feeds.remove([site.url("/feeds/rss.xml")]) == [site.url("/feeds/rss.xml")] and feeds.list() == []
    assert url_doc_id(site.url("/news/porto-tram-line")) in {a.doc_id for a in library.articles()}  # kept
    (root / "feeds.json").write_text("{not json")
    with pytest.raises(Exception, match="feeds.json cannot be read"):
        feeds.list()


@pytest.mark.slow
def test_a_scheduled_refresh_runs_while_questions_are_asked(site: Site, library: Assistant) -> None:
    """Questions are asked from three threads while the scheduler adds a new item: none fails, every answer
    cites exactly, and once the item is in, the next question finds it (no stale reads)."""
    feeds = Feeds.of(library)
    feeds.add(site.url("/feeds/rss.xml"), "1s")
    scheduler = FeedScheduler(feeds, poll=0.5).start()
    stop, errors, answers = threading.Event(), [], []

    def ask_again_and_again() -> None:
        while not stop.is_set():
            try:
                answer = library.ask("What did China say about the Taliban?")
                assert not answer.abstained and answer.citations[0].doc_id == SEED_DOC
                assert_citations_exact(library, answer)
                answers.append(answer)
            except Exception as exc:  # noqa: BLE001 - collected and asserted below
                errors.append(exc)

    askers = [threading.Thread(target=ask_again_and_again) for _ in range(3)]
    for t in askers:
        t.start()
    braga = site.url("/news/braga-library")
    try:
        wait_for(lambda: len(answers) >= 3)  # questions are being answered
        site.routes["/feeds/rss.xml"] = Route(
            rss("Porto Daily", [("Braga library", braga, "Fri, 08 Mar 2024")]), "application/rss+xml"
        )
        wait_for(lambda: url_doc_id(braga) in {a.doc_id for a in library.articles()})
        answer = library.ask("How many books does the Braga library hold?")
        assert "140,000" in answer.text and answer.citations[0].doc_id == url_doc_id(braga)
        wait_for(lambda: len(answers) >= 6)
    finally:
        stop.set()
        scheduler.stop(timeout=60)
        for t in askers:
            t.join(120)
    assert errors == []
    assert feeds.list()[0].refreshed_at is not None and not feeds.list()[0].failed


def wait_for(condition, deadline: float = DEADLINE) -> None:  # noqa: ANN001
    end = time.monotonic() + deadline
    while not condition():
        assert time.monotonic() < end, "condition not met within the deadline"
        time.sleep(0.1)
