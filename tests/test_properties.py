"""Invariants that hold for any input (hypothesis), not just the examples we thought of.

Model-free properties run many examples; those that run the real models run a few, with
no deadline, so the suite stays fast.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from qa import Answer, Assistant, Config
from qa.errors import InvalidQuestionError
from qa.ingest.annotate import Annotator
from qa.ingest.articles import load_articles, normalize_text
from qa.ingest.chunking import article_sentences, make_passages
from qa.models import Models
from qa.pipeline.generate import GenerativeReader
from qa.pipeline.reader import NO_ANSWER, Reading
from qa.types import Article

from .conftest import SEEDS

FAST = settings(max_examples=150, deadline=None)
WITH_MODELS = settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])

WORDS = ["Mr.", "Dr.", "U.S.", "China", "said", "on", "Monday", "the", "talks", "3.5", "e.g.", "(AFP)", "“yes”", "—"]
ENDS = [".", "!", "?", "...", ".”", ":", ";", ""]

# Sentence-like prose: words, sentence ends, spaces, line breaks and blank lines.
prose = st.lists(
    st.one_of(
        st.sampled_from(WORDS),
        st.text(alphabet=st.characters(categories=["L", "N"]), min_size=1, max_size=12),
        st.sampled_from(ENDS),
        st.sampled_from([" ", "  ", "\n", "\n\n", "\t", " \n "]),
    ),
    max_size=120,
).map(" ".join)
# Anything at all, control characters and odd whitespace included.
anything = st.text(max_size=300)
# For questions, also lone surrogates (undecodable command-line bytes) and invisible characters.
odd_chars = st.sampled_from(["\ud800", "\udcff", "\x00", "\x1b[31m", "\u202e", "\u200b", "\x85", "\ufeff", "\n"])
any_question = st.lists(st.one_of(st.text(max_size=40), odd_chars, st.sampled_from(WORDS)), max_size=80).map("".join)
any_text = st.one_of(prose, anything)


def _article(text: str) -> Article:
    return Article("doc", "Title", text)


def _covered_once(text: str, spans: list[tuple[int, int]]) -> None:
    """Every non-space character of ``text`` lies in exactly one span; spans do not overlap."""
    counts = [0] * len(text)
    for start, end in spans:
        for i in range(start, end):
            counts[i] += 1
    for i, ch in enumerate(text):
        assert counts[i] == 1 or (counts[i] == 0 and ch.isspace()), (i, ch, counts[i], text)


@FAST
@given(any_text)
def test_sentences_slice_the_text_exactly_and_cover_it_once(annotator: Annotator, raw: str) -> None:
    for text in (raw, normalize_text(raw)):
        article = _article(text)
        sentences = article_sentences(article, annotator.annotate([article])[0])
        assert [(s.start, s.end) for s in sentences] == annotator.sentences(text)
        for s in sentences:
            assert text[s.start : s.end] == s.text and s.text and s.text == s.text.strip()
        assert [(s.start, s.end) for s in sentences] == sorted((s.start, s.end) for s in sentences)
        _covered_once(text, [(s.start, s.end) for s in sentences])


@FAST
@given(any_text, st.integers(min_value=1, max_value=40), st.integers(min_value=0, max_value=3))
def test_passages_slice_exactly_and_cover_every_sentence_with_only_the_overlap_repeated(
    annotator: Annotator, raw: str, max_words: int, overlap: int
) -> None:
    article = _article(normalize_text(raw))
    sentences = article_sentences(article, annotator.annotate([article])[0])
    passages = make_passages(article, sentences, max_words, overlap)
    assert [p.position for p in passages] == list(range(len(passages)))
    for p in passages:
        assert article.text[p.start : p.end] == p.text
        assert (p.start, p.end) == (p.sentences[0].start, p.sentences[-1].end)
        assert len(p.text.split()) <= max_words or len(p.sentences) == 1
        assert all(s in sentences for s in p.sentences)
    seen = [s for p in passages for s in p.sentences]
    assert sorted(set(seen), key=lambda s: s.start) == sentences  # every sentence, in order
    for a, b in zip(passages, passages[1:], strict=False):
        shared = [s for s in b.sentences if s in a.sentences]
        assert len(shared) <= overlap
        assert shared == list(a.sentences[len(a.sentences) - len(shared) :]) == list(b.sentences[: len(shared)])
        assert b.sentences[-1].start >= a.end  # every passage brings a sentence of its own


@FAST
@given(any_text)
def test_normalising_is_idempotent_and_leaves_no_control_characters(raw: str) -> None:
    text = normalize_text(raw)
    assert normalize_text(text) == text
    assert not any(ord(c) < 32 and c != "\n" for c in text)
    text.encode("utf-8")  # no lone surrogates: everything downstream can write it


@settings(max_examples=60, deadline=None)
@given(st.binary(max_size=600), st.sampled_from([".txt", ".md", ".json", ".jsonl", ".html"]))
def test_any_bytes_in_any_supported_file_load_or_are_reported(data: bytes, suffix: str) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / f"file{suffix}"
        path.write_bytes(data)
        report = load_articles([tmp])
    assert report.articles or any(p.skipped for p in report.problems)
    for article in report.articles:
        assert article.text and article.text == normalize_text(article.text)


@settings(WITH_MODELS, max_examples=8)
@given(st.one_of(any_question, st.text(min_size=1_990, max_size=2_010)))
@example("What did China say about the Taliban? " * 40)  # more word pieces than the cross-encoder reads
@example("\x00\udcff\u202e \x1b[0m")
def test_ask_on_any_string_returns_an_answer_or_a_documented_error(assistant: Assistant, question: str) -> None:
    try:
        answer = assistant.ask(question)
    except InvalidQuestionError as exc:
        assert str(exc)
        return
    assert isinstance(answer, Answer)
    assert answer.abstained or answer.citations
    assert [c.number for c in answer.citations] == list(range(1, len(answer.citations) + 1))
    for c in answer.citations:
        assert assistant.article(c.doc_id).text[c.start : c.end] == c.quote


@WITH_MODELS
@given(prose.filter(lambda t: len(normalize_text(t).split()) >= 3), st.integers(min_value=0, max_value=6))
def test_citations_slice_their_quotes_on_any_article(config: Config, models: Models, text: str, pick: int) -> None:
    article = Article("any", "Any article", normalize_text(text))
    assistant = Assistant.build([article], config=config, models=models, show_progress=False)
    words = article.text.split()
    question = f"What about {' '.join(words[pick % len(words) : pick % len(words) + 4])}?"
    answer = assistant.ask(question)
    for c in answer.citations:
        assert article.text[c.start : c.end] == c.quote and c.doc_id == "any"
    for e in answer.evidence:
        assert article.text[e.start : e.end] == e.text


# ---- the answer contract: an answer quotes and cites, or an abstention says why ----------------

SEED_TEXT = (SEEDS / "2021-08-16-china-taliban.txt").read_text(encoding="utf-8")
POOL = [
    Article("seed", "China Taliban", normalize_text(SEED_TEXT), "2021-08-16"),
    Article(
        "harbour",
        "Harbour reopens",
        "The city harbour reopened on Friday after a storm. Mayor Ana Lopes said 40 boats had been damaged. "
        "“We will rebuild,” she said.",
        "2024-03-01",
    ),
    Article("rain", "Weather", "Heavy rain flooded the coastal roads overnight, and schools stayed closed."),
]
QUESTION_STARTS = ["What did", "Who said", "How many", "When did", "Where did", "Why did", "Which", "What about"]


def assert_answer_contract(answer: Answer, article: object) -> None:
    """An answer has text and at least one citation it refers to; an abstention says why."""
    assert answer.text.strip()
    if answer.abstained:
        assert answer.reason.strip() and answer.reason in answer.text and answer.text.startswith(NO_ANSWER)
    else:
        assert answer.citations and not answer.reason
        for c in answer.citations:
            assert f"[{c.number}]" in answer.text
    for c in answer.citations:
        assert article(c.doc_id).text[c.start : c.end] == c.quote  # type: ignore[operator]


@WITH_MODELS
@given(
    st.lists(st.one_of(st.sampled_from(POOL), prose.map(lambda t: Article("made-up", "Made up", normalize_text(t)))))
    .map(lambda arts: list({a.doc_id: a for a in arts if a.text.strip()}.values()))
    .filter(bool),
    st.sampled_from(QUESTION_STARTS),
    st.lists(st.one_of(st.sampled_from([*WORDS, "Taliban", "Kabul", "fighters", "Lopes"]), st.text(max_size=12))),
    st.sampled_from([None, 0.0, 0.3, 0.9]),
)
@example([POOL[0]], "How many", ["Taliban", "fighters", "entered", "Kabul"], None)  # once an empty non-answer
def test_every_answer_quotes_and_cites_or_abstains_saying_why(
    config: Config, models: Models, articles: list[Article], start: str, words: list[str], strictness: float | None
) -> None:
    assistant = Assistant.build(articles, config=config, models=models, show_progress=False)
    question = f"{start} {' '.join(words)}?"
    try:
        answer = assistant.ask(question, strictness=strictness)
    except InvalidQuestionError:
        return
    assert_answer_contract(answer, assistant.article)


@settings(FAST, max_examples=60)
@given(st.text(max_size=200), st.lists(st.integers(min_value=-2, max_value=12), max_size=4))
def test_a_verified_llm_answer_quotes_and_cites_whatever_the_draft(
    assistant: Assistant, draft_text: str, numbers: list[int]
) -> None:
    """Whatever an LLM writes, what the generative reader returns keeps the contract."""
    reading = _seed_reading(assistant)
    draft = draft_text + "".join(f" [{n}]" for n in numbers)
    generated = GenerativeReader(None, None, assistant.config, Annotator(assistant.models.nlp()).sentences).from_draft(
        "What did China say about the Taliban?", draft, reading, assistant.article
    )
    answer = Answer("q", generated.text, generated.citations, False, reader=generated.reader)
    assert_answer_contract(answer, assistant.article)


def _seed_reading(assistant: Assistant) -> Reading:
    answer = assistant.ask("What did China say about the Taliban?")
    assert not answer.abstained
    return Reading(answer.text, answer.citations, False, answer.evidence[0].score, (), answer.evidence)
