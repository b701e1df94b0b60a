"""Loading articles from every supported format, and reporting what cannot be loaded."""

from __future__ import annotations

import json
from pathlib import Path

from qa.ingest.articles import load_articles, normalize_text

from .conftest import SEED_DOC, SEEDS


def test_seed_article_loads_with_title_date_and_stable_id() -> None:
    first = load_articles([SEEDS]).articles
    second = load_articles([SEEDS / f"{SEED_DOC}.txt"]).articles
    assert len(first) == 1
    article = first[0]
    assert article.doc_id == SEED_DOC == second[0].doc_id
    assert article.title == "China Taliban"  # first line is a sentence, not a headline: from the file name
    assert article.date == "2021-08-16"
    assert article.text.startswith("Amid international concern")


def test_headline_becomes_title_and_whitespace_is_normalised(tmp_path: Path) -> None:
    (tmp_path / "story.txt").write_text(
        "Floods hit the coast\r\n\r\n\r\nHeavy  rain\tfell on Monday.   Roads closed.\r\n", encoding="utf-8"
    )
    article = load_articles([tmp_path]).articles[0]
    assert article.title == "Floods hit the coast"
    assert article.text == "Heavy rain fell on Monday. Roads closed."
    assert normalize_text(" a \u00a0 b\n\n\n\nc ") == "a b\n\nc"


def test_markdown_json_jsonl_and_html(tmp_path: Path) -> None:
    (tmp_path / "a.md").write_text("# Budget passes\n\nThe parliament passed the budget on Friday.", encoding="utf-8")
    (tmp_path / "b.json").write_text(
        json.dumps(
            {
                "id": "b1",
                "title": "Strike ends",
                "text": "The strike ended.",
                "publish_date": "2022-06-01",
                "source": "Wire",
                "url": "https://example.org/b1",
            }
        ),
        encoding="utf-8",
    )
    (tmp_path / "c.jsonl").write_text(
        json.dumps({"text": "First story text.", "title": "One"})
        + "\n"
        + "{broken json\n"
        + json.dumps({"title": "no text"})
        + "\n"
        + json.dumps({"doc_id": "c3", "text": "Third story text."})
        + "\n",
        encoding="utf-8",
    )
    (tmp_path / "d.html").write_text(
        "<html><head><title>Bridge opens</title></head><body><article><h1>Bridge opens</h1>"
        "<p>The new bridge opened to traffic on Tuesday after three years of construction work in the city.</p>"
        "<p>Officials said the bridge would cut journey times for thousands of commuters every day.</p>"
        "</article><script>alert('x')</script></body></html>",
        encoding="utf-8",
    )
    report = load_articles([tmp_path])
    by_id = {a.doc_id: a for a in report.articles}
    assert by_id["a"].title == "Budget passes"
    assert by_id["a"].text == "The parliament passed the budget on Friday."
    b = by_id["b1"]
    assert (b.title, b.date, b.source, b.url) == ("Strike ends", "2022-06-01", "Wire", "https://example.org/b1")
    assert "c3" in by_id
    assert any(a.title == "One" for a in report.articles)
    assert "commuters" in by_id["d"].text and "alert" not in by_id["d"].text
    problems = {p.path: p.reason for p in report.problems}
    assert any(path.endswith("c.jsonl:2") and "invalid JSON" in reason for path, reason in problems.items())
    assert any(path.endswith("c.jsonl:3") and "'text'" in reason for path, reason in problems.items())


def test_bad_files_are_skipped_and_reported(tmp_path: Path) -> None:
    (tmp_path / "good.txt").write_text("A good article about the harbour reopening.", encoding="utf-8")
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    (tmp_path / "binary.txt").write_bytes(b"\x00\x01\x02\xffPNG\x00" * 50)
    (tmp_path / "image.png").write_bytes(b"\x89PNG")
    (tmp_path / "dup.txt").write_text("A good article about the harbour reopening.", encoding="utf-8")
    report = load_articles([tmp_path, tmp_path / "missing.txt"])
    assert [a.doc_id for a in report.articles] == ["dup"]  # files load in name order; "good" repeats it
    reasons = {Path(p.path).name: p.reason for p in report.problems}
    assert reasons["empty.txt"] == "file is empty"
    assert reasons["binary.txt"].startswith("binary")
    assert "unsupported" in reasons["image.png"]
    assert "no such file" in reasons["missing.txt"]
    assert any("duplicate" in r for r in reasons.values())


def test_other_encodings_decode(tmp_path: Path) -> None:
    (tmp_path / "utf16.txt").write_bytes("Zürich votes on Sunday.".encode("utf-16"))
    (tmp_path / "latin.txt").write_bytes("Café owners in Málaga protest.".encode("cp1252"))
    report = load_articles([tmp_path])
    texts = {a.doc_id: a.text for a in report.articles}
    assert texts == {"latin": "Café owners in Málaga protest.", "utf16": "Zürich votes on Sunday."}
    assert any("Windows-1252" in p.reason and not p.skipped for p in report.problems)


def test_oversized_file_is_refused(tmp_path: Path) -> None:
    (tmp_path / "big.txt").write_text("word " * 1000, encoding="utf-8")
    report = load_articles([tmp_path], max_file_bytes=100)
    assert not report.articles
    assert "over the limit" in report.problems[0].reason
