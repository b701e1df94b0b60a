"""The library's catalog (``Assistant.catalog``): made from the headings held in memory, never from the
articles; its order, pages and filter; segments written before headings kept the URL; and the web page's
Library tab over it, a page at a time."""

from __future__ import annotations

import json
import shutil
from dataclasses import fields
from pathlib import Path

import orjson
import pytest

from qa import Article, Assistant, Catalog, CatalogEntry, Config
from qa.errors import CorruptIndexError, InvalidArgumentError
from qa.index.durability import file_checksums
from qa.index.versions import MANIFEST, current_version
from qa.models import Models
from qa.types import Listed
from qa.web.page import PAGE_ROWS, Browsing, ChatPage, View

from .conftest import LIBRARY_SIZE, catalog_articles

NEWEST = [f"report-{i}" for i in (51, 50)]  # the latest days (report-52 to 54 are undated)
UNDATED = ["report-54", "report-53", "report-52"]


def _entry(doc_id: str, day: str | None, title: str = "", source: str | None = None) -> Listed:
    """An article as a library lists it (``listing()``)."""
    return (doc_id, title or doc_id, day, source, None, 1)


def test_newest_first_then_latest_indexed_and_undated_last() -> None:
    listing = [
        _entry("a", "2022-01-05"),
        _entry("b", None),
        _entry("c", "2023-03-01"),
        _entry("d", "2022-01-05"),
        _entry("e", "sometime in May"),  # not a day: undated
        _entry("f", "2022-01-05T08:00:00Z"),  # an ISO timestamp counts by its day
    ]
    assert [e.doc_id for e in Catalog.of(listing).entries] == ["c", "f", "d", "a", "e", "b"]
    assert [e.doc_id for e in Catalog.of(listing, newest_first=False).entries] == list("abcdef")


def test_pages_filter_and_sources() -> None:
    listing = [
        _entry(f"id-{i}", f"2024-01-{i + 1:02d}", f"Title {i}", ("CNN", "bbc.com", None)[i % 3]) for i in range(10)
    ]
    page = Catalog.of(listing, offset=4, limit=3)
    assert (page.total, page.offset, [e.doc_id for e in page.entries]) == (10, 4, ["id-5", "id-4", "id-3"])
    assert page.more and not Catalog.of(listing, 7, 3).more and Catalog.of(listing, 20, 5).entries == ()
    assert Catalog.of(listing, limit=0) == Catalog(10, (), 0, ("CNN", "bbc.com"))
    found = Catalog.of(listing, query="  cnn ")  # a source, in any case
    assert found.total == 4 and {e.source for e in found.entries} == {"CNN"}
    assert found.sources == ("CNN", "bbc.com")  # of the whole library, whatever the query
    assert [e.doc_id for e in Catalog.of(listing, query="TITLE 7").entries] == ["id-7"]  # a title
    assert Catalog.of(listing, query="id-1").total == 1 and Catalog.of(listing, query="").total == 10
    assert Catalog.of(listing, query="nothing like it") == Catalog(0, (), 0, ("CNN", "bbc.com"))
    as_json = json.loads(json.dumps(Catalog.of(listing, limit=1).to_dict()))
    assert as_json["total"] == 10 and as_json["entries"] == [
        {"doc_id": "id-9", "title": "Title 9", "date": "2024-01-10", "source": "CNN", "url": None, "passages": 1}
    ]
    for bad in ({"offset": -1}, {"limit": -5}, {"offset": True}, {"limit": "10"}, {"query": 3}):
        with pytest.raises(InvalidArgumentError):
            Catalog.of(listing, **bad)


@pytest.fixture(scope="module")
def library(catalog_index_dir: Path, config: Config, models: Models) -> Assistant:
    return Assistant.load(catalog_index_dir, config, models)


def test_the_catalog_of_a_real_index(library: Assistant) -> None:
    catalog = library.catalog()
    assert catalog.total == LIBRARY_SIZE == len(catalog.entries)
    ids = [e.doc_id for e in catalog.entries]
    assert ids[:2] == NEWEST and ids[-3:] == UNDATED
    assert ids.index("report-11") == ids.index("report-10") - 1  # the same day: the later indexed first
    assert catalog.sources == ("Lisbon Daily", "Porto Gazette")
    by_id = {e.doc_id: e for e in catalog.entries}
    for article in catalog_articles():  # what the articles hold, passages as the index counts them
        entry = by_id[article.doc_id]
        assert (entry.title, entry.date, entry.source, entry.url) == (
            article.title,
            article.date,
            article.source,
            article.url,
        )
        assert entry.passages == library.index.passage_count(article.doc_id) >= 1
    assert [e.doc_id for e in library.catalog(newest_first=False).entries] == [a.doc_id for a in catalog_articles()]
    second = library.catalog(PAGE_ROWS, PAGE_ROWS)
    assert second.total == LIBRARY_SIZE and [e.doc_id for e in second.entries] == ids[PAGE_ROWS:]
    assert [e.doc_id for e in library.catalog(query="REPORT 4").entries] == ["report-49", "report-48"] + [
        f"report-{i}" for i in (47, 46, 45, 44, 43, 42, 41, 40, 4)
    ]


def _damage_article_records(version: Path) -> None:
    """Overwrite every byte of the article record files but their newlines: no record matches its CRC-32."""
    for path in (version / "articles").glob("*[0-9a-f].jsonl"):
        path.write_bytes(bytes(b if b == 0x0A else 0x78 for b in path.read_bytes()))


def test_listing_reads_no_article(catalog_index_dir: Path, tmp_path: Path, config: Config, models: Models) -> None:
    """Every article record damaged (loading does not read them; reading one checks its CRC-32): the catalog,
    the page's library and its HTTP listing still work, while reading an article fails."""
    index_dir = tmp_path / "index"
    shutil.copytree(catalog_index_dir, index_dir)
    _damage_article_records(current_version(index_dir))
    damaged = Assistant.load(index_dir, config, models)
    assert damaged.catalog().total == LIBRARY_SIZE and damaged.catalog(limit=1).entries[0].doc_id == NEWEST[0]
    page = ChatPage(damaged, View(*(f.name for f in fields(View))))
    assert "Articles 1–50 of 55" in page.refresh()["library"]
    assert len(page.articles_api(offset=50)) == 5
    with pytest.raises(CorruptIndexError, match=r"\.jsonl is damaged"):
        damaged.article("report-3")
    with pytest.raises(CorruptIndexError):
        damaged.library()  # reads every article, as documented


def test_segments_written_before_headings_kept_the_url_still_load(
    catalog_index_dir: Path, tmp_path: Path, config: Config, models: Models
) -> None:
    """Their headings are [title, date, source]: the catalog lists their articles without a URL (the articles
    keep theirs); a segment written since has the URL, and both load together."""
    index_dir = tmp_path / "index"
    shutil.copytree(catalog_index_dir, index_dir)
    version = current_version(index_dir)
    for ids_file in (version / "articles").glob("*.ids.json"):
        ids = orjson.loads(ids_file.read_bytes())
        assert all(len(heading) == 4 for heading in ids["headings"])  # as written now: with the URL
        ids["headings"] = [heading[:3] for heading in ids["headings"]]
        ids_file.write_bytes(orjson.dumps(ids))
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["files"] = file_checksums(version, exclude=(MANIFEST,))
    (version / MANIFEST).write_text(json.dumps(manifest))

    old = Assistant.load(index_dir, config, models)
    catalog = old.catalog()
    assert catalog.total == LIBRARY_SIZE and {e.url for e in catalog.entries} == {None}
    assert catalog.entries[0] == CatalogEntry(
        "report-51", "Harbour report 51", "2023-02-21", "Porto Gazette", None, old.index.passage_count("report-51")
    )
    assert old.index.heading("report-0") == ("Harbour report 0", "2023-01-01", "Lisbon Daily")
    assert old.article("report-0").url == "https://news.example/report-0"
    tram = Article(
        "tram",
        "Porto opens its new tram line",
        "Porto opens its new tram line\n\nPorto opened its new tram line to Gaia on Tuesday.",
        "2024-03-05",
        "Porto Gazette",
        "https://news.example/tram",
    )
    assert old.add_articles([tram], show_progress=False).added == ("tram",)
    reloaded = Assistant.load(index_dir, config, models)
    entries = reloaded.catalog().entries
    assert (entries[0].doc_id, entries[0].url) == ("tram", "https://news.example/tram")  # the new segment's
    assert len(entries) == LIBRARY_SIZE + 1 and {e.url for e in entries[1:]} == {None}  # the old one's


def test_the_library_tab_shows_a_page_at_a_time(library: Assistant) -> None:
    """The page's handlers, each output keyed by its name: page 1, the next (the last stays), the one before,
    a filter (its first page), removal choices of the page shown, and the place kept after a change."""
    page = ChatPage(library, View(*(f.name for f in fields(View))))
    first = page.refresh()
    assert "Articles 1–50 of 55, newest first" in first["library"] and first["library"].count("<tr>") == 51
    assert first["browsing"] == Browsing(0, "") and first["header"].count("**55**") == 1
    assert [value for _, value in first["to_remove"]["choices"]][:2] == NEWEST
    assert first["source_filter"]["choices"] == ["Lisbon Daily", "Porto Gazette"]
    second = page.next_page(first["browsing"])
    assert "Articles 51–55 of 55" in second["library"] and "Harbour report 52" in second["library"]
    assert "Harbour report 51<" not in second["library"] and len(second["to_remove"]["choices"]) == 5
    assert "value" not in second["to_remove"] and first["to_remove"]["value"] == []  # kept while browsing
    assert page.next_page(second["browsing"])["browsing"] == Browsing(PAGE_ROWS, "")  # the last page stays
    assert page.previous_page(second["browsing"])["browsing"] == Browsing(0, "")
    assert page.previous_page(Browsing(0, ""))["browsing"] == Browsing(0, "")
    filtered = page.filter_library("gazette", second["browsing"])  # a source, any case: the first page
    assert filtered["browsing"] == Browsing(0, "gazette") and "Articles 1–27 of 27 matching" in filtered["library"]
    assert "No article's title, source or id contains" in page.filter_library("<b>zz", None)["library"]
    assert "&lt;b&gt;zz" in page.filter_library("<b>zz", None)["library"]
    kept = page.refresh(Browsing(PAGE_ROWS, "report"))  # after a change: the same page, filter and all
    assert "Articles 51–55 of 55 matching" in kept["library"]
    beyond = page.refresh(Browsing(60, ""))  # articles removed meanwhile: the last page there is
    assert beyond["browsing"] == Browsing(PAGE_ROWS, "")
    assert [e["doc_id"] for e in page.articles_api(offset=1, limit=2)] == [NEWEST[1], "report-49"]
    assert page.articles_api(limit=1, query="report-7")[0] == {
        "doc_id": "report-7",
        "title": "Harbour report 7",
        "date": "2023-01-08",
        "source": "Porto Gazette",
        "url": None,
        "passages": library.index.passage_count("report-7"),
    }


def test_an_article_of_another_page_is_removed_by_its_typed_id(
    catalog_index_dir: Path, tmp_path: Path, config: Config, models: Models
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(catalog_index_dir, index_dir)
    page = ChatPage(Assistant.load(index_dir, config, models), View(*(f.name for f in fields(View))))
    done = page.remove([" report-53 "], Browsing(PAGE_ROWS, ""))  # on page 2, typed while page 1 shows
    assert "Removed: Harbour report 53 (id report\\-53)" in done["status"]  # escaped as Markdown
    assert "Articles 51–54 of 54" in done["library"] and "report-53" not in done["library"]
    assert "Not in the index" in page.remove(["report-53"], Browsing())["status"]
