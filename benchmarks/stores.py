"""FAISS against Milvus as the passage vector store: same answers, same passages, what it costs.

    .venv/bin/python -m benchmarks.stores                       # starts Milvus on 127.0.0.1 itself
    .venv/bin/python -m benchmarks.stores --store milvus://db:19530 --articles 1000 20000

Two parts, each with the index built once per store:

- seed: the seed question set (tests/data/seed_questions.jsonl) over seeds/ with the real
  models: answers and citations identical to FAISS's, the dense top 10 identical, and the
  median ``ask`` and dense search per store.
- synthetic: indexes of synthetic articles (40 sentences, about 3 passages each) whose
  vectors are random unit vectors (no model: what is measured is the store), at each size of
  ``--articles``: time to build (embedding excluded), and for 200 random queries the share of
  identical top-10 lists, unfiltered and within a tenth of the articles, and median latency.

Without ``--store`` the ``milvus`` package's server (the [milvus] extra) is started on a free
port with a temporary data folder. Prints a table and writes benchmarks/out/stores.json.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import platform
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks import _common
from benchmarks._common import ROOT, RandomEmbedder, synthetic_articles
from qa import Assistant, Config
from qa.index.passage_index import PassageIndex
from qa.index.stores import drop_store
from qa.ingest.annotate import Annotator
from qa.models import Models, load_spacy

QUESTIONS = ROOT / "tests" / "data" / "seed_questions.jsonl"
QUERIES = 200


@contextmanager
def milvus_server() -> Iterator[str]:
    """Start the ``milvus`` package's server on a free port of 127.0.0.1; yields its ``milvus://`` URI."""
    import milvus

    data = Path(tempfile.mkdtemp(prefix="milvus-bench-"))
    server = milvus.MilvusServer()
    server.set_base_dir(str(data))
    server.listen_port = _common.free_port()
    try:
        server.start()
        yield f"milvus://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)


def _median_ms(run: Callable[[], Any], times: int = 1) -> tuple[float, list[Any]]:
    results, spent = [], []
    for _ in range(times):
        started = time.perf_counter()
        results.append(run())
        spent.append((time.perf_counter() - started) * 1000)
    return statistics.median(spent), results


def seed_part(uri: str, folder: Path) -> dict[str, Any]:
    """The seed question set through FAISS and through Milvus, with the real models."""
    config = Config()
    models = Models(config.embed_model, config.cross_encoder)
    seeds = [_common.SEEDS]
    faiss, milvus = (
        Assistant.from_articles(seeds, index_dir=folder / name, config=c, models=models, show_progress=False)
        for name, c in (("faiss", config), ("milvus", config.with_changes(store=uri)))
    )
    rows = [json.loads(line) for line in QUESTIONS.read_text(encoding="utf-8").splitlines() if line.strip()]
    same_answers = same_dense = 0
    ask_ms: dict[str, list[float]] = {"faiss": [], "milvus": []}
    dense_ms: dict[str, list[float]] = {"faiss": [], "milvus": []}
    for row in rows:
        answers, hits = {}, {}
        vector = models.embedder().encode_queries([row["question"]])[0]
        for name, assistant in (("faiss", faiss), ("milvus", milvus)):
            started = time.perf_counter()
            answers[name] = assistant.ask(row["question"])
            ask_ms[name].append((time.perf_counter() - started) * 1000)
            spent, found = _median_ms(lambda a=assistant, v=vector: a.index.search(v, 10), times=5)
            dense_ms[name].append(spent)
            hits[name] = [h.passage.passage_id for h in found[0]]
        a, b = answers["faiss"], answers["milvus"]
        cited = [[(c.doc_id, c.start, c.end) for c in x.citations] for x in (a, b)]
        same_answers += a.text == b.text and a.abstained == b.abstained and cited[0] == cited[1]
        same_dense += hits["faiss"] == hits["milvus"]
    drop_store(milvus.index.store)
    return {
        "questions": len(rows),
        "identical_answers": same_answers,
        "identical_dense_top10": same_dense,
        "ask_median_ms": {k: round(statistics.median(v), 1) for k, v in ask_ms.items()},
        "dense_search_median_ms": {k: round(statistics.median(v), 2) for k, v in dense_ms.items()},
    }


def synthetic_part(uri: str, count: int) -> dict[str, Any]:
    """Build time and top-10 agreement and latency, FAISS against Milvus, over ``count`` articles."""
    articles = synthetic_articles(count)
    indexes: dict[str, PassageIndex] = {}
    build_s: dict[str, float] = {}
    annotator = Annotator(load_spacy(Config().spacy_model))
    for name, store in (("faiss", "faiss"), ("milvus", uri)):
        config = Config(store=store)
        started = time.perf_counter()
        indexes[name] = PassageIndex.build(articles, config, RandomEmbedder(), annotator, show_progress=False)
        build_s[name] = round(time.perf_counter() - started, 2)
    queries = RandomEmbedder(seed=1).encode([""] * QUERIES)
    rng = np.random.default_rng(2)
    within = [a.doc_id for a in articles if rng.random() < 0.1]
    row: dict[str, Any] = {"articles": count, "passages": len(indexes["faiss"]), "build_s": build_s}
    for label, doc_ids in (("all", None), ("tenth", within)):
        found: dict[str, list[list[str]]] = {}
        for name, index in indexes.items():
            spent = []
            found[name] = []
            for vector in queries:
                started = time.perf_counter()
                hits = index.search(vector, 10, doc_ids)
                spent.append((time.perf_counter() - started) * 1000)
                found[name].append([h.passage.passage_id for h in hits])
            row[f"search_{label}_median_ms_{name}"] = round(statistics.median(spent), 2)
        row[f"identical_top10_{label}"] = sum(a == b for a, b in zip(found["faiss"], found["milvus"], strict=True))
    row["queries"] = QUERIES
    drop_store(indexes["milvus"].store)
    return row


def main() -> int:
    """Run both parts, print a table, write the JSON report."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--store", help="milvus://HOST:PORT of a running server (default: start one)")
    parser.add_argument("--articles", type=int, nargs="+", default=[1000, 5000], help="synthetic index sizes")
    parser.add_argument("--skip-seed", action="store_true", help="only the synthetic part")
    parser.add_argument("--out", type=Path, default=_common.OUT / "stores.json")
    args = parser.parse_args()
    with contextlib.nullcontext(args.store) if args.store else milvus_server() as uri:
        with tempfile.TemporaryDirectory() as tmp:
            seed = None if args.skip_seed else seed_part(uri, Path(tmp))
        synthetic = [synthetic_part(uri, n) for n in args.articles]
    if seed:
        print(
            f"seed set: {seed['identical_answers']}/{seed['questions']} identical answers and citations, "
            f"{seed['identical_dense_top10']}/{seed['questions']} identical dense top 10; median ask "
            f"FAISS {seed['ask_median_ms']['faiss']} ms, Milvus {seed['ask_median_ms']['milvus']} ms; dense search "
            f"FAISS {seed['dense_search_median_ms']['faiss']} ms, Milvus {seed['dense_search_median_ms']['milvus']} ms"
        )
    print(
        f"{'articles':>8} {'passages':>8} {'build FAISS s':>13} {'build Milvus s':>14} {'same top10':>10} "
        f"{'FAISS ms':>8} {'Milvus ms':>9} {'same (1/10)':>11} {'FAISS ms':>8} {'Milvus ms':>9}"
    )
    for r in synthetic:
        print(
            f"{r['articles']:>8} {r['passages']:>8} {r['build_s']['faiss']:>13} {r['build_s']['milvus']:>14} "
            f"{r['identical_top10_all']:>6}/{r['queries']} {r['search_all_median_ms_faiss']:>8} "
            f"{r['search_all_median_ms_milvus']:>9} {r['identical_top10_tenth']:>7}/{r['queries']} "
            f"{r['search_tenth_median_ms_faiss']:>8} {r['search_tenth_median_ms_milvus']:>9}"
        )
    report = {"seed": seed, "synthetic": synthetic, "machine": platform.platform(), "cpus": _common.cores()}
    _common.write_json(args.out, report)
    print(f"Wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
