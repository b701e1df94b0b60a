"""Run the evaluation on the seed set and the public sets; write benchmarks/RESULTS.md.

    .venv/bin/python -m benchmarks.evaluate_public            # everything (about 45 min on 2 cores)
    .venv/bin/python -m benchmarks.evaluate_public --quick    # 100 questions a set
    .venv/bin/python -m benchmarks.evaluate_public --sets seed squad-v1.1

The public data is read from ../shared/evaldata (or --data); sets whose files are absent
are skipped with a message. Indexes are cached in benchmarks/out/indexes/ and reused when
their articles and settings match; reports go to benchmarks/out/<set>/.
"""

from __future__ import annotations

import argparse
import logging
import sys
from dataclasses import dataclass
from pathlib import Path

from benchmarks import _common
from benchmarks._common import BENCHMARKS, ROOT
from qa import Config
from qa.eval.run import Report, run
from qa.eval.sets import load_eval_set
from qa.models import Models


@dataclass(frozen=True)
class Spec:
    """One benchmark set: its questions, its corpus and how many questions to draw."""

    name: str
    questions: str  # relative to the data folder, or to the repository for the seed set
    corpus: str | None  # None: the set carries its own paragraphs
    limit: int | None
    note: str
    in_repo: bool = False


SPECS = [
    Spec(
        "seed",
        "tests/data/seed_questions.jsonl",
        "seeds",
        None,
        "24 questions on the seed article, 6 unanswerable",
        in_repo=True,
    ),
    Spec("squad-v1.1", "squad/dev-v1.1.json", None, 2000, "open-book over all 2,067 dev paragraphs"),
    Spec("squad-v2.0", "squad/dev-v2.0.json", None, 2000, "open-book over 1,204 dev paragraphs; ~half unanswerable"),
    Spec(
        "realtimeqa",
        "realtimeqa_news/queries_with_gold.jsonl",
        "realtimeqa_news/corpus_small.jsonl",
        None,
        "206 news-quiz questions over 1,663 articles; answers = answer_text",
    ),
    Spec(
        "hotpotqa",
        "hotpotqa/dev_distractor_500.jsonl",
        None,
        None,
        "500 two-passage questions over the pooled 10-paragraph contexts",
    ),
]
HEADLINE = [
    "accuracy",
    "mc_accuracy",
    "answer_recall",
    "evidence_hit@1",
    "evidence_hit@5",
    "retrieval_recall@1",
    "retrieval_recall@5",
    "retrieval_recall@10",
    "mrr@10",
    "citation_precision",
    "citation_recall",
    "abstain_precision",
    "abstain_recall",
    "abstain_f1",
    "answer_rate",
    "exact_match",
    "f1",
    "short_answer_rate",
    "latency_p50_total",
    "latency_p95_total",
    "latency_p50_retrieve",
    "latency_p95_retrieve",
    "latency_p50_rerank",
    "latency_p95_rerank",
    "latency_p50_read",
    "latency_p95_read",
]


def run_spec(spec: Spec, data: Path, out: Path, config: Config, models: Models, limit: int | None, seed: int) -> Report:
    """Build or reuse the set's index, run its questions, write its report."""
    questions_path = (ROOT if spec.in_repo else data) / spec.questions
    eval_set = load_eval_set(questions_path).sample(limit, seed)
    if spec.corpus is None:
        articles = eval_set.corpus
    else:
        articles = _common.read_corpus((ROOT if spec.in_repo else data) / spec.corpus, config)
    assistant, build_seconds = _common.corpus_assistant(spec.name, articles, config, models, out)
    report = run(assistant, eval_set, name=spec.name)
    report.meta.update(
        questions=str(questions_path), limit=limit, seed=seed, note=spec.note, index_build_seconds=build_seconds
    )
    report.write(out / spec.name)
    return report


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    return f"{value * 1000:.0f} ms" if key.startswith("latency") else f"{value:.3f}"


def _configuration(config: Config) -> str:
    """One paragraph saying what pipeline produced the figures."""
    rerank = (
        f"the best {config.rerank_candidates} reranked by the cross-encoder (each passage's "
        + ("question-focused window" if config.rerank_focus else "start")
        + f" of about {config.rerank_max_tokens} word pieces)"
        if config.rerank
        else "no rerank stage (its latency is n/a)"
    )
    return (
        f"Configuration: {config.retrieval} retrieval ({config.embed_model} in FAISS"
        + (" + BM25, reciprocal rank fusion" if config.retrieval == "hybrid" else "")
        + f", {config.candidates} candidates each), {rerank}; the sentences of the best {config.top_k} "
        f"passages (<= {config.chunk_words} words) scored by the cross-encoder ({config.cross_encoder}) and "
        "ordered by the answer-sentence scorer (qa/pipeline/sentence_scorer.py); "
        "abstain when the calibrated probability that the evidence answers (qa/pipeline/abstain.py) is below the "
        f"strictness ({'shipped default' if config.strictness is None else config.strictness}). "
        "EM/F1 are those of the short answers (Answer.short), over the questions that got one."
    )


def results_markdown(reports: list[Report], command: str) -> str:
    """Return RESULTS.md: one column per set, one row per metric, with the command."""
    lines = [
        "# Evaluation results",
        "",
        _common.produced_by(command) + " Metric definitions: README, section Evaluation.",
        "",
        "| set | questions | answerable | unanswerable | articles | passages | index build (s) | note |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in reports:
        c, m = r.counts, r.meta
        lines.append(
            f"| {r.name} | {c['questions']} | {c['answerable']} | {c['unanswerable']} | {m['articles']} | "
            f"{m['passages']} | {m.get('index_build_seconds') or 'cached'} | {m.get('note', '')} |"
        )
    lines += ["", "| metric | " + " | ".join(r.name for r in reports) + " |", "|---|" + "---|" * len(reports)]
    for key in HEADLINE:
        lines.append(f"| {key} | " + " | ".join(_fmt(key, r.metrics.get(key)) for r in reports) + " |")
    lines += [
        "",
        _configuration(Config()),
        "",
        "Per-question rows: `benchmarks/out/<set>/report.json` (not committed).",
        "",
        "Other results: retrieval per stage `RESULTS-retrieval.md` (`python -m benchmarks.retrieval`), load "
        "and sessions `RESULTS-load.md` (`python -m benchmarks.load`), generative answers `RESULTS-generative.md` "
        "(`python -m benchmarks.generative`), index integrity `python -m benchmarks.index_integrity`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> int:
    """Run the selected sets and write RESULTS.md (unless --no-write)."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", default=str(_common.DATA), help="evaluation data folder")
    parser.add_argument("--out", default=str(_common.OUT), help="reports and cached indexes")
    parser.add_argument("--sets", nargs="*", default=[s.name for s in SPECS], choices=[s.name for s in SPECS])
    parser.add_argument("--quick", action="store_true", help="100 questions a set")
    parser.add_argument("--seed", type=int, default=0, help="seed of the question draw (default 0)")
    parser.add_argument("--results", default=str(BENCHMARKS / "RESULTS.md"), help="file to write")
    parser.add_argument("--no-write", action="store_true", help="print only; leave RESULTS.md alone")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data, out = Path(args.data), Path(args.out)
    config = Config.from_env()
    models = Models(config.embed_model, config.cross_encoder)
    reports = []
    for spec in (s for s in SPECS if s.name in args.sets):
        if not spec.in_repo and _common.absent(data / spec.questions, spec.name):
            continue
        limit = 100 if args.quick else spec.limit
        report = run_spec(spec, data, out, config, models, limit, args.seed)
        print(report.table(), flush=True)
        reports.append(report)
    if not reports:
        print("nothing evaluated")
        return 0
    summary = {r.name: {"counts": r.counts, "metrics": r.metrics, "meta": r.meta} for r in reports}
    _common.write_json(out / "summary.json", summary)
    if not args.no_write:
        options = ["--quick"] if args.quick else []
        if set(args.sets) != {s.name for s in SPECS}:
            options += ["--sets", *args.sets]
        _common.write_page(Path(args.results), results_markdown(reports, _common.command("evaluate_public", options)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
