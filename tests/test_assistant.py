"""Answers with exact citations, abstentions, question checks and conversations."""

from __future__ import annotations

import pytest

from qa import Answer, Assistant, Citation
from qa.errors import InvalidQuestionError, QAError, UnknownArticleError
from qa.text import key_terms, term_found

from .conftest import SEED_DOC, assert_citations_exact


def test_china_question_is_answered_with_exact_citations(assistant: Assistant) -> None:
    answer = assistant.ask("What did China say about the Taliban?")
    assert isinstance(answer, Answer)
    assert not answer.abstained
    assert "friendly and cooperative" in answer.text
    assert len(answer.citations) >= 2
    assert all(isinstance(c, Citation) for c in answer.citations)
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        assert f"{c.quote} [{c.number}]" in answer.text
        assert c.title == "China Taliban" and c.date == "2021-08-16"
    assert_citations_exact(assistant, answer)
    assert set(answer.timings) == {"retrieve", "rerank", "read", "total"}
    exported = answer.to_markdown()
    assert exported.startswith(answer.text) and "Sources:" in exported
    assert f"[1] China Taliban (2021-08-16), chars {answer.citations[0].start}-" in exported


def test_unanswerable_question_abstains(assistant: Assistant) -> None:
    answer = assistant.ask("What did Russia say about the Taliban?")
    assert answer.abstained
    assert "do not answer" in answer.text and "Russia" in answer.text
    # What it offers instead is labelled as the nearest information, not an answer.
    assert all(f"{c.quote} [{c.number}]" in answer.text.split("not an answer):", 1)[1] for c in answer.citations)


def test_off_topic_question_abstains(assistant: Assistant) -> None:
    answer = assistant.ask("Who won the football match on Sunday?")
    assert answer.abstained and "do not answer" in answer.text


@pytest.mark.parametrize("bad", ["", "   \n\t ", "\x00\x01\x02"])
def test_empty_questions_are_refused_clearly(assistant: Assistant, bad: str) -> None:
    with pytest.raises(InvalidQuestionError, match="empty"):
        assistant.ask(bad)


def test_overlong_question_is_refused(assistant: Assistant) -> None:
    with pytest.raises(InvalidQuestionError, match="limit"):
        assistant.ask("why " * 30_000)


def test_control_characters_are_cleaned(assistant: Assistant) -> None:
    answer = assistant.ask("Where did\x00 President Ashraf Ghani\x1b go?")
    assert answer.question == "Where did President Ashraf Ghani go?"
    assert "Tajikistan" in answer.text


def test_articles_and_article_lookup(assistant: Assistant) -> None:
    [article] = assistant.articles()
    assert assistant.article(article.doc_id) == article
    with pytest.raises(UnknownArticleError, match="qa articles") as err:
        assistant.article("no-such-article")
    assert isinstance(err.value, KeyError) and "'no-such-article'" in str(err.value)  # still a KeyError


@pytest.mark.parametrize(
    "call",
    [
        lambda a: a.article(None),
        lambda a: a.search("China", top_k=0),
        lambda a: a.search("China", top_k="ten"),
        lambda a: a.ask("What did China say?", strictness=2),
        lambda a: a.ask("What did China say?", strictness="high"),
        lambda a: a.ask("What did China say?", sources=[1]),
        lambda a: a.ask("What did China say?", since=20210816),
        lambda a: a.ask("What did China say?", within=5),
        lambda a: a.add(123),
        lambda a: a.add([None]),
        lambda a: a.remove(None),
        lambda a: a.remove(["no-such-article"]),
        lambda a: a.chat([("q", "a")]),
        lambda a: Assistant.load(None),
        lambda a: Assistant.build(["not an article"]),
        lambda a: Assistant.from_articles(42),
    ],
)
def test_every_public_method_raises_the_packages_errors_saying_what_to_do(assistant: Assistant, call) -> None:  # noqa: ANN001
    with pytest.raises(QAError) as err:
        call(assistant)
    assert len(str(err.value)) > 30 and "Traceback" not in str(err.value)
    assert [a.doc_id for a in assistant.articles()] == [SEED_DOC]  # nothing was changed


def test_a_single_source_may_be_given_as_a_string(assistant: Assistant) -> None:
    answer = assistant.ask("What did China say about the Taliban?", sources="cnn.com")
    assert answer.abstained and "No article matches the sources" in answer.reason


def test_conversation_resolves_follow_ups_and_resets(assistant: Assistant) -> None:
    chat = assistant.chat()
    first = chat.ask("What did Pakistan's prime minister say?")
    assert "Imran Khan" in first.text
    follow = chat.ask("Where was he when he said it?")
    assert follow.resolved_question != follow.question
    assert "Imran Khan" in follow.resolved_question
    assert "Islamabad" in follow.text
    assert_citations_exact(assistant, follow)
    assert [t.question for t in chat.history] == [first.question, follow.question]
    chat.reset()
    assert chat.history == ()
    assert chat.context_terms("Where was he when he said it?") == []


def test_key_terms_and_matching() -> None:
    assert key_terms("What did Pakistan's prime minister say about the US?") == ["Pakistan", "US"]
    assert key_terms("Who is Hua Chunying?") == ["Hua", "Chunying"]
    assert term_found("Russia", "Russian officials said")
    assert term_found("China", "the Chinese embassy")
    assert term_found("US", "The United States’ Embassy")
    assert term_found("US", "the U.S. said")
    assert not term_found("Russia", "China and Pakistan")
    assert not term_found("UN", "unless")


def test_the_seed_question_with_no_quotable_sentence_is_an_abstention_that_says_why(assistant: Assistant) -> None:
    answer = assistant.ask("How many Taliban fighters entered Kabul?")
    assert answer.text.strip()
    assert answer.abstained and answer.reason and answer.reason in answer.text
    assert answer.to_dict()["reason"] == answer.reason
