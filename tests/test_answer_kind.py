"""What a question asks for, and the short answer a sentence holds (real spaCy annotation)."""

from __future__ import annotations

import pytest

from qa.ingest.annotate import Annotator
from qa.ingest.chunking import article_sentences
from qa.pipeline.answer_kind import answer_kind, short_answer
from qa.types import Article, Sentence


@pytest.mark.parametrize(
    ("question", "kind"),
    [
        ("When did the Taliban take over Afghanistan?", "time"),
        ("In what year did the war end?", "time"),
        ("Who is the spokesperson of the Chinese foreign ministry?", "person"),
        ("Which senator introduced the bill?", "person"),
        ("How many Taliban fighters entered Kabul?", "number"),
        ("How much did the company pay?", "number"),
        ("What percentage of voters approved the measure?", "number"),
        ("Which company bought the social network?", "org"),
        ("In December 2015, which organisation announced the deal?", "org"),
        ("Where did the summit take place?", "place"),
        ("Which country hosted the World Cup?", "place"),
        ("Which film won Best Picture?", "thing"),
        ("What is the name of the ship?", "thing"),
        ("What did China say about the Taliban?", "say"),
        ("How did the ministry react to the vote?", "say"),
        ("Why did he resign?", None),
        ("What causes rain?", None),
        ("What happened in Kabul?", None),
        ("What is the capital of France?", None),
    ],
)
def test_the_opening_words_say_what_kind_of_answer_is_wanted(question: str, kind: str | None) -> None:
    assert answer_kind(question) == kind


def _sentences(annotator: Annotator, text: str) -> tuple[Article, list[Sentence]]:
    article = Article("doc", "A story", text)
    return article, article_sentences(article, annotator.annotate([article])[0])


@pytest.mark.parametrize(
    ("question", "text", "expected"),
    [
        (
            "When did the Taliban take over Afghanistan?",
            "The Taliban took over power in Afghanistan on Sunday after the president fled.",
            "Sunday",
        ),
        (
            "Who is the spokesperson of the Chinese foreign ministry?",
            "Chinese foreign ministry spokesperson Hua Chunying told reporters in Beijing that China welcomed it.",
            "Hua Chunying",
        ),
        (
            "How many people were evacuated from the town?",
            "Officials in Texas said 2,300 people were evacuated from the town on Tuesday.",
            "2,300",
        ),
        (
            "Where did President Ashraf Ghani go?",
            "The Taliban took over power in Afghanistan on Sunday, after which President Ashraf Ghani left the "
            "country for neighbouring Tajikistan.",
            "Tajikistan",
        ),
        (
            "Where did the delegation travel next?",
            "Officials in Germany said the delegation travelled on to Vietnam for two days of talks.",
            "Vietnam",
        ),
    ],
)
def test_the_short_answer_is_the_wanted_entity_the_question_does_not_name(
    annotator: Annotator, question: str, text: str, expected: str
) -> None:
    article, sentences = _sentences(annotator, text)
    found = short_answer(answer_kind(question), question, sentences[0])
    assert found is not None
    assert found.text == expected
    assert article.text[found.start : found.end] == found.text
    assert sentences[0].start <= found.start < found.end <= sentences[0].end


def test_no_short_answer_where_the_sentence_has_none_of_the_kind_or_the_question_wants_none(
    annotator: Annotator,
) -> None:
    _, sentences = _sentences(annotator, "The Taliban took over power in Afghanistan after the president fled.")
    assert short_answer("time", "When did the Taliban take over Afghanistan?", sentences[0]) is None
    assert short_answer(None, "Why did the Taliban take over Afghanistan?", sentences[0]) is None
