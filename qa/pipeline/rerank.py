"""Reranking: the cross-encoder reads (question, title + the passage's window of sentences that shares
most words with the question) for the best fused candidates, and orders them by its logit less a
handicap for their fused place. Scores are cached per (question, passage), so a repeated question or
a search after an answer costs nothing.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

from qa.config import Config
from qa.models import CrossEncoder
from qa.text import content_stems
from qa.types import Hit, Passage

SCORE_CACHE_SIZE = 20_000


def window(passage: Passage, focus: set[str] | None, words: int) -> str:
    """Return the run of whole sentences of ``passage``, at most ``words`` long, that contains
    most of the ``focus`` stems (the earliest such run; the passage's start without ``focus``)."""
    if len(passage.text.split()) <= words or not passage.sentences:
        return passage.text
    sentences = passage.sentences
    lengths = [len(s.text.split()) for s in sentences]
    shared = [content_stems(s.text) & focus for s in sentences] if focus else [set() for _ in sentences]
    starts = range(len(sentences)) if focus else range(1)  # without a focus: the passage's start
    best, best_span = -1, (0, 1)
    for i in starts:
        covered: set[str] = set()
        total, j = 0, i
        while j < len(sentences) and (j == i or total + lengths[j] <= words):
            covered |= shared[j]
            total += lengths[j]
            j += 1
        if len(covered) > best:
            best, best_span = len(covered), (i, j)
    i, j = best_span
    text = passage.text[sentences[i].start - passage.start : sentences[j - 1].end - passage.start]
    return " ".join(text.split()[:words])


def ordered(hits: list[Hit], handicap: dict[str, float]) -> list[Hit]:
    """Best first: by score less the passage's handicap (none for a passage without one)."""
    return sorted(hits, key=lambda h: -(h.score - handicap.get(h.passage.passage_id, 0.0)))


class Reranker:
    """The cross-encoder pass over the fused candidates, with its score cache (shared by threads)."""

    def __init__(
        self, config: Config, get_cross_encoder: Callable[[], CrossEncoder], title: Callable[[str], str]
    ) -> None:
        self.config = config
        self._get_cross_encoder = get_cross_encoder
        self._title = title
        # Cross-encoder scores of recent (query, passage) pairs: a repeated question, or a
        # search after an answer, reranks without running the model again.
        self._scores: OrderedDict[tuple[str, str], float] = OrderedDict()
        self._scores_lock = threading.Lock()

    def rerank(self, query: str, candidates: list[Hit], handicap: dict[str, float]) -> list[Hit]:
        """Score the first ``rerank_candidates`` with the cross-encoder: (question, title + the
        passage's window of sentences that shares most words with the question, about
        ``rerank_max_tokens`` long). They are ordered by that logit less their ``handicap``
        and keep the logit as their score; the rest follow in fused order."""
        head, tail = candidates[: self.config.rerank_candidates], candidates[self.config.rerank_candidates :]
        variant = f"{self.config.rerank_max_tokens}{'f' if self.config.rerank_focus else ''}"
        keys = [(query, f"{h.passage.passage_id}@{variant}") for h in head]
        with self._scores_lock:
            known = {k: self._scores[k] for k in keys if k in self._scores}
        missing = [i for i, k in enumerate(keys) if k not in known]
        if missing:
            words = max(16, int((self.config.rerank_max_tokens - 32) / 1.4))  # room for question and title
            focus = content_stems(query) if self.config.rerank_focus else None
            texts = [f"{self._title(head[i].passage.doc_id)}. {window(head[i].passage, focus, words)}" for i in missing]
            fresh = self._get_cross_encoder().score(query, texts, max_length=self.config.rerank_max_tokens)
            with self._scores_lock:
                for i, score in zip(missing, fresh.tolist(), strict=True):
                    known[keys[i]] = self._scores[keys[i]] = score
                while len(self._scores) > SCORE_CACHE_SIZE:
                    self._scores.popitem(last=False)
        return ordered([Hit(h.passage, float(known[k])) for h, k in zip(head, keys, strict=True)], handicap) + tail
