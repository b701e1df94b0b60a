"""Sentences (as the annotation stage splits them) and passages keep exact character offsets."""

from __future__ import annotations

from qa.ingest.annotate import Annotator
from qa.ingest.articles import load_articles
from qa.ingest.chunking import article_sentences, make_passages
from qa.types import Article, Sentence

from .conftest import SEEDS


def _sentences(annotator: Annotator, article: Article) -> list[Sentence]:
    return article_sentences(article, annotator.annotate([article])[0])


def test_sentences_slice_the_article_exactly(annotator: Annotator) -> None:
    article = load_articles([SEEDS]).articles[0]
    sentences = _sentences(annotator, article)
    assert len(sentences) > 15
    for s in sentences:
        assert article.text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
    assert sentences[0].text.endswith("AFP reported.")
    # a line break always ends a sentence: the subheading stands alone
    assert any(s.text == "Taliban takes over" for s in sentences)
    starts = [s.start for s in sentences]
    assert starts == sorted(starts)
    assert [(s.start, s.end) for s in sentences] == annotator.sentences(article.text)


def test_abbreviations_and_attributions_do_not_split_sentences(annotator: Annotator) -> None:
    text = (
        "Mr. Smith met Dr. Jones in the U.S. on Monday. They talked for an hour.\n"
        "“Will it pass?” she asked. Sen. Ted Cruz voted no. The vote was at 9 a.m. ET on Jan. 6."
    )
    assert [text[s:e] for s, e in annotator.sentences(text)] == [
        "Mr. Smith met Dr. Jones in the U.S. on Monday.",
        "They talked for an hour.",
        "“Will it pass?” she asked.",
        "Sen. Ted Cruz voted no.",
        "The vote was at 9 a.m. ET on Jan. 6.",
    ]


def test_passages_respect_size_and_overlap(annotator: Annotator) -> None:
    article = load_articles([SEEDS]).articles[0]
    sentences = _sentences(annotator, article)
    passages = make_passages(article, sentences, max_words=60, overlap_sentences=1)
    assert len(passages) > 3
    for p in passages:
        assert article.text[p.start : p.end] == p.text
        assert p.start == p.sentences[0].start and p.end == p.sentences[-1].end
        assert len(p.text.split()) <= 60 or len(p.sentences) == 1
    words = {s: len(s.text.split()) for p in passages for s in p.sentences}
    for a, b in zip(passages, passages[1:], strict=False):
        new = next(s for s in b.sentences if s.start > a.end)
        if len(a.sentences) > 1 and words[a.sentences[-1]] + words[new] <= 60:
            assert a.sentences[-1] == b.sentences[0]  # one sentence of overlap
        else:  # a lone sentence is not repeated, nor one that would crowd out every new sentence
            assert b.sentences[0] == new
    covered = {s.start for p in passages for s in p.sentences}
    assert covered == {s.start for s in sentences}
    assert [p.position for p in passages] == list(range(len(passages)))
