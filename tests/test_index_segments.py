"""Writes that cost what they change: a new version links the article and BM25 segments of the one before;
loading reads where the records are, not the records; `qa migrate` converts an index of formats 2 and 3."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import zlib
from pathlib import Path

import faiss
import orjson
import pytest
from llama_index.core.storage.docstore import SimpleDocumentStore

from qa import Assistant, Config
from qa.errors import CorruptIndexError, OldFormatError, QAError
from qa.index import article_store, durability
from qa.index.bm25 import MERGE_FACTOR
from qa.index.durability import file_checksums
from qa.index.migrate import migrate
from qa.index.passage_table import PassageTable, passage_node
from qa.index.records import LazyRecords, RecordFile
from qa.index.stores.faiss import FAISS_FILE
from qa.index.stores.faiss_segments import FaissSegments
from qa.index.versions import MANIFEST, current_version
from qa.models import Models


def _article(folder: Path, name: str, text: str) -> Path:
    path = folder / f"{name}.txt"
    path.write_text(text, encoding="utf-8")
    return path


def _inodes(version: Path) -> dict[str, int]:
    files = [*(version / "articles").glob("*.jsonl"), *(version / "faiss").glob("*.faiss")]
    return {p.name: p.stat().st_ino for p in files}


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
    assert before.items() <= after.items() and len(after) == len(before) + 4  # linked; new segments
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


def test_an_add_reads_neither_the_vectors_nor_the_postings_already_stored(
    tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    version = current_version(index_copy)
    for path in [*(version / "faiss").glob("*.faiss"), *(version / "bm25").glob("*.docs.npy")]:
        data = bytearray(path.read_bytes())
        data[len(data) * 9 // 10] ^= 0x01  # a vector, a posting: damage only reading them can find
        path.write_bytes(bytes(data))
    assistant = Assistant.load(index_copy, config, models)
    orchard = _article(tmp_path, "orchard", "Orchard\n\nThe orchard sold apples to the school.\n")
    assert assistant.add([orchard], show_progress=False).added == ("orchard",)  # read neither
    with pytest.raises(CorruptIndexError, match=r"(\.faiss|\.docs\.npy) is damaged"):
        Assistant.load(index_copy, config, models).ask("What did China say about the Taliban?")


def _downgrade(version: Path, to_format: int, reversed_ids: bool = False) -> None:
    """Rewrite a version as format 3 (or 2) wrote it: every passage in llama-index's JSON docstore, the FAISS
    ids in id_map.json, segments without passages (format 2: one articles.jsonl and annotations.jsonl, and
    bm25s's files instead of BM25 segments). ``reversed_ids``: the passages' FAISS ids in reverse order."""
    manifest = json.loads((version / MANIFEST).read_text())
    stored = article_store.read(version, manifest["articles"])
    table = stored.passages
    nodes = []
    for doc_id in manifest["articles"]:
        for position, (start, end, sentences) in enumerate(table.spans[doc_id]):
            text = stored.articles[doc_id].text[start:end]
            nodes.append(passage_node(f"{doc_id}::{position}", doc_id, position, start, end, sentences, text))
    docstore = SimpleDocumentStore()
    docstore.add_documents(nodes)
    (version / "docstore.json").write_bytes(orjson.dumps(docstore.to_dict()))
    struct = {"index_id": "passages", "summary": None, "nodes_dict": {n.node_id: n.node_id for n in nodes}}
    stored_struct = {"index_store/data": {"passages": {"__type__": "vector_store", "__data__": struct}}}
    (version / "index_store.json").write_text(json.dumps(stored_struct))
    ids, vectors = FaissSegments.load(version / "faiss", 384).stored_vectors()
    node_ids = [table.node_id(int(i)) for i in ids]
    if reversed_ids:
        ids = ids[::-1].copy()
    renumbered = faiss.IndexIDMap2(faiss.IndexFlatIP(vectors.shape[1]))
    renumbered.add_with_ids(vectors, ids)
    faiss.write_index(renumbered, str(version / FAISS_FILE))
    shutil.rmtree(version / "faiss")
    id_map = {"node_id_to_faiss_id_map": dict(zip(node_ids, ids.tolist(), strict=True))}
    id_map["faiss_id_to_node_id_map"] = {str(i): n for n, i in id_map["node_id_to_faiss_id_map"].items()}
    (version / "id_map.json").write_text(json.dumps(id_map))
    listing = json.loads((version / "articles" / "segments.json").read_text())
    for name in listing["segments"]:
        (version / "articles" / f"{name}.passages.jsonl").unlink()
        ids_file = version / "articles" / f"{name}.ids.json"
        held = json.loads(ids_file.read_text())
        ids_file.write_text(json.dumps({"doc_ids": held["doc_ids"], "hashes": held["hashes"]}))
    if to_format == 2:
        with open(version / "articles.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(a.to_dict(), ensure_ascii=False) + "\n" for a in stored.articles.values())
        with open(version / "annotations.jsonl", "w", encoding="utf-8") as fh:
            fh.writelines(json.dumps(stored.notes[d].to_json()) + "\n" for d in stored.articles)
        shutil.rmtree(version / "articles")
        shutil.rmtree(version / "bm25")
    manifest["format_version"] = to_format
    manifest["files"] = file_checksums(version, exclude=(MANIFEST,))
    (version / MANIFEST).write_text(json.dumps(manifest))


@pytest.mark.parametrize(("to_format", "reversed_ids"), [(3, False), (3, True), (2, False)])
def test_an_index_of_an_older_format_is_refused_and_converted_by_qa_migrate(
    tmp_path: Path, seed_index_dir: Path, config: Config, models: Models, to_format: int, reversed_ids: bool
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    src = tmp_path / "src"
    src.mkdir()
    seeded = Assistant.load(index_dir, config, models)
    seeded.add([_article(src, "orchard", "Orchard\n\nThe orchard sold apples to the school on Sunday.\n")], False)
    question = "What did China say about the Taliban?"
    expected = seeded.ask(question)
    _downgrade(current_version(index_dir), to_format, reversed_ids)

    with pytest.raises(OldFormatError) as err:
        Assistant.load(index_dir, config, models)
    assert f"qa migrate --index {index_dir}" in str(err.value) and "--rebuild" in str(err.value)
    done = migrate(index_dir, config)
    assert (done.from_format, done.articles, done.renumbered) == (to_format, 2, reversed_ids)
    new = current_version(index_dir)
    assert json.loads((new / MANIFEST).read_text())["format_version"] == 4
    assert not {"docstore.json", "id_map.json", "articles.jsonl"} & {p.name for p in new.iterdir()}
    again = Assistant.load(index_dir, config, models)
    answer = again.ask(question)
    assert answer.text == expected.text and answer.citations == expected.citations
    assert "apples" in again.ask("What did the orchard sell?").text
    again.add([_article(src, "harbour", "Harbour\n\nThe harbour master counted nine trawlers on Friday.\n")], False)
    assert "nine" in Assistant.load(index_dir, config, models).ask("How many trawlers were counted?").text
    with pytest.raises(QAError, match="already in format 4"):
        migrate(index_dir, config)


def test_records_are_read_when_first_asked_for(seed_index_dir: Path) -> None:
    version = current_version(seed_index_dir)
    manifest = json.loads((version / MANIFEST).read_text())
    notes = article_store.read(version, manifest["articles"]).notes
    assert isinstance(notes, LazyRecords) and list(notes) == list(manifest["articles"])
    doc_id = next(iter(notes))
    line = notes.line(doc_id)  # as stored: nothing parsed
    first = notes[doc_id]
    assert notes[doc_id] is first and first.doc_id == doc_id and first.sentences
    assert json.loads(line) == json.loads(notes.line(doc_id)) == first.to_json()
    few = article_store.new_notes()
    stored_at = next((version / "articles").glob("*.notes.jsonl"))  # the seed's annotation is its first line
    few.locate(["a"], RecordFile(stored_at, [0, len(line)], [zlib.crc32(line)]), [0])
    few["c"] = first
    assert few["c"] is first and few["a"] == first and set(few) == {"a", "c"} and len(few) == 2
    del few["a"]
    assert "a" not in few and len(few) == 1
    with pytest.raises(KeyError):
        del few["a"]


def test_a_loaded_index_reads_its_records_after_another_writer_deleted_its_version(
    tmp_path: Path, seed_index_dir: Path, config: Config, models: Models
) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    reader = Assistant.load(index_dir, config, models)  # nothing of its annotations or passages read yet
    first_version = current_version(index_dir)
    writer = Assistant.load(index_dir, config, models)
    src = tmp_path / "src"
    src.mkdir()
    for n in range(MERGE_FACTOR + 1):  # merges rewrite the seed's segment into a new one
        writer.add([_article(src, f"note{n}", f"Note {n}\n\nCouncil note {n} was filed on Tuesday.\n")], False)
    assert not first_version.exists()
    question = "What did China say about the Taliban?"
    answer = reader.ask(question)
    assert answer.text == writer.ask(question).text and answer.citations
    for c in answer.citations:
        assert reader.article(c.doc_id).text[c.start : c.end] == c.quote


def test_qa_migrate_converts_and_qa_ask_then_answers(tmp_path: Path, seed_index_dir: Path) -> None:
    index_dir = tmp_path / "index"
    shutil.copytree(seed_index_dir, index_dir)
    _downgrade(current_version(index_dir), 3)
    qa = [str(Path(sys.executable).parent / "qa")]
    question = ["ask", "What did China say about the Taliban?", "--index", str(index_dir)]
    refused = subprocess.run([*qa, *question], capture_output=True, text=True, timeout=300)
    assert refused.returncode == 1 and f"qa migrate --index {index_dir}" in refused.stderr
    done = subprocess.run([*qa, "migrate", "--index", str(index_dir)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "from format 3 to the current one: 1 article(s), 4 passage(s)" in done.stdout
    answered = subprocess.run([*qa, *question], capture_output=True, text=True, timeout=300)
    assert answered.returncode == 0 and "friendly and cooperative" in answered.stdout
    again = subprocess.run([*qa, "migrate", "--index", str(index_dir)], capture_output=True, text=True, timeout=300)
    assert again.returncode == 1 and "already in format 4" in again.stderr


def test_the_passage_table_maps_articles_and_passages_to_their_vector_ids() -> None:
    table = PassageTable(article_store.new_notes(), {"a": (0, 3), "b": (10, 2), "c": (5, 1)})  # type: ignore[arg-type]
    assert table.vector_ids_of(["b", "a", "unknown"]).tolist() == [10, 11, 0, 1, 2]
    assert table.vector_ids_of([]).tolist() == []
    assert [table.vector_id(n) for n in ("a::2", "b::0", "b::2", "c::0", "x::0", "a")] == [2, 10, None, 5, None, None]
    assert [table.node_id(i) for i in (0, 2, 3, 5, 11, 12)] == ["a::0", "a::2", None, "c::0", "b::1", None]
    assert table.node_ids("b") == ["b::0", "b::1"] and "a::1" in table and "a::3" not in table
