"""Retrieval: the question's embedding against the FAISS passage index."""

from __future__ import annotations

from collections.abc import Callable

from qa.index import Hit, PassageIndex
from qa.models import Embedder


class DenseRetriever:
    """Returns the passages whose embeddings are closest to the question's."""

    def __init__(self, index: PassageIndex, get_embedder: Callable[[], Embedder], top_k: int = 6) -> None:
        self.index = index
        self._get_embedder = get_embedder
        self.top_k = top_k

    def retrieve(self, query: str, top_k: int | None = None) -> list[Hit]:
        """Return up to ``top_k`` passages for ``query``, best first."""
        vector = self._get_embedder().encode([query])[0]
        return self.index.search(vector, top_k or self.top_k)
