"""Hybrid retrieval, reranking, filters and recency on small hand-made corpora."""

from __future__ import annotations

from datetime import date

import pytest

from qa import Assistant, Config
from qa.errors import InvalidQuestionError
from qa.models import Models
from qa.retrieve import Filters, asks_for_recent, parse_date
from qa.types import Article

CORPUS = [
    Article("crate", "Shipping log", "The serial number ZQ-88417 was stamped on the wooden crate in the warehouse."),
    Article("kitten", "Home life", "A kitten slept peacefully on the carpet for the whole afternoon."),
    Article("budget", "Council budget", "The council approved a budget for road repairs and new street lights."),
    Article("match", "Football", "The home team won the football match by three goals to one on Saturday."),
    Article("storm", "Weather", "A storm brought heavy rain and strong winds to the coast overnight."),
    Article(
        "harbour-old",
        "Harbour strike",
        "Dock workers at the harbour went on strike over pay.",
        date="2022-01-10",
        source="Coast Times",
    ),
    Article(
        "harbour-new",
        "Harbour reopens",
        "The harbour reopened after dock workers ended their strike over pay.",
        date="2023-03-02",
        source="Daily Wire",
    ),
]


@pytest.fixture(scope="module")
def built(models: Models) -> dict[str, Assistant]:
    """The same small index searched with each retrieval setting."""
    base = Assistant.build(CORPUS, None, Config(), models, show_progress=False)
    settings = {
        "hybrid": Config(),
        "dense": Config(retrieval="dense", rerank=False),
        "bm25": Config(retrieval="bm25", rerank=False),
        "fused": Config(rerank=False),
    }
    return {name: Assistant(base.index, cfg, models) for name, cfg in settings.items()}


def ids(assistant: Assistant, query: str, k: int = 3, **filters: object) -> list[str]:
    return [h.passage.doc_id for h in assistant.search(query, k, **filters)]


def test_fusion_surfaces_a_bm25_only_hit_and_a_dense_only_hit(built: dict[str, Assistant]) -> None:
    query = "ZQ-88417 cat napping on a rug"
    assert "kitten" not in ids(built["bm25"], query, 7)  # no shared word: BM25 cannot find it
    assert ids(built["bm25"], query, 1) == ["crate"]
    fused = ids(built["fused"], query, 2)
    assert set(fused) == {"crate", "kitten"}
    everything = ids(built["fused"], "harbour dock workers strike pay", 7)
    assert len(everything) == len(set(everything))  # a passage found by both retrievers appears once
    assert set(ids(built["hybrid"], query, 2)) == {"crate", "kitten"}


def test_rerank_orders_by_the_cross_encoder_and_caches_scores(built: dict[str, Assistant]) -> None:
    hybrid = built["hybrid"]
    cross_encoder = hybrid.models.cross_encoder()
    before = cross_encoder.pairs_scored
    hits = hybrid.search("Who won the football match?", 3)
    assert hits[0].passage.doc_id == "match"
    assert hits[0].score > hits[1].score  # cross-encoder logits, best first
    scored = cross_encoder.pairs_scored - before
    assert scored == len(CORPUS)  # every candidate once (the corpus is smaller than rerank_candidates)
    again = hybrid.search("Who won the football match?", 3)
    assert [h.passage for h in again] == [h.passage for h in hits]
    assert cross_encoder.pairs_scored - before == scored  # the repeat was served from the cache


def test_date_and_source_filters_exclude_what_they_should(built: dict[str, Assistant]) -> None:
    hybrid = built["hybrid"]
    assert ids(hybrid, "harbour strike dock workers", 7, since="2023-01-01") == ["harbour-new"]
    assert ids(hybrid, "harbour strike dock workers", 7, until="2022-12-31") == ["harbour-old"]
    assert ids(hybrid, "harbour strike dock workers", 7, sources=["coast times"]) == ["harbour-old"]
    assert ids(hybrid, "harbour strike", 7, since="2024-01-01") == []
    answer = hybrid.ask("Why did dock workers strike?", since="2023-01-01")
    assert all(c.doc_id == "harbour-new" for c in answer.citations)
    assert hybrid.ask("Why did dock workers strike?", since="2030-01-01").abstained
    with pytest.raises(InvalidQuestionError, match="not a date"):
        hybrid.ask("Why did dock workers strike?", since="last Tuesday")


def test_questions_about_the_latest_news_prefer_newer_articles(built: dict[str, Assistant]) -> None:
    assert asks_for_recent("What is the latest on the harbour?") and not asks_for_recent("Who won the match?")
    question = "What is the latest news about the harbour dock workers?"
    assert ids(built["fused"], question, 1) == ["harbour-new"]
    assert ids(built["hybrid"], question, 1) == ["harbour-new"]
    # The boost moves newer articles up among comparable ones; switched off, relevance alone decides.
    plain = Assistant(built["hybrid"].index, Config(recency_boost=0.0), built["hybrid"].models)
    boosted = {h.passage.doc_id: h.score for h in built["hybrid"].search(question, 7)}
    unboosted = {h.passage.doc_id: h.score for h in plain.search(question, 7)}
    assert boosted["harbour-new"] == pytest.approx(unboosted["harbour-new"] + 1.0, abs=1e-3)
    assert boosted["harbour-old"] < unboosted["harbour-old"] + 1.0


def test_unknown_retrieval_mode_is_refused(built: dict[str, Assistant], models: Models) -> None:
    odd = Assistant(built["hybrid"].index, Config(retrieval="fuzzy"), models)
    with pytest.raises(ValueError, match="unknown retrieval mode"):
        odd.search("anything")


def test_filter_and_date_helpers() -> None:
    assert parse_date("2022/09/14") == date(2022, 9, 14)
    assert parse_date("2021-08-16T10:00:00Z") == date(2021, 8, 16)
    assert parse_date("Monday") is None
    undated = Article("x", "t", "text")
    assert not Filters(since=date(2020, 1, 1)).allows(undated)
    assert Filters(sources=("Wire",)).allows(Article("y", "t", "text", source="wire"))
