"""Retrieval: dense and BM25 candidates, fused by reciprocal rank, then reranked.

Every stage can be switched off in ``Config`` so that it can be measured:
``retrieval`` is ``"hybrid"`` (both, fused by the library: ``PassageIndex.hybrid`` with llama-index's
``QueryFusionRetriever``, ``MilvusLibrary.hybrid`` in Milvus), ``"dense"`` or ``"bm25"``; ``rerank``
turns the cross-encoder pass over the fused candidates on or off. Questions about the
"latest" or "recent" news also rank candidates by date.

A question asked *as of* a day (``Filters.as_of``: the day a reader asks, or asked, it) is
answered as that reader would be: articles dated after it are left out, the news of the
weeks before it is searched on its own as well as the whole library (the two candidate
lists interleaved), and after the rerank newer articles gain a little score, halved every
``as_of_half_life_days`` of age. Old news still answers when it is the better match.
"""

from __future__ import annotations

import math
import re
import threading
import time
from collections import OrderedDict
from collections.abc import Callable
from datetime import date, timedelta
from itertools import zip_longest

import numpy as np

from qa.config import Config
from qa.index.library import Library
from qa.models import CrossEncoder, Embedder
from qa.options import Filters
from qa.pipeline.rerank import Reranker, ordered
from qa.text import parse_date
from qa.types import Hit, Retrieval

RRF_K = 60
SCORE_CACHE_SIZE = 20_000
VECTOR_CACHE_SIZE = 64
_RECENT = re.compile(
    r"\b(latest|newest|recent|recently|lately|currently|most recent|this (?:week|month|year)|today|so far)\b",
    re.IGNORECASE,
)


def asks_for_recent(question: str) -> bool:
    """True when the question asks for the latest or most recent news."""
    return _RECENT.search(question) is not None


class Retriever:
    """Finds the passages that answer a question, as configured."""

    def __init__(
        self,
        index: Library,
        config: Config,
        get_embedder: Callable[[], Embedder],
        get_cross_encoder: Callable[[], CrossEncoder],
    ) -> None:
        self.index = index
        self.config = config
        self._get_embedder = get_embedder
        self._reranker = Reranker(config, get_cross_encoder, lambda doc_id: index.heading(doc_id)[0])
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._vectors_lock = threading.Lock()

    def retrieve(self, query: str, top_k: int | None = None, filters: Filters | None = None) -> Retrieval:
        """Return the best ``top_k`` passages for ``query`` within ``filters``."""
        top_k = top_k or self.config.top_k
        started = time.perf_counter()
        doc_ids = None
        if filters is not None and filters.active:
            doc_ids = self.index.doc_ids_where(filters.admits)
            if not doc_ids:
                return Retrieval((), {"retrieve": 0.0})
        as_of = filters.as_of if filters is not None else None
        rerank = self.config.rerank
        recent = as_of is None and self.config.recency_boost > 0 and asks_for_recent(query)
        # What an answer reads from; a deeper search gets the same first candidates, then more.
        depth = max(self.config.top_k, self.config.rerank_candidates)
        candidates = self._gather(query, depth, doc_ids, as_of)
        if top_k > depth:
            seen = {h.passage.passage_id for h in candidates}
            candidates += [h for h in self._gather(query, top_k, doc_ids, as_of) if h.passage.passage_id not in seen]
        retrieved = time.perf_counter()
        timings = {"retrieve": round(retrieved - started, 4)}
        # A reranked passage ranks by its logit less rerank_rank_weight * ln(1 + its fused place):
        # the retrievers saw all of it, the cross-encoder only its window.
        weight = self.config.rerank_rank_weight
        handicap = {h.passage.passage_id: weight * math.log1p(i) for i, h in enumerate(candidates)} if rerank else {}
        if rerank and candidates:
            candidates = self._reranker.rerank(query, candidates, handicap)
            timings["rerank"] = round(time.perf_counter() - retrieved, 4)
        head = self.config.rerank_candidates if rerank else depth  # scored alike, so comparable
        if as_of is not None and rerank and self.config.as_of_boost > 0:
            candidates = self._favour_as_of(candidates[:head], as_of, handicap) + candidates[head:]
        if recent:
            candidates = self._favour_recent(candidates[:head], rerank, handicap) + candidates[head:]
        return Retrieval(tuple(candidates[:top_k]), timings)

    def _gather(self, query: str, wanted: int, doc_ids: list[str] | None, as_of: date | None) -> list[Hit]:
        if as_of is not None and doc_ids is not None:
            return self._as_of_candidates(query, wanted, doc_ids, as_of)
        return self._candidates(query, wanted, doc_ids)

    def _day(self, doc_id: str) -> date | None:
        return parse_date(self.index.heading(doc_id)[1])

    def _as_of_candidates(self, query: str, wanted: int, doc_ids: list[str], as_of: date) -> list[Hit]:
        """The candidates from the ``as_of_window_days`` before ``as_of`` interleaved with
        those from every article allowed (the recent one first at each rank)."""
        start = as_of - timedelta(days=self.config.as_of_window_days)
        recent_ids = [d for d in doc_ids if (day := self._day(d)) is not None and day >= start]
        everything = self._candidates(query, wanted, doc_ids)
        if not recent_ids or len(recent_ids) == len(doc_ids):
            return everything
        recent = self._candidates(query, wanted, recent_ids)
        merged: dict[str, Hit] = {}
        for pair in zip_longest(recent, everything):
            for hit in pair:
                if hit is not None:
                    merged.setdefault(hit.passage.passage_id, hit)
        return list(merged.values())

    def _favour_as_of(self, candidates: list[Hit], as_of: date, handicap: dict[str, float]) -> list[Hit]:
        """Add ``as_of_boost`` logits to reranked candidates dated ``as_of``, halved every
        ``as_of_half_life_days`` before it (undated articles gain nothing), and reorder."""
        boost, half_life = self.config.as_of_boost, max(self.config.as_of_half_life_days, 1e-6)
        scored = []
        for hit in candidates:
            day = self._day(hit.passage.doc_id)
            gain = 0.0 if day is None else boost * 0.5 ** (max((as_of - day).days, 0) / half_life)
            scored.append(Hit(hit.passage, hit.score + gain))
        return ordered(scored, handicap)

    def _candidates(self, query: str, wanted: int, doc_ids: list[str] | None) -> list[Hit]:
        mode = self.config.retrieval
        per_retriever = max(wanted, self.config.candidates)
        if mode == "dense":
            return self.index.search(self._query_vector(query), wanted, doc_ids)
        if mode == "bm25":
            return [self.index.hit(n) for n in self.index.bm25_search(query, wanted, doc_ids)]
        if mode != "hybrid":
            raise ValueError(f"unknown retrieval mode {mode!r}: use hybrid, dense or bm25")
        return self.index.hybrid(query, self._query_vector(query), per_retriever, wanted, doc_ids)

    def _query_vector(self, query: str) -> np.ndarray:
        """The question's embedding; the last few are kept (two candidate pools, a search after an answer)."""
        with self._vectors_lock:
            vector = self._vectors.get(query)
        if vector is None:
            vector = self._get_embedder().encode_queries([query])[0]
            with self._vectors_lock:
                self._vectors[query] = vector
                while len(self._vectors) > VECTOR_CACHE_SIZE:
                    self._vectors.popitem(last=False)
        return vector

    def _favour_recent(self, candidates: list[Hit], reranked: bool, handicap: dict[str, float]) -> list[Hit]:
        """Let newer articles move up among the candidates without overruling relevance.

        After the rerank, the newest article gains ``recency_boost`` logits, the oldest (and
        undated ones) none, those between in proportion to their date; without it, a
        newest-first order of the candidates is fused with the relevance order (reciprocal
        rank fusion)."""
        if len(candidates) < 2:
            return candidates
        days = [self._day(h.passage.doc_id) or date.min for h in candidates]
        by_date = sorted(range(len(candidates)), key=lambda i: days[i], reverse=True)
        boost = self.config.recency_boost
        if reranked:
            dated = [d.toordinal() for d in days if d != date.min]
            first, span = (min(dated), max(dated) - min(dated)) if dated else (0, 0)

            def newness(day: date) -> float:
                return 0.0 if day == date.min or span == 0 else (day.toordinal() - first) / span

            score = {i: candidates[i].score + boost * newness(days[i]) for i in range(len(candidates))}
            rank = {i: score[i] - handicap.get(candidates[i].passage.passage_id, 0.0) for i in score}
        else:
            date_rank = {i: rank for rank, i in enumerate(by_date)}
            score = rank = {i: 1 / (RRF_K + i) + 1 / (RRF_K + date_rank[i]) for i in range(len(candidates))}
        order = sorted(range(len(candidates)), key=lambda i: (-rank[i], -days[i].toordinal()))
        return [Hit(candidates[i].passage, score[i]) if reranked else candidates[i] for i in order]
