"""Hybrid retrieval, reranking, filters and recency on small hand-made corpora."""

from __future__ import annotations

import math
from datetime import date

import pytest

from qa import Assistant, Config
from qa.errors import InvalidQuestionError, InvalidSettingError
from qa.models import Models
from qa.options import Filters
from qa.pipeline.retrieve import asks_for_recent
from qa.text import parse_date
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


def test_reranked_order_weighs_the_fused_place(built: dict[str, Assistant]) -> None:
    """Reranked passages rank by logit - rerank_rank_weight * ln(1 + fused place); 0 leaves the logit alone."""
    question = "Dock workers and the council: who went on strike over pay, and who approved repairs?"
    fused = [h.passage.passage_id for h in built["fused"].search(question, 7)]
    base = built["hybrid"]
    for weight in (0.0, 1.5, 8.0):
        hits = Assistant(base.index, Config(rerank_rank_weight=weight), base.models).search(question, 7)
        keys = [h.score - weight * math.log1p(fused.index(h.passage.passage_id)) for h in hits]
        assert keys == sorted(keys, reverse=True)
    heavy = Assistant(base.index, Config(rerank_rank_weight=50.0), base.models).search(question, 7)
    assert [h.passage.passage_id for h in heavy] == fused  # the fused order wins outright


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


def test_unknown_retrieval_mode_is_refused_when_the_settings_are_made() -> None:
    with pytest.raises(InvalidSettingError, match="QA_RETRIEVAL='fuzzy'.*hybrid, dense, bm25"):
        Config(retrieval="fuzzy")


def test_filter_and_date_helpers() -> None:
    assert parse_date("2022/09/14") == date(2022, 9, 14)
    assert parse_date("2021-08-16T10:00:00Z") == date(2021, 8, 16)
    assert parse_date("Monday") is None
    undated = Article("x", "t", "text")
    assert not Filters(since=date(2020, 1, 1)).allows(undated)
    assert Filters(sources=("Wire",)).allows(Article("y", "t", "text", source="wire"))


NEWS = [
    Article(
        "bridge-2019",
        "Riverton plans a bridge",
        "The mayor of Riverton announced plans for a new bridge over the river.",
        date="2019-05-01",
    ),
    Article(
        "bridge-2021",
        "Bridge delayed",
        "Riverton's bridge over the river was delayed by a dispute over the budget.",
        date="2021-03-01",
    ),
    Article(
        "bridge-2022",
        "Bridge opens",
        "Crowds cheered as the new Riverton bridge opened to traffic on Friday.",
        date="2022-06-10",
    ),
    Article(
        "bridge-later",
        "Bridge closes",
        "The new Riverton bridge over the river closed for repairs after cracks appeared.",
        date="2022-07-01",
    ),
    Article(
        "lighthouse",
        "Keeper retires",
        "The keeper of the Gull Point lighthouse retired after forty years of service.",
        date="2015-04-02",
    ),
    Article("lamp-notes", "Lamp notes", "The Gull Point lighthouse lamp is cleaned by hand every spring."),
]
AS_OF = "2022-06-16"


@pytest.fixture(scope="module")
def news(models: Models) -> Assistant:
    return Assistant.build(NEWS, None, Config(), models, show_progress=False)


def test_as_of_leaves_out_later_articles_and_favours_recent_ones(news: Assistant) -> None:
    question = "What news is there about the Riverton bridge?"
    assert "bridge-later" in ids(news, question, 6)
    assert ids(news, question, 1, until=AS_OF) == ["bridge-2019"]
    dated = news.search(question, 6, as_of=AS_OF)
    assert "bridge-later" not in [h.passage.doc_id for h in dated]
    assert dated[0].passage.doc_id == "bridge-2022"
    # The gain: as_of_boost logits for a story of that day, halved every as_of_half_life_days of age.
    flat = Assistant(news.index, Config(as_of_boost=0.0), news.models)
    flat.search(question, 6)  # the same batch as above: INT8 activations are quantised per batch
    plain = {h.passage.doc_id: h.score for h in flat.search(question, 6, as_of=AS_OF)}
    for hit in dated:
        day = parse_date(news.article(hit.passage.doc_id).date)
        gain = 0.0 if day is None else 3.0 * 0.5 ** ((date(2022, 6, 16) - day).days / 14)
        assert hit.score == pytest.approx(plain[hit.passage.doc_id] + gain, abs=1e-4)
    # A clearly better older match still comes first.
    assert ids(news, "What happened to the Riverton bridge over the river?", 1, as_of=AS_OF) == ["bridge-2021"]
    answer = news.ask(question, as_of=AS_OF)
    assert answer.citations and all(c.doc_id != "bridge-later" for c in answer.citations)


def test_as_of_still_finds_old_and_undated_news(news: Assistant) -> None:
    assert ids(news, "Who retired from the Gull Point lighthouse?", 1, as_of=AS_OF) == ["lighthouse"]
    assert ids(news, "How is the Gull Point lighthouse lamp cleaned?", 1, as_of=AS_OF) == ["lamp-notes"]
    assert ids(news, "Riverton bridge", 6, as_of="2019-06-01")[0] == "bridge-2019"
    assert ids(news, "Riverton bridge", 6, as_of="2000-01-01") == ["lamp-notes"]  # only the undated one is left
    found = ids(news, "Gull Point lighthouse", 6, as_of="today", since="2016-01-01")
    assert "bridge-later" in found and not {"lighthouse", "lamp-notes"} & set(found)  # undated fails a date range
    with pytest.raises(InvalidQuestionError, match="as_of"):
        news.search("Riverton bridge", as_of="next week")


def test_as_of_searches_the_recent_weeks_on_their_own(models: Models) -> None:
    """When older stories fill the library's best candidates, the recent weeks are searched too."""
    older = [
        Article(
            f"bridge-{year}",
            "Riverton bridge",
            f"In {year} the mayor of Riverton announced a new bridge over the river "
            f"and said the Riverton bridge over the river would be built.",
            date=f"{year}-05-01",
        )
        for year in (2016, 2017, 2018, 2019)
    ]
    recent = Article(
        "opening", "Crowds", "Crowds cheered on Friday as traffic crossed the new span in Riverton.", date="2022-06-10"
    )
    narrow = Config(candidates=2, rerank_candidates=2, top_k=2, as_of_boost=0.0)
    assistant = Assistant.build([*older, recent], None, narrow, models, show_progress=False)
    question = "What did the mayor of Riverton announce about a new bridge over the river?"
    assert "opening" not in ids(assistant, question, 2, until=AS_OF)
    assert "opening" in ids(assistant, question, 2, as_of=AS_OF)
    # A deeper search starts with the same candidates as the answer reads.
    assert ids(assistant, question, 5, as_of=AS_OF)[:2] == ids(assistant, question, 2, as_of=AS_OF)
