"""Follow-up questions: whole dialogues with the real models, and the resolution rules on their own.

The dialogues run over the seed article plus two short articles written here (a port
strike in Rotterdam, a city budget in Leeds), so that every answer has to come from the
right article as well as the right passage.
"""

from __future__ import annotations

import pytest

from qa import Answer, Assistant, Citation, Config
from qa.models import Models
from qa.pipeline.dialogue import name_spans, person_names, points_back, resolve

from .conftest import SEED_DOC, SEEDS, assert_citations_exact

STRIKE = "2023-05-02-port-strike"
BUDGET = "2023-05-03-leeds-budget"
ARTICLES = {
    STRIKE: """Port strike spreads to Rotterdam

Dock workers at the port of Rotterdam walked out on Tuesday, joining a strike that began in Antwerp last week.

Speaking outside the harbour authority's offices in Rotterdam, union leader Maria Jansen said the workers would \
stay out “until wages keep up with prices”. She added that talks with the employers had broken down on Friday.

The port authority said ships were being diverted to Hamburg while the strike lasts.
""",
    BUDGET: """Leeds approves new budget

The Leeds city council approved its budget for the coming year on Wednesday after a long debate.

At a press conference in the town hall, Mayor Tom Baker said the budget would “put schools and buses first”. \
He said council tax would rise by three percent.

Opposition councillors said the plan relied on optimistic forecasts.
""",
}


@pytest.fixture(scope="module")
def newsroom(tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Assistant:
    """The seed article and two more, indexed in memory."""
    folder = tmp_path_factory.mktemp("newsroom")
    for doc_id, text in ARTICLES.items():
        (folder / f"{doc_id}.txt").write_text(text, encoding="utf-8")
    return Assistant.from_articles([SEEDS, folder], config=config, models=models, show_progress=False)


def cited_docs(answer: Answer) -> set[str]:
    return {c.doc_id for c in answer.citations}


def test_the_four_turn_dialogue_of_the_seed_article(newsroom: Assistant) -> None:
    chat = newsroom.chat()

    first = chat.ask("What did China say about the Taliban?")
    assert not first.abstained and cited_docs(first) == {SEED_DOC}
    assert "friendly and cooperative" in first.text or "Wang Yi" in first.text
    assert first.resolved_question == first.question  # nothing to resolve yet

    who = chat.ask("Who said that?")
    assert not who.abstained and cited_docs(who) == {SEED_DOC}
    assert who.resolved_question != who.question
    # The speaker of what China said: a Chinese official, named in the first cited sentence.
    assert any(name in who.citations[0].quote for name in ("Wang Yi", "Hua Chunying"))
    assert not any("Pakistan" in c.quote for c in who.citations)

    pakistan = chat.ask("And what did Pakistan's prime minister say?")
    assert not pakistan.abstained and cited_docs(pakistan) == {SEED_DOC}
    assert "Taliban" in pakistan.resolved_question  # the topic carried over from the first turn
    assert "Imran Khan" in pakistan.citations[0].quote

    where = chat.ask("Where was he when he said it?")
    assert not where.abstained and cited_docs(where) == {SEED_DOC}
    assert "Imran Khan" in where.resolved_question and "he" not in where.resolved_question.split()[:3]
    assert "Islamabad" in where.citations[0].quote
    assert not any("Qureshi" in c.quote or "Wang Yi" in c.quote for c in where.citations)
    for answer in (first, who, pakistan, where):
        assert_citations_exact(newsroom, answer)
    assert [t.question for t in chat.history] == [a.question for a in (first, who, pakistan, where)]


def test_pronouns_reach_back_past_the_previous_turn_and_respect_gender(newsroom: Assistant) -> None:
    chat = newsroom.chat()
    strike = chat.ask("What did Maria Jansen say about the strike?")
    assert cited_docs(strike) == {STRIKE} and "until wages keep up with prices" in strike.citations[0].quote
    budget = chat.ask("What did the mayor of Leeds say about the budget?")
    assert BUDGET in cited_docs(budget) and "Tom Baker" in budget.citations[0].quote

    # "she" is Maria Jansen (the articles call her "she"), two turns back, not the mayor.
    where = chat.ask("Where was she when she said it?")
    assert "Maria Jansen" in where.resolved_question and "Tom Baker" not in where.resolved_question
    assert cited_docs(where) == {STRIKE}
    assert "harbour authority's offices in Rotterdam" in where.citations[0].quote

    taxes = chat.ask("And what did he say about taxes?")
    assert "Tom Baker" in taxes.resolved_question
    assert cited_docs(taxes) == {BUDGET}
    assert any("council tax would rise" in c.quote for c in taxes.citations)


def test_what_about_asks_the_previous_question_of_a_new_subject(newsroom: Assistant) -> None:
    chat = newsroom.chat()
    us = chat.ask("What did the United States' Embassy do?")
    assert "suspended operations" in us.citations[0].quote
    korea = chat.ask("What about South Korea?")
    assert korea.resolved_question == "What did South Korea do?"
    assert "South Korea has also temporarily closed its embassy" in korea.citations[0].quote
    staff = chat.ask("Where did it take its staff?")
    assert "South Korea" in staff.resolved_question
    assert "unspecified third country" in staff.citations[0].quote
    assert cited_docs(staff) == {SEED_DOC}


def test_a_question_that_stands_alone_is_not_rewritten(newsroom: Assistant) -> None:
    chat = newsroom.chat()
    chat.ask("What did Maria Jansen say about the strike?")
    answer = chat.ask("Where did President Ashraf Ghani go?")
    assert answer.resolved_question == answer.question
    assert "Tajikistan" in answer.text


def test_borrowed_names_are_not_required_and_history_resumes(newsroom: Assistant) -> None:
    chat = newsroom.chat()
    chat.ask("What did Pakistan's prime minister say?")
    resumed = newsroom.chat(chat.history)
    follow = resumed.ask("Where was he?")
    assert not follow.abstained and "Imran Khan" in follow.resolved_question
    assert len(resumed.history) == 2 and len(chat.history) == 1
    resumed.reset()
    assert resumed.history == () and resumed.resolve("Where was he?").text == "Where was he?"


# ---- the rules, without models ------------------------------------------------------------
def _answer(question: str, *quotes: str, doc_id: str = "doc", resolved: str = "") -> Answer:
    citations = tuple(
        Citation(n, doc_id, "Title", None, None, None, q, 0, len(q), 5.0) for n, q in enumerate(quotes, start=1)
    )
    text = " ".join(f"{q} [{n}]" for n, q in enumerate(quotes, start=1))
    return Answer(question, text, citations, not quotes, resolved_question=resolved or question)


@pytest.mark.parametrize(
    ("question", "expected"),
    [
        ("Who said that?", True),
        ("Where was he?", True),
        ("And what did the mayor say?", True),
        ("What about South Korea?", True),
        ("Why?", True),
        ("Was that before the Taliban took over?", True),
        ("What did China say about the Taliban?", False),
        ("Did Khan say that Afghans were free?", False),
        ("Where did President Ashraf Ghani go?", False),
    ],
)
def test_points_back(question: str, expected: bool) -> None:
    assert points_back(question) is expected


def test_names_and_people() -> None:
    sentence = "In Islamabad, Pakistan Prime Minister Imran Khan said Afghans had broken “the shackles of slavery”."
    assert name_spans(sentence) == ["Islamabad", "Pakistan Prime Minister Imran Khan", "Afghans"]
    assert person_names(sentence) == ["Imran Khan"]
    assert person_names("Meanwhile, Chinese foreign ministry spokesperson Hua Chunying said that Beijing agreed.") == [
        "Hua Chunying"
    ]
    assert person_names("In a statement on Monday, the Chinese Embassy said that it would stay.") == []
    assert person_names("“We are ready,” said Jacinda Ardern on Friday.") == ["Jacinda Ardern"]


def test_resolution_rules() -> None:
    china = _answer(
        "What did China say about the Taliban?",
        "China said on Monday that it was willing to deepen its “friendly and cooperative” ties with the country.",
    )
    assert resolve("What did China say about the Taliban?", []).text == "What did China say about the Taliban?"
    assert resolve("Who said that?", [china]).text == "Who said “friendly and cooperative”?"
    assert resolve("And what did Pakistan say?", [china]).text == "And what did Pakistan say about the Taliban?"
    assert resolve("What about Russia?", [china]).text == "What did Russia say about the Taliban?"
    khan = _answer("What did Pakistan's prime minister say?", "Prime Minister Imran Khan said “no”.", doc_id="pk")
    where = resolve("Where was he?", [china, khan])
    assert where.text == "Where was Imran Khan?" and where.borrowed == ("Imran Khan",) and where.doc_ids == ("pk",)
    assert resolve("What did his party say?", [khan]).text == "What did Imran Khan’s party say?"
    # A question with names of its own is searched everywhere, not only in the earlier articles.
    assert resolve("And what did Wang Yi say?", [khan]).doc_ids == ()
