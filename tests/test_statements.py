"""Questions about statements: reading them, finding a quotation, and who speaks for whom (no models)."""

from __future__ import annotations

from qa import Assistant, Conversation
from qa.pipeline.statements import _held, _words, speaks_for, statement_question, who_said
from qa.types import Name, Sentence, Speaker

from .conftest import assert_citations_exact


def test_questions_about_statements_are_recognised() -> None:
    assert statement_question("Who said “We welcome this”?").quote == "We welcome this"
    assert statement_question('who said "the shackles of slavery"').kind == "who-said"
    said = statement_question("What did Hua Chunying say about the Taliban?")
    assert (said.kind, said.who, said.topic) == ("said-what", "Hua Chunying", "the Taliban")
    assert statement_question("What did Pakistan's prime minister say?").who == "Pakistan's prime minister"
    for other in ("Who is the spokesperson?", "What did he say?", "Who said it?", "Where did Ghani go?"):
        assert statement_question(other) is None, other


def test_a_quotation_is_found_with_a_word_changed_but_never_scattered_over_a_sentence() -> None:
    sentence = _words("“We welcome this,” she said, adding that China respects the choice of the Afghan people.")
    assert _held(_words("we welcome this"), sentence) == 1.0
    assert _held(_words("China respected the choice of the Afghan people"), sentence) >= 0.8
    scattered = _words("We said the mayor would welcome visitors to this city, and that this was welcome.")
    assert _held(_words("we welcome this city"), scattered) < 0.8


def test_who_said_needs_the_quotation_and_a_speaker() -> None:
    hua = Speaker("Hua Chunying", "Chinese foreign ministry spokesperson", 10, 22, 40, 43, "pronoun")
    quoted = Sentence("d", 30, 60, "“We welcome this,” she said.", hua)
    unattributed = Sentence("d", 70, 90, "“Nobody knows,” the sign read on the wall of the hall.")
    assert who_said("We welcome this", [quoted]).found[0][1] is quoted
    assert "not say who" in who_said("Nobody knows", [unattributed]).reason
    assert "No article has that statement" in who_said("We condemn this", [quoted, unattributed]).reason


def test_a_spokesperson_ministry_or_embassy_speaks_for_its_country() -> None:
    china = [Name("China", "GPE")]
    assert speaks_for(Speaker("Hua Chunying", "Chinese foreign ministry spokesperson"), "China", china)
    assert speaks_for(Speaker("Chinese Embassy"), "China", china)
    assert not speaks_for(Speaker("Imran Khan", "Pakistan Prime Minister"), "China", china)
    pakistan = [Name("Pakistan", "GPE")]
    assert speaks_for(Speaker("Imran Khan", "Pakistan Prime Minister"), "Pakistan's prime minister", pakistan)
    assert not speaks_for(
        Speaker("Shah Mahmood Qureshi", "Pakistan foreign minister"), "Pakistan's prime minister", pakistan
    )
    assert speaks_for(Speaker("Hua Chunying", None), "Hua Chunying", [Name("Hua Chunying", "PERSON")])
    assert speaks_for(Speaker("Hua Chunying", None), "Hua", [Name("Hua", "PERSON")])


# ---- over the seed index (real models) ------------------------------------------------------------------
def test_who_said_a_quotation_names_its_speaker_resolved_from_she(assistant: Assistant) -> None:
    answer = assistant.ask("Who said “We welcome this”?")
    assert not answer.abstained
    assert_citations_exact(assistant, answer)
    first = answer.citations[0]
    assert "We welcome this" in first.quote and "she said" in first.quote
    assert first.speaker is not None and first.speaker.name == "Hua Chunying"
    # the short answer names her from the sentence of the article that does, cited too
    short = answer.short
    assert short is not None and short.text == "Hua Chunying" and short.kind == "person"
    naming = answer.citations[short.number - 1]
    assert short.number > 1 and naming.start <= short.start < short.end <= naming.end
    assert assistant.article(short.doc_id).text[short.start : short.end] == short.text
    assert answer.text.startswith(f"Hua Chunying [{short.number}]\n\nHua Chunying (Chinese foreign ministry")
    assert first.speaker.kind == "pronoun" and first.attribution.startswith("Hua Chunying")
    article = assistant.article(first.doc_id)
    assert article.text[first.speaker.start : first.speaker.end] == "Hua Chunying"


def test_what_did_a_person_say_gathers_her_statements_made_through_she_and_the_spokesperson(
    assistant: Assistant,
) -> None:
    answer = assistant.ask("What did Hua Chunying say?")
    assert not answer.abstained
    assert_citations_exact(assistant, answer)
    hers = [c for c in answer.citations if c.speaker is not None and c.speaker.name == "Hua Chunying"]
    assert len(hers) == len(answer.citations) >= 3
    assert {c.speaker.kind for c in hers} >= {"name", "pronoun", "role"}
    assert any("We welcome this" in c.quote for c in hers)
    assert any(c.quote.startswith("The spokesperson urged") for c in hers)
    for c in hers:  # the speaker is shown beside every quote whose sentence does not name her
        assert (f"{c.attribution}: {c.quote}" in answer.text) == (c.speaker.kind != "name")


def test_what_did_a_country_say_includes_who_speaks_for_it(assistant: Assistant) -> None:
    answer = assistant.ask("What did China say about the Taliban?")
    assert not answer.abstained
    speakers = {c.speaker.name for c in answer.citations if c.speaker is not None}
    assert "Hua Chunying" in speakers  # the foreign ministry's spokesperson speaks for China
    assert "Imran Khan" not in speakers


def test_who_said_a_statement_no_article_has_abstains_and_says_why(assistant: Assistant) -> None:
    for question in ("Who said “we will never recognise the Taliban government”?", "Who said 'the war is over'?"):
        answer = assistant.ask(question)
        assert answer.abstained, (question, answer.text)
        assert answer.reason == "No article has that statement."


def test_who_said_that_follows_up_with_the_speaker_of_the_cited_statement(assistant: Assistant) -> None:
    conversation = Conversation(assistant)
    conversation.ask("What did Hua Chunying say?")
    answer = conversation.ask("Who said that?")
    assert not answer.abstained
    assert answer.citations[0].speaker is not None and answer.citations[0].speaker.name == "Hua Chunying"
    assert answer.text.startswith("Hua Chunying")
