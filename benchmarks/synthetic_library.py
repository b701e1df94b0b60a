"""The synthetic libraries of ``benchmarks.library_scale``: their articles, and a build whose annotation is
composed from the annotation of the news articles they are made of.

Article i of a library of the N news articles of ``../shared/evaldata/realtimeqa_news/corpus.jsonl`` is a
dateline naming i, news article i mod N, and, as a last paragraph, the first two sentences of news article
(31 i + 7) mod N: every text is unique (the index skips exact duplicates) and reads like news.

Building a library annotates each of the N news articles once with the product's annotator (spaCy; cached in
``benchmarks/out/library_scale/corpus-notes.jsonl``), and gives article i the annotation of its parts, moved
to where they are in its text: the dateline joins the first sentence, the last paragraph's sentences keep
their entities and speakers (a speaker named outside those two sentences keeps the name, without the
offsets of its mention). A library of 50,000 articles is then built in minutes instead of the two and a half
hours that annotating its text would take. Everything else is the product's own code: chunking, BM25, FAISS,
the segments; the passage vectors come from a deterministic hashing embedder (``library_scale.HashModels``).
Articles added by the measurements are annotated and embedded for real.
"""

from __future__ import annotations

import logging
import re
from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import orjson
from tqdm.auto import tqdm

import qa.index.library as libraries
from qa import Article, Config
from qa.ingest.annotate import Annotator
from qa.types import ArticleNotes, SentenceNotes, Speaker

log = logging.getLogger(__name__)

BATCH = 2000  # articles added to the index at a time while building (their nodes are held until added)


def dateline(i: int, tag: str) -> str:
    return f"NEWSDESK WIRE ({tag} {i}) - "


def tail_span(notes: ArticleNotes | None, text: str) -> tuple[int, int]:
    """Where the first two sentences of a news article are (all of it when it has fewer)."""
    if notes is not None and notes.sentences:
        first = notes.sentences[:2]
        return first[0].start, first[-1].end
    found = [m.end() for m in re.finditer(r"[.!?](?=\s)", text)][:2]
    return 0, found[-1] if found else len(text)


def synthetic(i: int, corpus: Sequence[Article], notes: Sequence[ArticleNotes | None], tag: str = "library") -> Article:
    """Article ``i`` of a synthetic library (``tag`` "library") or of the articles added to one."""
    base, o = corpus[i % len(corpus)], (31 * i + 7) % len(corpus)
    start, end = tail_span(notes[o], corpus[o].text)
    text = f"{dateline(i, tag)}{base.text}\n\n{corpus[o].text[start:end]}"
    return Article(f"{tag}-{i:06d}", base.title, text, base.date, base.source)


def corpus_notes(corpus: Sequence[Article], nlp: Callable[[], Any], cache: Path) -> list[ArticleNotes]:
    """The annotation of every news article (read from ``cache``, made and written there when absent)."""
    if cache.is_file():
        notes = [ArticleNotes.from_json(orjson.loads(line)) for line in cache.read_bytes().splitlines()]
        if [n.doc_id for n in notes] == [a.doc_id for a in corpus]:
            return notes
    annotator = Annotator(nlp())
    notes = []
    for start in tqdm(range(0, len(corpus), 64), desc="Annotating the news articles", unit="batch"):
        notes += annotator.annotate(corpus[start : start + 64])
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_bytes(b"".join(orjson.dumps(n.to_json()) + b"\n" for n in notes))
    return notes


def _moved(note: SentenceNotes, by: int, lo: int, hi: int) -> SentenceNotes:
    """A sentence's annotation moved ``by`` characters; a speaker's mention outside [lo, hi) loses its offsets."""
    speaker = note.speaker
    if speaker is not None:
        speaker = _moved_speaker(speaker, by, lo, hi)
    entities = tuple(replace(e, start=e.start + by, end=e.end + by) for e in note.entities)
    return SentenceNotes(note.start + by, note.end + by, entities, speaker)


def _moved_speaker(speaker: Speaker, by: int, lo: int, hi: int) -> Speaker:
    def shift(a: int | None, b: int | None) -> tuple[int | None, int | None]:
        return (a + by, b + by) if a is not None and b is not None and lo <= a and b <= hi else (None, None)

    start, end = shift(speaker.start, speaker.end)
    mention_start, mention_end = shift(speaker.mention_start, speaker.mention_end)
    return replace(speaker, start=start, end=end, mention_start=mention_start, mention_end=mention_end)


class ComposedAnnotator:
    """The annotation of synthetic article i, made from those of the news articles it is made of."""

    def __init__(self, corpus: Sequence[Article], notes: Sequence[ArticleNotes], tag: str = "library") -> None:
        self.corpus, self.notes, self.tag = corpus, notes, tag

    def annotate(self, articles: Sequence[Article], show_progress: bool = False) -> list[ArticleNotes]:
        return [self.one(a) for a in articles]

    def one(self, article: Article) -> ArticleNotes:
        i = int(article.doc_id.rsplit("-", 1)[1])
        n = len(self.corpus)
        base, o = self.notes[i % n], (31 * i + 7) % n
        head = len(dateline(i, self.tag))
        body_end = head + len(self.corpus[i % n].text)
        sentences = [_moved(s, head, 0, body_end) for s in base.sentences]
        if sentences:  # the dateline opens the first sentence
            sentences[0] = replace(sentences[0], start=0)
        start, end = tail_span(self.notes[o], self.corpus[o].text)
        at = body_end + 2
        sentences += [_moved(s, at - start, start, end) for s in self.notes[o].sentences[:2]]
        composed = ArticleNotes(article.doc_id, tuple(sentences))
        for s in composed.sentences:
            if not (0 <= s.start < s.end <= len(article.text)) or not article.text[s.start : s.end].strip():
                raise ValueError(f"composed sentence {s.start}:{s.end} of {article.doc_id} is not in its text")
        return composed


def build(articles: Sequence[Article], folder: Path, config: Config, embedder: Any, annotator: Any) -> int:
    """Build the index of ``articles`` in ``folder`` through the product's index (in batches of ``BATCH``,
    each added as ``qa index`` adds articles), where ``config.store`` says; returns the passage count."""
    index = libraries.build(articles[:BATCH], config, embedder, annotator, show_progress=False)
    for start in tqdm(range(BATCH, len(articles), BATCH), desc="Building", unit="batch"):
        index.update(articles[start : start + BATCH], config, embedder, annotator, show_progress=False)
    index.persist(folder)
    return len(index)
