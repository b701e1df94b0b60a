"""BM25 in segments: the same scores as one bm25s index, writes that cost what they change."""

from __future__ import annotations

import random
from pathlib import Path

import bm25s
import pytest

from qa import Assistant, Config
from qa.index.bm25 import MERGE_FACTOR, BM25Index, _stemmer
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
    old = next((tmp_path / "v1").glob("*.npz"))
    assert (tmp_path / "v2" / old.name).stat().st_ino == old.stat().st_ino  # linked, not rewritten
    assert len(list((tmp_path / "v2").glob("*.npz"))) == 2
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
    before = {p.name for p in (index_dir / assistant.index.version / "bm25").glob("*.npz")}
    assistant.add([folder / "b.txt"], show_progress=False)
    after = {p.name for p in (index_dir / assistant.index.version / "bm25").glob("*.npz")}
    assert before < after and len(after - before) == 1  # one new segment; the first one linked
    assert [h.passage.doc_id for h in assistant.retrieve("orchard apples").hits] == ["b"]
    assistant.remove(["b"])
    reloaded = Assistant.load(index_dir, bm25, models)
    assert all(h.passage.doc_id != "b" for h in reloaded.retrieve("orchard apples cooperative").hits)
    assert [h.passage.doc_id for h in reloaded.retrieve("harbour trawlers").hits] == ["a"]
