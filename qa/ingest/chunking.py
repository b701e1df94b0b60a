"""Split articles into sentences with exact offsets, and sentences into passages."""

from __future__ import annotations

import re
from collections.abc import Iterator
from functools import lru_cache

from qa.types import Article, Passage, Sentence

_LINE = re.compile(r"[^\n]+")


@lru_cache(maxsize=1)
def _segmenter():  # noqa: ANN202 - pysbd has no type hints
    import pysbd

    return pysbd.Segmenter(language="en", clean=False)


def split_sentences(article: Article) -> list[Sentence]:
    """Return the sentences of an article; each slices ``article.text`` exactly.

    Lines are segmented one by one (a line break always ends a sentence, so headlines and
    subheadings stand alone); pysbd finds the boundaries inside a line.
    """
    text = article.text
    sentences: list[Sentence] = []
    for line in _LINE.finditer(text):
        for start, end in _sentence_spans(line.group(), line.start()):
            sentences.append(Sentence(article.doc_id, start, end, text[start:end]))
    return sentences


def _sentence_spans(line: str, offset: int) -> Iterator[tuple[int, int]]:
    """Yield (start, end) of the sentences of one line, located by search, stripped."""
    cursor = 0
    pieces = _segmenter().segment(line) if len(line.split()) > 3 else [line]
    for piece in pieces:
        piece = piece.strip()
        if not piece:
            continue
        found = line.find(piece, cursor)
        if found < 0:  # pysbd altered the text: give the rest of the line as one sentence
            rest = line[cursor:].strip()
            if rest:
                start = line.index(rest, cursor)
                yield offset + start, offset + start + len(rest)
            return
        cursor = found + len(piece)
        yield offset + found, offset + cursor
    rest = line[cursor:].strip()
    if rest:
        start = line.index(rest, cursor)
        yield offset + start, offset + start + len(rest)


def make_passages(article: Article, max_words: int = 150, overlap_sentences: int = 1) -> list[Passage]:
    """Group consecutive sentences into passages of at most ``max_words`` words.

    Consecutive passages share up to ``overlap_sentences`` sentences: fewer where the
    shared sentences and the next new one would not fit in ``max_words`` (so every passage
    brings a sentence of its own). A sentence longer than ``max_words`` is a passage of its own.
    """
    sentences = split_sentences(article)
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
