"""`qa index URL...` and `qa feed ...` in a subprocess, against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa.ingest.web import url_doc_id

from .test_cli import run
from .web_site import Route, Site, newsroom, rss, serving

pytestmark = pytest.mark.slow  # subprocesses that load the models


@pytest.fixture
def site() -> Iterator[Site]:
    with serving(Site()) as served:
        yield newsroom(served)


@pytest.fixture
def index_dir(seed_index_dir: Path, tmp_path: Path) -> Path:
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


def test_index_urls_reports_each_page_that_cannot_be_used_and_answers_from_the_others(
    site: Site, tmp_path: Path
) -> None:
    index_dir = tmp_path / "fresh"  # no index yet: built from the pages
    urls = [site.url(p) for p in ("/news/porto-tram-line", "/amp/porto-tram-line", "/nothing-here", "/report.pdf")]
    built = run("index", *urls, "--index", str(index_dir))
    assert built.returncode == 0, built.stderr
    assert "Indexed 1 article(s)" in built.stdout and "1 skipped" not in built.stdout
    assert f"{urls[2]}: skipped: HTTP 404 Not Found" in built.stderr
    assert f"{urls[3]}: skipped: not an HTML page (application/pdf)" in built.stderr
    assert f"{urls[1]}: skipped: the same page as" in built.stderr
    assert "Fetching pages" in built.stderr  # the progress bar
    asked = run("ask", "How many passengers does the Porto tram line carry?", "--index", str(index_dir), "--json")
    answer = json.loads(asked.stdout)
    assert "20,000" in answer["text"] and answer["citations"][0]["url"] == site.url("/news/porto-tram-line")

    again = run("index", urls[0], site.url("/stories/lisbon-ferry-strike"), "--index", str(index_dir))
    assert again.returncode == 0, again.stderr
    assert "Added 1, updated 0, unchanged 1 article(s)" in again.stdout
    nothing = run("index", urls[2], "--index", str(index_dir))
    assert nothing.returncode == 1 and "the index is unchanged" in nothing.stderr and "HTTP 404" in nothing.stderr


def test_feed_add_list_refresh_remove(site: Site, index_dir: Path) -> None:
    feed = site.url("/feeds/rss.xml")
    added = run("feed", "add", feed, "--every", "2h", "--index", str(index_dir))
    assert added.returncode == 0, added.stderr
    porto = site.url("/news/porto-tram-line")
    assert f"Porto Daily <{feed}> every 2h, refreshed " in added.stdout and ": 1 added" in added.stdout
    assert f"  added     {porto} ({url_doc_id(porto)})" in added.stdout

    listed = run("feed", "list", "--index", str(index_dir), "--json")
    (row,) = [json.loads(line) for line in listed.stdout.splitlines()]
    assert (row["url"], row["every"], row["outcome"], row["failed"]) == (feed, 7200, "1 added", False)

    due = run("feed", "refresh", "--index", str(index_dir))
    assert due.returncode == 0 and "No feed is due" in due.stdout
    braga = site.url("/news/braga-library")
    site.routes["/feeds/rss.xml"] = Route(
        rss("Porto Daily", [("Braga", braga, "Fri, 08 Mar 2024"), ("Porto", porto, "Tue, 05 Mar 2024")]),
        "application/rss+xml",
    )
    refreshed = run("feed", "refresh", "--all", "--index", str(index_dir))
    assert refreshed.returncode == 0, refreshed.stderr
    assert ": 1 added, 1 unchanged" in refreshed.stdout and f"  added     {braga}" in refreshed.stdout
    assert "  1 item(s) read at earlier refreshes" in refreshed.stdout
    asked = run("ask", "How many books does the Braga library hold?", "--index", str(index_dir))
    assert "140,000" in asked.stdout

    broken = run("feed", "add", site.url("/feeds/broken.xml"), "--index", str(index_dir))
    assert broken.returncode == 1 and "malformed feed" in broken.stderr and "Traceback" not in broken.stderr
    bad_every = run("feed", "add", feed, "--every", "often", "--index", str(index_dir), "--no-refresh")
    assert bad_every.returncode == 1 and "is not an interval" in bad_every.stderr

    removed = run("feed", "remove", feed, "--index", str(index_dir))
    assert removed.returncode == 0 and "their articles stay in the library" in removed.stdout
    assert "No feeds" in run("feed", "list", "--index", str(index_dir)).stdout
    unknown = run("feed", "remove", feed, "--index", str(index_dir))
    assert unknown.returncode == 1 and "Not a followed feed" in unknown.stderr
    articles = run("articles", "--index", str(index_dir)).stdout
    assert url_doc_id(braga) in articles and url_doc_id(porto) in articles
