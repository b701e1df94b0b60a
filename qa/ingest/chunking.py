"""Sentences with exact offsets (as the annotation stage, ``qa.ingest.annotate``, split them) grouped into passages."""

from __future__ import annotations

from collections.abc import Sequence

from qa.types import Article, ArticleNotes, Passage, Sentence


def article_sentences(article: Article, notes: ArticleNotes) -> list[Sentence]:
    """The sentences of ``article`` as its annotation found them, each with its speaker and entities."""
    return [notes.sentence(article.text, n.start, n.end) for n in notes.sentences]


def make_passages(
    article: Article, sentences: Sequence[Sentence], max_words: int = 150, overlap_sentences: int = 1
) -> list[Passage]:
    """Group consecutive ``sentences`` of ``article`` into passages of at most ``max_words`` words.

    Consecutive passages share up to ``overlap_sentences`` sentences: fewer where the
    shared sentences and the next new one would not fit in ``max_words`` (so every passage
    brings a sentence of its own). A sentence longer than ``max_words`` is a passage of its own.
    """
    counts = [len(s.text.split()) for s in sentences]
    passages: list[Passage] = []
    i = 0
    while i < len(sentences):
        j, words = i, 0
        while j < len(sentences) and (j == i or words + counts[j] <= max_words):
            words += counts[j]
            j += 1
        group = tuple(sentences[i:j])
        start, end = group[0].start, group[-1].end
        passages.append(Passage(article.doc_id, len(passages), start, end, article.text[start:end], group))
        if j >= len(sentences):
            break
        shared = min(overlap_sentences, j - i - 1)
        while shared and sum(counts[j - shared : j + 1]) > max_words:
            shared -= 1
        i = j - shared
    return passages
