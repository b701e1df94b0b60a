"""Writes that cost what they change: a new version links the article and BM25 segments of the one before,
and an index of the format before segments is read and turned into segments by its next write."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.index import article_store, durability
from qa.index.bm25 import MERGE_FACTOR
from qa.index.durability import file_checksums
from qa.index.versions import MANIFEST, current_version
from qa.models import Models


def _article(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _inodes(version: Path) -> dict[str, int]:
    return {p.name: p.stat().st_ino for p in (version / "articles").glob("*.jsonl")}


def test_an_add_links_the_article_segments_and_writes_only_its_own(
    tmp_path: Path, config: Config, models: Models, monkeypatch: pytest.MonkeyPatch
) -> None:
    src = tmp_path / "src"
    src.mkdir()
    first = _article(src, "harbour", "Harbour\n\nThe harbour master counted nine trawlers on Friday.\n")
    index_dir = tmp_path / "index"
    assistant = Assistant.from_articles([first], index_dir=index_dir, config=config, models=models)
    before = _inodes(current_version(index_dir))
    hashed: list[str] = []
    reading = durability.sha256_file
    monkeypatch.setattr(durability, "sha256_file", lambda path: (hashed.append(path.name), reading(path))[1])
    assistant.add([_article(src, "orchard", "Orchard\n\nThe orchard sold apples to the school.\n")], False)
    after = _inodes(current_version(index_dir))
    assert before.items() <= after.items() and len(after) == len(before) + 2  # linked; one new segment
    assert hashed and not set(hashed) & set(before)  # the linked segments keep their recorded checksums
    new = Assistant.load(index_dir, config, models)  # and those checksums hold
    assert new.article("orchard").title == "Orchard"
    changed = _article(src, "harbour", "Harbour\n\nThe harbour master counted twelve trawlers on Monday.\n")
    assistant.add([changed], show_progress=False)
    for n in range(MERGE_FACTOR + 1):  # small segments are merged as they reach a size class
        assistant.add([_article(src, f"note{n}", f"Note {n}\n\nCouncil note {n} was filed on Tuesday.\n")], False)
    listing = json.loads((current_version(index_dir) / "articles" / "segments.json").read_text())
    assert len(listing["segments"]) < MERGE_FACTOR
    assistant.remove(["orchard"])
    reloaded = Assistant.load(index_dir, config, models)
    assert "twelve trawlers" in reloaded.article("harbour").text
    assert sorted(a.doc_id for a in reloaded.articles()) == sorted(["harbour", *(f"note{n}" for n in range(9))])
    assert "twelve" in reloaded.ask("How many trawlers did the harbour master count?").text


def test_an_index_of_the_format_before_segments_is_read_and_turned_into_segments(
    tmp_path: Path, seed_index_dir: Path, config: Config, models: Models
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    version = current_version(index_dir)
    manifest = json.loads((version / MANIFEST).read_text())
    articles, notes, _ = article_store.read(version, manifest["articles"])
    with open(version / article_store.ARTICLES, "w", encoding="utf-8") as fh:  # the layout of format 2
        fh.writelines(json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in articles.values())
    with open(version / article_store.ANNOTATIONS, "w", encoding="utf-8") as fh:
        fh.writelines(json.dumps(n.to_json()) + "\n" for n in notes.values())
    shutil.rmtree(version / "articles")
    shutil.rmtree(version / "bm25")
    manifest["format_version"] = 2
    manifest["files"] = file_checksums(version, exclude=(MANIFEST,))
    (version / MANIFEST).write_text(json.dumps(manifest))

    old = Assistant.load(index_dir, config, models)
    question = "What did China say about the Taliban?"
    assert old.ask(question).text == Assistant.load(seed_index_dir, config, models).ask(question).text
    src = tmp_path / "src"
    src.mkdir()
    old.add([_article(src, "orchard", "Orchard\n\nThe orchard sold apples to the school.\n")], False)
    new = current_version(index_dir)
    assert json.loads((new / MANIFEST).read_text())["format_version"] == 3
    assert (new / "articles" / "segments.json").is_file() and not (new / article_store.ARTICLES).exists()
    again = Assistant.load(index_dir, config, models)
    assert {a.doc_id for a in again.articles()} == {*articles, "orchard"}
    assert "friendly and cooperative" in again.ask(question).text


def test_annotations_are_parsed_when_first_asked_for(seed_index_dir: Path) -> None:
    version = current_version(seed_index_dir)
    manifest = json.loads((version / MANIFEST).read_text())
    _, notes, _ = article_store.read(version, manifest["articles"])
    assert isinstance(notes, article_store.LazyNotes) and list(notes) == list(manifest["articles"])
    doc_id = next(iter(notes))
    line = notes.line(doc_id)  # as stored: nothing parsed
    first = notes[doc_id]
    assert notes[doc_id] is first and first.doc_id == doc_id and first.sentences
    assert json.loads(line) == json.loads(notes.line(doc_id)) == first.to_json()
    few = article_store.LazyNotes({"a": line, "b": line}, keep_parsed=1)
    with pytest.raises(ValueError, match="is of"):  # an annotation stored under another article's id
        few["a"]
    few["c"] = first
    assert few["c"] is first and set(few) == {"a", "b", "c"} and len(few) == 3
    del few["a"]
    assert "a" not in few and len(few) == 2
    with pytest.raises(KeyError):
        del few["a"]
