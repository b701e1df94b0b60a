"""The lexical half of the index: BM25 over passages (bm25s, English stemming, stopwords).

Saved beside the vectors as bm25s's own files (NumPy arrays without pickle, JSON) plus
``ids.json``, the passage id of each BM25 document.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import numpy as np

log = logging.getLogger(__name__)

IDS = "ids.json"


def _stemmer():  # noqa: ANN202 - PyStemmer has no type hints
    import Stemmer

    return Stemmer.Stemmer("english")


class BM25Index:
    """BM25 scores of passages for a query, optionally restricted to some passages."""

    def __init__(self, bm25, ids: Sequence[str]) -> None:  # noqa: ANN001 - bm25s.BM25
        self._bm25 = bm25
        self.ids = list(ids)
        self._stemmer = _stemmer()

    @classmethod
    def build(cls, texts: Sequence[str], ids: Sequence[str]) -> BM25Index:
        """Index ``texts`` (one per passage id)."""
        import bm25s

        if not texts:
            return cls(None, [])
        tokens = bm25s.tokenize(list(texts), stopwords="en", stemmer=_stemmer(), show_progress=False)
        bm25 = bm25s.BM25()
        bm25.index(tokens, show_progress=False)
        return cls(bm25, ids)

    def save(self, folder: Path) -> None:
        """Write the index into ``folder``."""
        folder.mkdir(parents=True, exist_ok=True)
        if self._bm25 is not None:
            self._bm25.save(str(folder))
        (folder / IDS).write_text(json.dumps(self.ids), encoding="utf-8")

    @classmethod
    def load(cls, folder: Path) -> BM25Index:
        """Read an index written by ``save``."""
        import bm25s

        ids = json.loads((folder / IDS).read_text(encoding="utf-8"))
        bm25 = bm25s.BM25.load(str(folder), mmap=False) if ids else None
        return cls(bm25, ids)

    def search(self, query: str, top_k: int, rows: np.ndarray | None = None) -> list[tuple[str, float]]:
        """Return up to ``top_k`` (passage id, score) pairs with a positive score, best first;
        ``rows`` (positions in ``ids``) restricts the search to those passages."""
        import bm25s

        if self._bm25 is None or top_k <= 0:
            return []
        tokens = bm25s.tokenize(query, stopwords="en", stemmer=self._stemmer, show_progress=False)
        if not tokens.vocab:
            return []
        mask = None
        if rows is not None:
            if not len(rows):
                return []
            mask = np.zeros(len(self.ids), dtype=np.float32)
            mask[rows] = 1.0
        k = min(top_k, len(self.ids))
        docs, scores = self._bm25.retrieve(tokens, k=k, weight_mask=mask, show_progress=False, n_threads=0)
        return [(self.ids[int(d)], float(s)) for d, s in zip(docs[0], scores[0], strict=True) if s > 0]
