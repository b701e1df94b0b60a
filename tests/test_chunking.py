"""Sentences and passages keep exact character offsets."""

from __future__ import annotations

from qa.ingest.articles import load_articles
from qa.ingest.chunking import make_passages, split_sentences
from qa.types import Article

from .conftest import SEEDS


def test_sentences_slice_the_article_exactly() -> None:
    article = load_articles([SEEDS]).articles[0]
    sentences = split_sentences(article)
    assert len(sentences) > 15
    for s in sentences:
        assert article.text[s.start : s.end] == s.text
        assert s.text == s.text.strip() and s.text
    assert sentences[0].text.endswith("AFP reported.")
    # a line break always ends a sentence: the subheading stands alone
    assert any(s.text == "Taliban takes over" for s in sentences)
    starts = [s.start for s in sentences]
    assert starts == sorted(starts)


def test_abbreviations_do_not_split_sentences() -> None:
    article = Article("x", "t", "Mr. Smith met Dr. Jones in the U.S. on Monday. They talked for an hour.")
    assert [s.text for s in split_sentences(article)] == [
        "Mr. Smith met Dr. Jones in the U.S. on Monday.",
        "They talked for an hour.",
    ]


def test_passages_respect_size_and_overlap() -> None:
    article = load_articles([SEEDS]).articles[0]
    passages = make_passages(article, max_words=60, overlap_sentences=1)
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
    assert covered == {s.start for s in split_sentences(article)}
    assert [p.position for p in passages] == list(range(len(passages)))
