"""Retrieval quality and speed per stage: BM25, dense, hybrid, hybrid + rerank.

    .venv/bin/python -m benchmarks.retrieval             # RealtimeQA (206 q) and SQuAD v1.1 (2,000 q)
    .venv/bin/python -m benchmarks.retrieval --quick     # 100 questions a set

Article-level recall@1/5/10 and MRR@10 on RealtimeQA (`queries_with_gold.jsonl` over
`corpus_small.jsonl`) and passage (paragraph) recall on SQuAD v1.1 dev, for each mode on
the same index, with p50/p95 latency per stage; plus indexing throughput on a fixed
300-article slice of RealtimeQA. Prints a table and writes benchmarks/out/retrieval.json.
Skips with a message when ../shared/evaldata is absent.
"""

from __future__ import annotations

import argparse
import json
import logging
import sys
import tempfile
import time
from pathlib import Path

from benchmarks import _common
from qa import Assistant, Config
from qa.eval.run import run
from qa.eval.sets import load_eval_set
from qa.models import Models

MODES = {
    "bm25": {"retrieval": "bm25", "rerank": False},
    "dense": {"retrieval": "dense", "rerank": False},
    "hybrid": {"retrieval": "hybrid", "rerank": False},
    # The naive rerank: 30 whole passages (up to 256 word pieces each), for comparison.
    "hybrid+rerank naive": {
        "retrieval": "hybrid",
        "rerank": True,
        "rerank_candidates": 30,
        "rerank_max_tokens": 256,
        "rerank_focus": False,
        "rerank_rank_weight": 0.0,
    },
    "hybrid+rerank": {"retrieval": "hybrid", "rerank": True},
}
# Modes run again asked as of the day each question was asked (RealtimeQA's question_date), when the set says.
DATED_MODES = ("hybrid", "hybrid+rerank")
AS_OF = ", as of question day"
SETS = {
    "realtimeqa": ("realtimeqa_news/queries_with_gold.jsonl", "realtimeqa_news/corpus_small.jsonl", None),
    "squad-v1.1": ("squad/dev-v1.1.json", None, 2000),
}
COLUMNS = [
    "retrieval_recall@1",
    "retrieval_recall@5",
    "retrieval_recall@10",
    "mrr@10",
    "latency_p50_retrieve",
    "latency_p95_retrieve",
    "latency_p50_rerank",
    "latency_p95_rerank",
    "latency_p50_total",
    "latency_p95_total",
]


def load_index(name: str, data: Path, out: Path, config: Config, models: Models):  # noqa: ANN201
    """The set's questions and a loaded (or freshly built, then cached) index."""
    questions, corpus, limit = SETS[name]
    eval_set = load_eval_set(data / questions).sample(limit, 0)
    articles = eval_set.corpus if corpus is None else _common.read_corpus(data / corpus, config)
    return eval_set, _common.corpus_assistant(name, articles, config, models, out)[0]


def throughput(data: Path, config: Config, models: Models, n: int = 300) -> dict[str, float]:
    """Passages indexed per second on the first ``n`` RealtimeQA articles (chunk, embed, FAISS, BM25)."""
    articles = _common.read_corpus(data / SETS["realtimeqa"][1], config)[:n]
    models.embedder().encode(["warm up"])
    with tempfile.TemporaryDirectory() as tmp:
        started = time.perf_counter()
        assistant = Assistant.build(articles, Path(tmp) / "index", config, models, show_progress=False)
        seconds = time.perf_counter() - started
    passages = assistant.summary().passages
    return {
        "articles": n,
        "passages": passages,
        "seconds": round(seconds, 1),
        "passages_per_second": round(passages / seconds, 1),
    }


def fmt(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if key.startswith("latency") else f"{100 * value:.1f}"


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(_common.DATA))
    parser.add_argument("--out", default=str(_common.OUT))
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--modes", nargs="*", default=list(MODES), choices=list(MODES))
    parser.add_argument("--quick", action="store_true", help="100 questions a set")
    parser.add_argument("--no-throughput", action="store_true", help="skip the indexing throughput run")
    parser.add_argument(
        "--update",
        action="store_true",
        help="replace only the rows run in the last results (out/retrieval.json) and rewrite RESULTS-retrieval.md",
    )
    args = parser.parse_args()
    logging.basicConfig(level=logging.WARNING)
    data, out = Path(args.data), Path(args.out)
    if _common.absent(data / "realtimeqa_news"):
        return 0
    config = Config.from_env()
    models = Models(config.embed_model, config.cross_encoder)
    results: dict[str, dict] = {}
    previous = out / "retrieval.json"
    if args.update and previous.is_file():
        results = json.loads(previous.read_text())
    for name in args.sets:
        eval_set, base = load_index(name, data, out, config, models)
        if args.quick:
            eval_set = eval_set.sample(100, 0)
        dated = any(q.as_of for q in eval_set.questions)
        runs = [(m, False) for m in args.modes] + [(m, True) for m in args.modes if dated and m in DATED_MODES]
        for mode, use_dates in runs:
            questions = eval_set
            if mode == "hybrid+rerank naive":
                if name != "realtimeqa":
                    continue  # ~1.5 s a question: measured on 100 RealtimeQA questions only
                questions = eval_set.sample(100, 0)
            assistant = Assistant.load(base.index_dir, config.with_changes(**MODES[mode]), models)
            label = mode + (AS_OF if use_dates else "")
            report = run(assistant, questions, retrieval_only=True, name=f"{name} {label}", use_dates=use_dates)
            results[f"{name} | {label}"] = {k: report.metrics.get(k) for k in COLUMNS} | {
                "questions": report.counts["questions"],
                "passages": base.summary().passages,
            }
            print(
                f"{name:<11} {label:<14} "
                + "  ".join(f"{k.split('_')[-1]}={fmt(k, report.metrics.get(k))}" for k in COLUMNS),
                flush=True,
            )
    if not args.no_throughput:
        results["indexing"] = throughput(data, config, models)
        print("indexing:", results["indexing"])
    _common.write_json(out / "retrieval.json", results)
    table = markdown(results, _common.command("retrieval", sys.argv[1:]))
    print(table)
    if not args.quick and (args.update or (set(args.sets) == set(SETS) and set(args.modes) == set(MODES))):
        (_common.BENCHMARKS / "RESULTS-retrieval.md").write_text(table)
    return 0


def markdown(results: dict[str, dict], command: str) -> str:
    """Return the results as a Markdown page."""
    lines = [
        "# Retrieval results",
        "",
        _common.produced_by(command) + " Recall and MRR in %, at article "
        "level (RealtimeQA: 206 questions over 1,663 articles; SQuAD v1.1 dev: 2,000 questions over 2,067 "
        "paragraphs). Every mode searches the same index; latency is per question, warm. The naive rerank "
        "(30 whole passages, up to 256 word pieces each) is measured on 100 of the RealtimeQA questions; "
        "the default rerank reads 12 query-focused windows of about 96 word pieces. Rows marked "
        f"'{AS_OF[2:]}' ask each RealtimeQA question as of the day it was asked (its `question_date`: "
        "`ask(as_of=...)`, later articles left out, the weeks before favoured); the others ignore that date. "
        "The default rerank orders by logit - 1.5 ln(1 + fused place); the naive one by the logit alone."
        + (
            " Rows this command did not run are those of the run before it (`out/retrieval.json`)."
            if "--update" in command
            else ""
        ),
        "",
        "| set | mode | " + " | ".join(COLUMNS) + " |",
        "|---|---|" + "---|" * len(COLUMNS),
    ]
    for key, row in results.items():
        if key != "indexing":
            name, mode = key.split(" | ")
            lines.append(f"| {name} | {mode} | " + " | ".join(fmt(k, row[k]) for k in COLUMNS) + " |")
    if "indexing" in results:
        ix = results["indexing"]
        lines += [
            "",
            f"Indexing throughput (chunk, embed, FAISS, BM25, persist) on {ix['articles']} RealtimeQA "
            f"articles: {ix['passages']} passages in {ix['seconds']} s = **{ix['passages_per_second']} "
            "passages/s**.",
        ]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    sys.exit(main())
