"""Who said what, on hand-written articles: the speaker of each sentence of reported speech, resolved
through pronouns, roles and documents to the name the article gives (real spaCy pipeline)."""

from __future__ import annotations

from qa.ingest.annotate import Annotator
from qa.types import Article, Speaker


def _speakers(annotator: Annotator, title: str, text: str) -> dict[str, Speaker | None]:
    """Each sentence of the article, mapped to its speaker."""
    article = Article("doc", title, text)
    notes = annotator.annotate([article])[0]
    return {text[s.start : s.end]: s.speaker for s in notes.sentences}


def _named_by(text: str, speaker: Speaker | None) -> tuple[str, str, str] | None:
    """(name, kind, the words of the article that name them) of ``speaker``."""
    if speaker is None:
        return None
    naming = text[speaker.start : speaker.end] if speaker.start is not None else ""
    return speaker.name, speaker.kind, naming


def test_a_pronoun_and_a_role_resolve_to_the_person_named_before(annotator: Annotator) -> None:
    text = (
        "Chinese foreign ministry spokesperson Hua Chunying spoke to reporters in Beijing on Monday.\n"
        "“We welcome this,” she said. The spokesperson urged all parties to keep calm."
    )
    found = _speakers(annotator, "China welcomes talks", text)
    assert found["Chinese foreign ministry spokesperson Hua Chunying spoke to reporters in Beijing on Monday."] is None
    assert _named_by(text, found["“We welcome this,” she said."]) == ("Hua Chunying", "pronoun", "Hua Chunying")
    role = found["The spokesperson urged all parties to keep calm."]
    assert _named_by(text, role) == ("Hua Chunying", "role", "Hua Chunying")
    assert text[role.mention_start : role.mention_end] == "The spokesperson"
    assert not role.named_in_sentence


def test_a_role_names_its_holder_and_the_holder_keeps_the_role(annotator: Annotator) -> None:
    text = (
        "Mayor Chokwe Lumumba said on Monday that the city would test every pipe. "
        "The mayor told reporters that nobody should worry."
    )
    first, second = _speakers(annotator, "Water", text).values()
    assert (first.name, first.role, first.kind) == ("Chokwe Lumumba", "Mayor", "name")
    assert first.named_in_sentence
    assert (second.name, second.role, second.kind) == ("Chokwe Lumumba", "Mayor", "role")
    assert second.label() == "Chokwe Lumumba (Mayor)"


def test_said_the_statement_is_the_body_that_issued_it(annotator: Annotator) -> None:
    text = (
        "The Chinese Embassy in London issued a statement on Tuesday about the visit.\n"
        "“The visit was a success,” said the statement."
    )
    speaker = _speakers(annotator, "Embassy replies", text)["“The visit was a success,” said the statement."]
    assert _named_by(text, speaker) == ("Chinese Embassy", "document", "Chinese Embassy")
    assert text[speaker.mention_start : speaker.mention_end] == "the statement"


def test_it_said_is_the_company(annotator: Annotator) -> None:
    text = "Acme Corp reported record profits on Thursday. It said demand for its rockets had doubled."
    speaker = _speakers(annotator, "Acme profits", text)["It said demand for its rockets had doubled."]
    assert _named_by(text, speaker) == ("Acme Corp", "pronoun", "Acme Corp")


def test_two_speakers_in_one_paragraph_keep_their_own_statements(annotator: Annotator) -> None:
    text = (
        "Prime Minister Boris Johnson met President Emmanuel Macron in Paris on Friday. "
        "“We agree on almost everything,” Johnson said. Macron said the talks had been “frank and useful”. "
        "“We disagree on fishing,” he added."
    )
    found = _speakers(annotator, "Talks", text)
    assert _named_by(text, found["“We agree on almost everything,” Johnson said."])[:2] == ("Boris Johnson", "name")
    said = found["Macron said the talks had been “frank and useful”."]
    assert _named_by(text, said)[:2] == ("Emmanuel Macron", "name")
    assert _named_by(text, found["“We disagree on fishing,” he added."])[:2] == ("Emmanuel Macron", "pronoun")


def test_a_quotation_over_several_sentences_keeps_one_speaker(annotator: Annotator) -> None:
    text = (
        "Mayor Chokwe Lumumba spoke at city hall on Monday. "
        "“The water is safe to drink. We have tested every pipe. Nobody should worry,” he said.\n"
        "“We will keep testing. Results come out every week.”"
    )
    found = _speakers(annotator, "Water", text)
    quoted = [s for sentence, s in found.items() if not sentence.startswith("Mayor")]
    assert len(quoted) == 5
    assert {s.name for s in quoted if s is not None} == {"Chokwe Lumumba"} and None not in quoted
    assert [s.kind for s in quoted] == ["continuation", "continuation", "pronoun", "continuation", "continuation"]


def test_a_speaker_named_only_in_the_headline(annotator: Annotator) -> None:
    text = "“I never liked the word retirement,” she wrote in the essay. She plans to play one more tournament."
    speaker = _speakers(annotator, "Serena Williams says goodbye to tennis", text)[
        "“I never liked the word retirement,” she wrote in the essay."
    ]
    assert (speaker.name, speaker.kind, speaker.start, speaker.end) == ("Serena Williams", "pronoun", None, None)


def test_unnamed_sources_and_plain_sentences_get_no_speaker(annotator: Annotator) -> None:
    text = "Officials said the road would reopen. A senior official said repairs were slow. The road is closed."
    assert set(_speakers(annotator, "Road", text).values()) == {None}


def test_annotations_slice_the_article_and_entities_have_exact_offsets(annotator: Annotator) -> None:
    text = "Hua Chunying spoke in Beijing on Monday.\n“We welcome this,” she said."
    notes = annotator.annotate([Article("doc", "China", text)])[0]
    entities = {text[e.start : e.end]: e.label for s in notes.sentences for e in s.entities}
    assert entities.get("Beijing") == "GPE" and entities.get("Monday") == "DATE"
    assert all(s.start <= e.start < e.end <= s.end for s in notes.sentences for e in s.entities)
    speaker = notes.sentences[-1].speaker
    assert text[speaker.start : speaker.end] == "Hua Chunying"
