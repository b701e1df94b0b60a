"""The answer-sentence scorer and short answers through the whole assistant (real models and index)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.models import Models
from qa.types import Answer, Article

from .conftest import DATA, assert_citations_exact


def assert_short_inside_a_citation(assistant: Assistant, answer: Answer) -> None:
    """A short answer slices its article exactly and lies inside the quote of the citation it names."""
    short = answer.short
    if short is None:
        return
    assert not answer.abstained
    assert assistant.article(short.doc_id).text[short.start : short.end] == short.text
    cited = answer.citations[short.number - 1]
    assert cited.number == short.number and cited.doc_id == short.doc_id
    assert cited.start <= short.start < short.end <= cited.end
    assert answer.text.startswith(f"{short.text} [{short.number}]")


def test_a_when_question_leads_with_the_sentence_that_says_when(assistant: Assistant) -> None:
    for question in ("When did the Taliban take over Afghanistan?", "When did the Taliban take over?"):
        answer = assistant.ask(question)
        assert not answer.abstained, question
        assert "took over power in Afghanistan on Sunday" in answer.citations[0].quote, question
        assert answer.short is not None and answer.short.text == "Sunday", question
        assert_short_inside_a_citation(assistant, answer)


def test_a_who_question_gets_the_name_as_its_short_answer(assistant: Assistant) -> None:
    answer = assistant.ask("Who is the spokesperson of the Chinese foreign ministry?")
    assert answer.short is not None and answer.short.text == "Hua Chunying"
    assert answer.short.kind == "person"
    assert_short_inside_a_citation(assistant, answer)
    assert answer.to_dict()["short"]["text"] == "Hua Chunying"
    assert answer.to_markdown().startswith("Hua Chunying [")


def test_short_answers_of_the_seed_questions_slice_and_sit_inside_a_cited_sentence(assistant: Assistant) -> None:
    rows = [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line.strip()]
    shorts = 0
    for row in rows:
        answer = assistant.ask(row["question"])
        assert_citations_exact(assistant, answer)
        assert_short_inside_a_citation(assistant, answer)
        shorts += answer.short is not None
    assert shorts >= 3


@pytest.fixture(scope="module")
def typed(tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Assistant:
    articles = [
        Article(
            "stadium",
            "Council backs stadium",
            "The city council debated the new stadium plan for hours on end.\n"
            "Members of the council argued that the stadium plan would bring traffic and noise to the "
            "riverside, and the stadium plan was approved only after a long and bitter debate about its cost.\n"
            "The final vote came on March 3, 2021, when eleven members were present.",
        ),
        Article(
            "bridge",
            "Bridge reopens",
            "The old bridge over the river reopened to traffic after repairs.\n"
            "Engineers from Halden Works said the repairs of the bridge had been difficult.\n"
            "The repairs were paid for by Norvale Construction, the city's largest builder.",
        ),
    ]
    folder: Path = tmp_path_factory.mktemp("typed") / "index"
    return Assistant.build(articles, folder, config, models)


def test_a_typed_question_gets_the_entity_of_that_kind_as_its_short_answer(typed: Assistant) -> None:
    answer = typed.ask("Which company paid for the bridge repairs?")
    assert not answer.abstained
    assert answer.short is not None and answer.short.text == "Norvale Construction"
    assert answer.short.kind == "org"
    assert_short_inside_a_citation(typed, answer)
    stadium = typed.ask("When was the stadium plan approved?")
    assert stadium.short is None or stadium.short.text == "March 3, 2021"  # never the duration "hours"


def test_the_shipped_scorer_is_what_its_script_fits() -> None:
    from benchmarks import sentence_scorer

    shipped = json.loads(sentence_scorer.MODEL_FILE.read_text(encoding="utf-8"))
    assert sentence_scorer.fit_from_csv() == shipped


def test_a_follow_up_about_his_foreign_minister_cites_the_foreign_minister(assistant: Assistant) -> None:
    chat = assistant.chat()
    chat.ask("What did Pakistan's prime minister say?")
    answer = chat.ask("What did his foreign minister say?")
    assert "Imran Khan" in answer.resolved_question
    assert not answer.abstained
    assert answer.citations[0].speaker is not None
    assert answer.citations[0].speaker.name == "Shah Mahmood Qureshi"
    assert all(c.speaker is None or c.speaker.name != "Imran Khan" for c in answer.citations)
