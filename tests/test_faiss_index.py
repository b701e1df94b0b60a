"""The vector index kind follows the collection's size: exact below the threshold, IVF above."""

from __future__ import annotations

import json
from pathlib import Path

import faiss
import numpy as np
import pytest
from llama_index.core.vector_stores.types import VectorStoreQuery

from qa import Assistant, Config
from qa.errors import CorruptIndexError
from qa.index.article_store import new_notes
from qa.index.passage_table import PassageTable
from qa.index.stores.faiss import (
    IndexKind,
    auto_nlist,
    index_kind,
    kind_for,
    make_index,
    needs_rebuild,
    rebuilt,
    search_parameters,
    stored_vectors,
)
from qa.index.stores.faiss_segments import FaissSegments, new_store, open_store
from qa.index.versions import MANIFEST, current_version
from qa.models import Models

from .conftest import SEED_DOC

DIMENSION = 384
HARBOUR = "Harbour reopens\n\nThe city harbour reopened on Friday after a two-week strike by dock workers."
BRIDGE = "Bridge opens\n\nThe mayor opened the new river bridge on Tuesday morning."


def clustered(count: int, seed: int, clusters: int = 60) -> np.ndarray:
    """Unit vectors in overlapping Gaussian clusters around a shared direction, as benchmarks/scale.py draws them."""
    rng = np.random.default_rng([7, seed])
    shared = np.random.default_rng(7).standard_normal(DIMENSION)
    centers = np.random.default_rng(8).standard_normal((clusters, DIMENSION))
    centers = 0.7 * shared / np.linalg.norm(shared) + 0.5 * centers / np.linalg.norm(centers, axis=1, keepdims=True)
    spectrum = np.arange(1, DIMENSION + 1) ** -0.5
    spectrum *= 0.8 / np.linalg.norm(spectrum)
    basis = np.linalg.qr(np.random.default_rng(9).standard_normal((DIMENSION, DIMENSION)))[0]
    x = centers[rng.integers(0, clusters, count)] + (rng.standard_normal((count, DIMENSION)) * spectrum) @ basis
    return (x / np.linalg.norm(x, axis=1, keepdims=True)).astype(np.float32)


def recall_at_10(found: np.ndarray, exact: np.ndarray) -> float:
    return float(np.mean([len(set(f) & set(e)) / 10 for f, e in zip(found.tolist(), exact.tolist(), strict=True)]))


def exact_top10(data: np.ndarray, ids: np.ndarray, queries: np.ndarray) -> np.ndarray:
    return ids[np.argsort(-(queries @ data.T), axis=1)[:, :10]]


@pytest.fixture(scope="module")
def vectors() -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """4,000 clustered vectors with sparse ids (as after removals), and 200 queries near them."""
    data = clustered(4000, seed=0)
    ids = np.arange(4000, dtype=np.int64) * 3 + 5
    return data, ids, clustered(200, seed=1)


def test_kind_follows_the_threshold() -> None:
    config = Config(ann_threshold=1000)
    assert kind_for(999, config) is IndexKind.FLAT
    assert kind_for(1000, config) is IndexKind.IVF_SQ8
    assert kind_for(1000, config.with_changes(ann_index="ivf-flat")) is IndexKind.IVF_FLAT
    assert kind_for(10**6, Config()) is IndexKind(Config().ann_index)
    assert kind_for(Config().ann_threshold - 1, Config()) is IndexKind.FLAT
    with pytest.raises(ValueError, match="QA_ANN_INDEX"):
        kind_for(1000, config.with_changes(ann_index="hnsw"))
    assert [auto_nlist(n) for n in (10, 4000, 200_000, 1_000_000)] == [1, 64, 512, 1024]


@pytest.mark.parametrize("kind", ["ivf-sq8", "ivf-flat"])
def test_approximate_index_recall_at_10_against_exact(kind: str, vectors: tuple) -> None:
    data, ids, queries = vectors
    config = Config(ann_threshold=1000, ann_index=kind)
    index = make_index(len(data), DIMENSION, config, training=data)
    index.add_with_ids(data, ids)
    assert index_kind(index) is IndexKind(kind) and index.nlist == 64
    exact = exact_top10(data, ids, queries)
    _, found = index.search(queries, 10, params=search_parameters(index, config))  # the default: 32 lists of 64
    assert recall_at_10(found, exact) >= 0.95
    _, found = index.search(queries, 10, params=search_parameters(index, config.with_changes(ivf_probe_share=1 / 16)))
    assert recall_at_10(found, exact) < 0.9  # the data is not so easy that any setting passes


def test_filtered_search_probes_enough_lists_to_find_the_allowed_vectors(vectors: tuple) -> None:
    data, ids, queries = vectors
    config = Config(ann_threshold=1000, ann_index="ivf-flat", ivf_probe_share=1 / 64)  # one list of 64 unfiltered
    index = make_index(len(data), DIMENSION, config, training=data)
    index.add_with_ids(data, ids)
    allowed = ids[::50]  # 80 vectors spread over the lists, as the passages of a few articles
    keep = np.isin(ids, allowed)
    exact = exact_top10(data[keep], ids[keep], queries)
    _, found = index.search(queries, 10, params=search_parameters(index, config, allowed))
    naive = faiss.SearchParametersIVF(sel=faiss.IDSelectorBatch(allowed), nprobe=1)
    _, found_naive = index.search(queries, 10, params=naive)
    assert recall_at_10(found, exact) >= 0.95 > 0.5 > recall_at_10(found_naive, exact)
    default = Config(ann_threshold=1000, ann_index="ivf-flat")  # a narrow filter: every list is probed
    _, found = index.search(queries, 10, params=search_parameters(index, default, allowed))
    assert recall_at_10(found, exact) == 1.0


def test_rebuild_keeps_ids_and_vectors_and_removal_works_in_every_kind(vectors: tuple) -> None:
    data, ids, queries = vectors
    low, high = Config(ann_threshold=1000), Config(ann_threshold=10_000)
    flat = make_index(len(data), DIMENSION, high)
    flat.add_with_ids(data, ids)
    assert index_kind(flat) is IndexKind.FLAT and needs_rebuild(flat, low) and not needs_rebuild(flat, high)
    ivf = rebuilt(flat, low)
    assert index_kind(ivf) is IndexKind.IVF_SQ8 and ivf.ntotal == len(data) and not needs_rebuild(ivf, low)
    got_ids, got = stored_vectors(ivf)
    order = np.argsort(got_ids)
    assert np.array_equal(got_ids[order], ids)
    assert np.abs(got[order] - data).max() < 0.01  # 8-bit codes
    assert ivf.remove_ids(ids[:10]) == 10
    _, found = ivf.search(data[:10], 1, params=search_parameters(ivf, low))
    assert not set(found.ravel().tolist()) & set(ids[:10].tolist())
    back = rebuilt(ivf, high)  # shrinking below the threshold goes back to exact search
    assert index_kind(back) is IndexKind.FLAT and back.ntotal == len(data) - 10
    assert back.remove_ids(ids[10:20]) == 10 and back.ntotal == len(data) - 20


def _kind_on_disk(index_dir: Path) -> dict:
    return json.loads((current_version(index_dir) / MANIFEST).read_text())["vector_index"]


def test_articles_are_found_when_the_collection_crosses_the_threshold_and_back(
    tmp_path: Path, index_copy: Path, models: Models
) -> None:
    """Seed index (exact); adding crosses a low threshold into IVF; removing goes back; reloads agree."""
    seed = Assistant.load(index_copy, Config(), models)
    threshold = len(seed.index) + 1
    config = Config(ann_threshold=threshold, ivf_nlist=2, ivf_probe_share=0.5)  # one list of two
    assistant = Assistant.load(index_copy, config, models)
    assert _kind_on_disk(index_copy) == {"kind": "flat"}
    news = tmp_path / "news"
    news.mkdir()
    (news / "port.txt").write_text(HARBOUR, encoding="utf-8")
    (news / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    assistant.add(news, show_progress=False)
    assert _kind_on_disk(index_copy) == {"kind": "ivf-sq8", "nlist": 2}
    assert len(assistant.index) == threshold + 1
    reloaded = Assistant.load(index_copy, config, models)
    for loaded in (assistant, reloaded):
        assert loaded.ask("What did China say about the Taliban?").citations[0].doc_id == SEED_DOC
        assert loaded.ask("When did the city harbour reopen?").citations[0].doc_id == "port"
        only_port = loaded.index.search(models.embedder().encode_queries(["China Taliban"])[0], 5, ["port"])
        assert [h.passage.doc_id for h in only_port] == ["port"]  # the filter finds it whatever list it is in
    question = models.embedder().encode_queries(["When did the mayor open the river bridge?"])[0]
    assert [(h.passage.passage_id, round(h.score, 5)) for h in assistant.index.search(question, 5)] == [
        (h.passage.passage_id, round(h.score, 5)) for h in reloaded.index.search(question, 5)
    ]
    assert assistant.remove(["port", "bridge"]) == ["port", "bridge"]  # below the threshold again
    assert _kind_on_disk(index_copy) == {"kind": "flat"}
    after = Assistant.load(index_copy, config, models)
    assert "port" not in {h.passage.doc_id for h in after.search("When did the city harbour reopen?", top_k=50)}
    assert after.ask("What did China say about the Taliban?").citations[0].doc_id == SEED_DOC


def test_a_collection_above_the_threshold_is_built_approximate(tmp_path: Path, models: Models) -> None:
    news = tmp_path / "news"
    news.mkdir()
    for name, text in {"port": HARBOUR, "bridge": BRIDGE}.items():
        (news / f"{name}.txt").write_text(text, encoding="utf-8")
    config = Config(ann_threshold=2, ann_index="ivf-flat")
    assistant = Assistant.from_articles([news], index_dir=tmp_path / "index", config=config, models=models)
    assert _kind_on_disk(tmp_path / "index") == {"kind": "ivf-flat", "nlist": 1}
    assert assistant.ask("When did the mayor open the river bridge?").citations[0].doc_id == "bridge"


def test_segments_search_as_one_exact_index_and_keep_removals_across_saves(tmp_path: Path, vectors: tuple) -> None:
    """Vectors added over many writes, some removed: the segments answer as one exact index would, a
    save links the segments of the one before and writes only the new, and a reload agrees."""
    data, ids, queries = vectors
    config = Config(ann_threshold=100_000)
    segments = FaissSegments.new(DIMENSION, config)
    previous = None
    written: list[set[str]] = []
    for n, start in enumerate(range(0, 1200, 100)):  # twelve writes of 100 vectors
        segments.add_with_ids(data[start : start + 100], ids[start : start + 100])
        if n % 3 == 2:
            segments.remove_ids(ids[start - 150 : start - 140])  # ten from an earlier write
        segments.fit(config)
        folder = tmp_path / f"v{n}"
        segments.save(folder, previous)
        names = {p.name for p in folder.glob("*.faiss")}
        if previous is not None:  # every file but the new one is a link to the one before
            kept = {p.name for p in folder.glob("*.faiss") if p.stat().st_nlink > 1}
            assert len(names - kept) <= 1 or n == 7  # the eighth write merges eight segments into one
        written.append(names)
        previous = folder
    assert len(written[7]) < len(written[6])  # merged
    removed = {int(i) for n in (2, 5, 8, 11) for i in ids[n * 100 - 150 : n * 100 - 140]}
    live = np.asarray([i not in removed for i in ids[:1200].tolist()])
    exact = exact_top10(data[:1200][live], ids[:1200][live], queries)
    reloaded = FaissSegments.load(previous, DIMENSION)
    for index in (segments, reloaded):
        assert index.ntotal == live.sum()
        found = np.asarray([[i for _, i in index.search(q[np.newaxis, :], 10, config, None)] for q in queries])
        assert np.array_equal(found, exact)
    allowed = ids[:1200][live][::7]
    only = reloaded.search(queries[:1], 5, config, allowed)
    assert {i for _, i in only} <= set(allowed.tolist()) and len(only) == 5
    biggest = max(reloaded.segments, key=lambda s: s.index.ntotal)
    held = stored_vectors(biggest.index)[0]
    reloaded.remove_ids(held[: len(held) * 3 // 5])  # most of a segment's file is now dead
    assert biggest.deleted
    reloaded.fit(config)
    reloaded.save(tmp_path / "last", previous)
    listing = json.loads((tmp_path / "last" / "segments.json").read_text())
    assert biggest.name in listing["segments"] and biggest.name not in listing["deleted"]  # rewritten alone
    assert not (tmp_path / "last" / f"{biggest.name}.faiss").stat().st_nlink > 1
    assert FaissSegments.load(tmp_path / "last", DIMENSION).ntotal == live.sum() - len(held) * 3 // 5


def test_a_loaded_index_reads_a_segment_when_a_search_first_needs_it(tmp_path: Path, vectors: tuple) -> None:
    """Loading, adding, fitting and saving read no segment its listing describes (count, kind, SHA-256): one
    damaged meanwhile is found by the first search, which checks it against its SHA-256."""
    data, ids, queries = vectors
    config = Config(ann_threshold=1000)
    segments = FaissSegments.new(DIMENSION, config, data[:3000])  # IVF, trained on these
    segments.add_with_ids(data[:3000], ids[:3000])
    segments.save(tmp_path / "v1", None)
    path = next((tmp_path / "v1").glob("*.faiss"))
    data_bytes, at = bytearray(path.read_bytes()), path.stat().st_size * 9 // 10
    data_bytes[at] ^= 0x01  # a stored vector
    path.write_bytes(bytes(data_bytes))
    loaded = FaissSegments.load(tmp_path / "v1", DIMENSION)
    assert loaded.ntotal == 3000 and loaded.describe() == segments.describe()
    assert loaded.describe()["kind"] == "ivf-sq8"
    loaded.add_with_ids(data[3000:3010], ids[3000:3010])  # a new exact segment beside it
    loaded.fit(config)
    loaded.save(tmp_path / "v2", tmp_path / "v1")
    assert (tmp_path / "v2" / path.name).stat().st_ino == path.stat().st_ino  # linked, not read
    with pytest.raises(CorruptIndexError, match=r"\.faiss is damaged: it does not match its checksum"):
        loaded.search(queries[:1], 10, config, None)
    data_bytes[at] ^= 0x01  # repaired (in both versions: the file is linked)
    path.write_bytes(bytes(data_bytes))
    segments.add_with_ids(data[3000:3010], ids[3000:3010])
    segments.fit(config)
    again = FaissSegments.load(tmp_path / "v2", DIMENSION)
    assert again.search(queries[:5], 10, config, None) == segments.search(queries[:5], 10, config, None)


def test_the_llama_index_store_deletes_an_article_and_persists_as_it_reads_back(tmp_path: Path, vectors: tuple) -> None:
    data, _, queries = vectors
    table = PassageTable(new_notes(), {"a": (0, 40), "b": (40, 60)})  # type: ignore[arg-type]
    store = new_store(DIMENSION, Config(), None)
    store.use_ids(table)
    store.segments.add_with_ids(data[:100], np.arange(100, dtype=np.int64))
    store.delete("a")  # llama-index's delete by article: its 40 passages
    assert store.segments.ntotal == 60
    found = store.query(VectorStoreQuery(query_embedding=queries[0].tolist(), similarity_top_k=100))
    assert len(found.ids) == 60 and all(n.startswith("b::") for n in found.ids)
    store.persist(str(tmp_path / "default__vector_store.json"))
    again = open_store(tmp_path, DIMENSION, Config())
    assert again.segments.ntotal == 60 and again.segments.stored_vectors()[0].min() == 40
