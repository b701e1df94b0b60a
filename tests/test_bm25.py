"""BM25 in segments: the same scores as one bm25s index, writes that cost what they change, segment files
read when a search first needs them and checked then."""

from __future__ import annotations

import hashlib
import json
import random
import shutil
from pathlib import Path

import bm25s
import numpy as np
import pytest

from qa import Assistant, Config
from qa.errors import CorruptIndexError
from qa.index import bm25_files
from qa.index.bm25 import MERGE_FACTOR, BM25Index, _stemmer, tokens
from qa.index.durability import file_checksums
from qa.index.versions import MANIFEST, current_version
from qa.models import Models

WORDS = (
    "taliban china kabul minister embassy said talks border trade flood storm vote court judge council "
    "budget school police fire river bridge market price oil gas bank rate strike union hospital"
).split()


def _corpus(n: int, seed: int = 0) -> tuple[list[str], list[str]]:
    rng = random.Random(seed)
    texts = [" ".join(rng.choice(WORDS) for _ in range(rng.randint(3, 25))) for _ in range(n)]
    return texts, [f"p{i}" for i in range(n)]


def _bm25s_scores(texts: list[str], ids: list[str], query: str) -> dict[str, float]:
    stemmer = _stemmer()
    ref = bm25s.BM25()
    ref.index(bm25s.tokenize(texts, stopwords="en", stemmer=stemmer, show_progress=False), show_progress=False)
    docs, scores = ref.retrieve(
        bm25s.tokenize(query, stopwords="en", stemmer=stemmer, show_progress=False),
        k=len(texts),
        show_progress=False,
        n_threads=0,
    )
    return {ids[int(d)]: float(s) for d, s in zip(docs[0], scores[0], strict=True) if s > 0}


def test_segments_score_as_one_bm25s_index_over_every_passage() -> None:
    texts, ids = _corpus(300)
    whole = BM25Index.build(texts, ids)
    pieces = BM25Index()
    for start in range(0, len(texts), 7):  # 43 small writes: merged as they reach a size class
        pieces = pieces.added(texts[start : start + 7], ids[start : start + 7])
    assert 1 < len(pieces.segments) < 43 and sorted(pieces.ids) == sorted(ids)
    for query in ("china border trade", "flood river bridge said", "oil oil price", "nothing matches zebra"):
        expected = _bm25s_scores(texts, ids, query)
        for index in (whole, pieces):
            found = dict(index.search(query, len(texts)))
            assert found.keys() == expected.keys(), query
            assert all(found[p] == pytest.approx(s, rel=1e-5) for p, s in expected.items())
        best = whole.search(query, 5)
        assert [s for _, s in best] == sorted((s for _, s in best), reverse=True)


def test_removed_passages_are_never_found_and_a_half_removed_segment_is_rewritten() -> None:
    texts, ids = _corpus(120, seed=1)
    index = BM25Index.build(texts[:100], ids[:100]).added(texts[100:], ids[100:])
    fewer = index.without(ids[:10])
    assert fewer.deleted == set(ids[:10]) and not set(fewer.ids) & set(ids[:10])
    for query in ("taliban kabul", "court judge vote"):
        assert not {p for p, _ in fewer.search(query, 120)} & set(ids[:10])
    mostly = fewer.without(ids[10:60])  # over half of the first segment: rewritten without them
    assert not mostly.deleted and sorted(mostly.ids) == sorted(ids[60:])
    assert dict(mostly.search("china", 200)).keys() <= set(ids[60:])
    assert index.search("china", 200) != []  # the index it came from is unchanged


def test_a_search_restricted_to_some_articles_stays_within_their_passages() -> None:
    texts, _ = _corpus(200, seed=2)
    ids = [f"doc{i // 4}::{i % 4}" for i in range(200)]  # 50 articles of 4 passages
    index = BM25Index.build(texts[:120], ids[:120]).added(texts[120:], ids[120:])
    only = {f"doc{i}" for i in range(10, 40, 3)}
    found = index.search("china border trade police", 30, only)
    assert found and {p.rpartition("::")[0] for p, _ in found} <= only
    unrestricted = dict(index.search("china border trade police", 200))
    within = sorted((s for p, s in unrestricted.items() if p.rpartition("::")[0] in only), reverse=True)
    assert [s for _, s in found] == pytest.approx(within[:30])  # the best of those articles' passages
    assert index.search("china", 10, set()) == []


def test_saving_again_links_the_segments_already_written(tmp_path: Path) -> None:
    texts, ids = _corpus(60, seed=3)
    first = BM25Index.build(texts[:50], ids[:50])
    first.save(tmp_path / "v1")
    second = BM25Index.load(tmp_path / "v1").added(texts[50:], ids[50:])
    second.save(tmp_path / "v2", previous=tmp_path / "v1")
    old = next((tmp_path / "v1").glob("*.docs.npy"))
    assert (tmp_path / "v2" / old.name).stat().st_ino == old.stat().st_ino  # linked, not rewritten
    assert len(list((tmp_path / "v2").glob("*.docs.npy"))) == 2
    again = BM25Index.load(tmp_path / "v2")
    assert again.search("bank rate strike", 60) == second.search("bank rate strike", 60)
    assert MERGE_FACTOR > 2


def test_an_added_article_is_found_by_its_words_and_a_removed_one_never(
    tmp_path: Path, config: Config, models: Models
) -> None:
    folder = tmp_path / "articles"
    folder.mkdir()
    (folder / "a.txt").write_text("Title: Harbour\n\nThe harbour master counted nine trawlers on Friday.\n")
    (folder / "b.txt").write_text("Title: Orchard\n\nThe orchard cooperative sold apples to the school.\n")
    bm25 = config.with_changes(retrieval="bm25", rerank=False)
    index_dir = tmp_path / "index"
    assistant = Assistant.from_articles([folder / "a.txt"], index_dir=index_dir, config=bm25, models=models)
    before = {p.name for p in (index_dir / assistant.index.version / "bm25").glob("*.docs.npy")}
    assistant.add([folder / "b.txt"], show_progress=False)
    after = {p.name for p in (index_dir / assistant.index.version / "bm25").glob("*.docs.npy")}
    assert before < after and len(after - before) == 1  # one new segment; the first one linked
    assert [h.passage.doc_id for h in assistant.retrieve("orchard apples").hits] == ["b"]
    assistant.remove(["b"])
    reloaded = Assistant.load(index_dir, bm25, models)
    assert all(h.passage.doc_id != "b" for h in reloaded.retrieve("orchard apples cooperative").hits)
    assert [h.passage.doc_id for h in reloaded.retrieve("harbour trawlers").hits] == ["a"]


# ---- segment files read on demand ----------------------------------------------------------------------
def _sums(folder: Path) -> dict[str, str]:
    return {p.name: hashlib.sha256(p.read_bytes()).hexdigest() for p in folder.iterdir()}


def _blocks(folder: Path, name: str, word: str) -> set[int]:
    """The blocks of segment ``name``'s postings that hold ``word``'s."""
    t = json.loads((folder / f"{name}.json").read_text())["terms"][tokens([word], _stemmer())[0][0]]
    start, end = np.load(folder / f"{name}.indptr.npy")[t : t + 2]
    return set(range(start // bm25_files.BLOCK, (end - 1) // bm25_files.BLOCK + 1))


def test_loading_and_adding_read_no_postings_and_a_search_checks_the_blocks_it_reads(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(bm25_files, "BLOCK", 4)  # blocks of 4 postings: a word's postings span a few
    texts, ids = _corpus(100, seed=4)
    clean = BM25Index.build(texts[:60], ids[:60]).added(texts[60:90], ids[60:90])
    clean.save(tmp_path / "v1")
    sums = _sums(tmp_path / "v1")
    names = [s.name for s in clean.segments]
    damaged = {n: min(_blocks(tmp_path / "v1", n, "taliban")) for n in names}
    for name, block in damaged.items():  # one flipped byte in the first block of taliban's postings
        path = tmp_path / "v1" / f"{name}.docs.npy"
        at = np.load(path, mmap_mode="r").offset + block * bm25_files.BLOCK * 4  # after the header: 4-byte rows
        data = bytearray(path.read_bytes())
        data[at] ^= 0x01
        path.write_bytes(bytes(data))
    loaded = BM25Index.load(tmp_path / "v1", sums)  # reads the listing and the postings' headers only
    grown = loaded.added(texts[90:], ids[90:])  # needs no segment's contents
    grown.save(tmp_path / "v2", previous=tmp_path / "v1")  # links the two segments, writes the third
    assert len(grown.segments) == 3 and len(list((tmp_path / "v2").glob("*.docs.npy"))) == 3
    other = next(w for w in WORDS if all(damaged[n] not in _blocks(tmp_path / "v1", n, w) for n in names))
    assert loaded.search(other, 100) == clean.search(other, 100)  # its blocks are sound
    with pytest.raises(CorruptIndexError, match=r"\.docs\.npy is damaged: postings block \d+ does not match"):
        loaded.search("taliban", 100)
    assert loaded.search(other, 100) == clean.search(other, 100)


def test_a_torn_postings_file_is_caught_when_loading(tmp_path: Path) -> None:
    texts, ids = _corpus(40, seed=5)
    BM25Index.build(texts, ids).save(tmp_path / "v1")
    docs = next((tmp_path / "v1").glob("*.docs.npy"))
    docs.write_bytes(docs.read_bytes()[:-4])
    with pytest.raises(CorruptIndexError, match=r"\.docs\.npy is damaged: it has \d+ bytes where its header says"):
        BM25Index.load(tmp_path / "v1")


def test_a_loaded_index_searches_after_its_folder_is_deleted(tmp_path: Path) -> None:
    texts, ids = _corpus(40, seed=5)
    index = BM25Index.build(texts, ids)
    index.save(tmp_path / "v1")
    loaded = BM25Index.load(tmp_path / "v1", _sums(tmp_path / "v1"))
    shutil.rmtree(tmp_path / "v1")  # as a writer deletes the version it replaced: the files were opened
    assert loaded.search("bank rate strike", 40) == index.search("bank rate strike", 40)


def _as_written_before(folder: Path) -> None:
    """Rewrite the segments of a BM25 folder as they were written before their files were read on demand:
    ``NAME.npz`` with the four arrays, ``NAME.json`` with the ids and terms, and no sizes in the listing."""
    listing = json.loads((folder / "segments.json").read_text())
    for name in listing["segments"]:
        arrays = {k: np.load(folder / f"{name}.{k}.npy") for k in ("indptr", "docs", "tfs", "lengths")}
        with open(folder / f"{name}.npz", "wb") as fh:
            np.savez(fh, **arrays)
        meta = json.loads((folder / f"{name}.json").read_text())
        (folder / f"{name}.json").write_text(json.dumps({"ids": meta["ids"], "terms": meta["terms"]}))
        for k in arrays:
            (folder / f"{name}.{k}.npy").unlink()
    del listing["sizes"]
    (folder / "segments.json").write_text(json.dumps(listing))


def test_segments_written_before_score_the_same_and_are_checked_when_first_read(tmp_path: Path) -> None:
    texts, ids = _corpus(120, seed=6)
    index = BM25Index.build(texts[:70], ids[:70]).added(texts[70:100], ids[70:100])
    index.save(tmp_path / "v1")
    _as_written_before(tmp_path / "v1")
    old = BM25Index.load(tmp_path / "v1", _sums(tmp_path / "v1"))
    for query in ("china border trade", "oil oil price", "nothing matches zebra"):
        assert old.search(query, 120) == index.search(query, 120)  # the same scores, to the last bit
    grown = old.added(texts[100:], ids[100:])
    grown.save(tmp_path / "v2", previous=tmp_path / "v1")
    npz = {p.name: p.stat().st_ino for p in (tmp_path / "v1").glob("*.npz")}
    assert {p.name: p.stat().st_ino for p in (tmp_path / "v2").glob("*.npz")} == npz  # linked as they are
    assert len(list((tmp_path / "v2").glob("*.docs.npy"))) == 1  # the new segment
    assert BM25Index.load(tmp_path / "v2").search("bank rate", 120) == grown.search("bank rate", 120)
    sums = _sums(tmp_path / "v2")
    path = next((tmp_path / "v2").glob("*.npz"))
    path.write_bytes(path.read_bytes()[:-1] + bytes([path.read_bytes()[-1] ^ 1]))
    damaged = BM25Index.load(tmp_path / "v2", sums)
    with pytest.raises(CorruptIndexError, match=r"\.npz is damaged: it does not match its checksum"):
        damaged.search("bank rate", 120)


def test_an_index_whose_bm25_was_written_before_loads_answers_the_same_and_grows(
    tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    question = "What did China say about the Taliban?"
    expected = Assistant.load(index_copy, config, models).ask(question)
    version = current_version(index_copy)
    _as_written_before(version / "bm25")
    manifest = json.loads((version / MANIFEST).read_text())
    manifest["files"] = file_checksums(version, exclude=(MANIFEST,))
    (version / MANIFEST).write_text(json.dumps(manifest))
    old = Assistant.load(index_copy, config, models)
    answer = old.ask(question)
    assert (answer.text, answer.citations) == (expected.text, expected.citations)
    (tmp_path / "orchard.txt").write_text("Orchard\n\nThe orchard cooperative sold apples to the school.\n")
    old.add([tmp_path / "orchard.txt"], show_progress=False)
    bm25 = current_version(index_copy) / "bm25"
    assert len(list(bm25.glob("*.npz"))) == 1 and len(list(bm25.glob("*.docs.npy"))) == 1
    again = Assistant.load(index_copy, config, models)
    assert again.ask(question).text == expected.text
    assert "apples" in again.ask("What did the orchard cooperative sell?").text
