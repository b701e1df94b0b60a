"""The annotation stage (``qa.ingest.annotate``): who said what, sentence boundaries, and speed.

    .venv/bin/python -m benchmarks.speakers                 # all three (speed: 300 articles, median of 3)
    .venv/bin/python -m benchmarks.speakers --no-speed      # attribution and boundaries only (about a minute)
    .venv/bin/qa eval benchmarks/data/speech_questions.jsonl --index INDEX --out OUT   # the question set, then
    .venv/bin/python -m benchmarks.speakers --questions-report OUT/report.json        # scored per kind

* The question set, ``benchmarks/data/speech_questions.jsonl`` (139 questions, built from the labels):
  "Who said “…”?" about a labelled statement (85), "What did X say about …?" (26), and "Who said “…”?" about
  a statement no article makes (28, to abstain on), each with the day it was asked. Run it with ``qa eval``
  among the 1,663 RealtimeQA articles (the index ``benchmarks.evaluate_public`` caches); ``right`` is
  qa eval's own scoring (the answer holds the speaker's name, or a phrase of the statement; an abstention
  for the unanswerable ones), ``first speaker`` counts who-said answers whose first citation's resolved
  speaker is the right one.

* Attribution: ``benchmarks/data/speech_labels.jsonl`` holds 370 hand-labelled sentences of reported speech
  from 36 RealtimeQA articles (offsets and a SHA-1 of each sentence, no article text). The articles are read
  from ``../shared/evaldata/realtimeqa_news/corpus_small.jsonl``. Each label is matched to the annotated
  sentence that holds the label's midpoint; the predicted speaker is right when its name, normalised
  (case-folded, ’ as ', a leading "the" and a trailing 's dropped, spaces collapsed), equals the gold speaker
  or one of its aliases (the labels list a person's surname as an alias wherever it names them alone), or
  ends with one of them ("Dr. Mary T. Bassett" for "Mary T. Bassett"). Three splits, by article:
  ``dev`` (12 articles: the rules were written on them), ``dev-2`` (12 more, held out at first and measured
  once, 0.794; their errors were then read and the rules amended, so they count as tuning data now) and
  ``test`` (12 articles drawn at random afterwards, seed 18, among those with several quotations, and labelled
  by annotators who did not run the annotator): only ``test`` measures what the rules do on unseen articles.
  Errors of ``test`` are not printed unless asked for, so that reading them is a deliberate act.
* Boundaries: ``benchmarks/data/sentence_boundaries.jsonl`` (25 hand-labelled articles, 872 sentences)
  scored as the splitter study did: precision/recall/F1 of the boundaries inside lines, a boundary moved past
  spaces and punctuation-only pieces first.
* Speed: ``Annotator.annotate`` on 300 articles (random, seed 0) against today's pysbd splitting of the
  same articles (a ``pysbd.Segmenter(language="en", clean=False, char_span=True)`` per line), timed in
  turn; the ratio is the robust figure on a shared machine.

Prints tables and writes benchmarks/out/speakers.json. Skips with a message when the evaluation data is absent.
"""

from __future__ import annotations

import argparse
import json
import os
import random
import re
import statistics
import time
from collections import defaultdict
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from benchmarks import _common
from qa.config import DEFAULT_SPACY_MODEL
from qa.ingest.annotate import Annotator
from qa.ingest.articles import load_articles
from qa.models import load_spacy
from qa.types import Article, ArticleNotes

LABELS = _common.BENCHMARKS / "data" / "speech_labels.jsonl"
BOUNDARIES = _common.BENCHMARKS / "data" / "sentence_boundaries.jsonl"
QUESTIONS = _common.BENCHMARKS / "data" / "speech_questions.jsonl"
CORPUS = "realtimeqa_news/corpus_small.jsonl"
KINDS = ("name", "pronoun", "role", "document", "continuation")
SPLITS = ("dev", "dev-2", "test")
SPEED_SEED = 0
_LINE = re.compile(r"[^\n]+")
_PUNCT_ONLY = re.compile(r"[^\w\s“‘\"'(\[$£€]+(?=\s)")


# ---- attribution ----------------------------------------------------------------------------
def normalise(name: str) -> str:
    """A speaker name as compared: case-folded, ’ as ', no leading "the", no trailing 's, single spaces."""
    name = " ".join(name.replace("’", "'").casefold().split())
    return re.sub(r"'s$", "", re.sub(r"^the ", "", name))


def is_match(predicted: str | None, gold: str, aliases: Sequence[str]) -> bool:
    """True when ``predicted`` names the gold speaker (see the module docstring)."""
    if not predicted:
        return False
    guess, names = normalise(predicted), {normalise(n) for n in (gold, *aliases)}
    return guess in names or any(guess.endswith(" " + n) for n in names)


def attribution(labels: list[dict[str, Any]], articles: dict[str, Article], notes: dict[str, ArticleNotes]) -> dict:
    """Per label: the annotated sentence holding its midpoint, the predicted speaker, right or wrong."""
    rows = []
    for label in labels:
        middle = (label["start"] + label["end"]) // 2
        sentence = next((s for s in notes[label["doc_id"]].sentences if s.start <= middle < s.end), None)
        speaker = sentence.speaker if sentence else None
        rows.append(
            {
                "doc_id": label["doc_id"],
                "start": label["start"],
                "end": label["end"],
                "split": label["split"],
                "kind": label["kind"],
                "gold": label["speaker"],
                "predicted": speaker.name if speaker else None,
                "predicted_kind": speaker.kind if speaker else None,
                "sentence_matches": bool(sentence) and (sentence.start, sentence.end) == (label["start"], label["end"]),
                "correct": is_match(speaker.name if speaker else None, label["speaker"], label["aliases"]),
            }
        )
    return {"rows": rows, "table": accuracy_table(rows)}


def accuracy_table(rows: list[dict[str, Any]]) -> dict[str, dict[str, Any]]:
    """Accuracy and "no speaker" counts overall, per split, per kind, and for pronoun or role."""
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        for key in ("all", row["split"], row["kind"]):
            groups[key].append(row)
        if row["kind"] in ("pronoun", "role"):
            groups["pronoun or role"].append(row)
            groups[f"{row['split']}: pronoun or role"].append(row)
    order = ["all", *SPLITS, *KINDS, "pronoun or role", *(f"{s}: pronoun or role" for s in SPLITS)]
    return {
        key: {
            "n": len(groups[key]),
            "correct": sum(r["correct"] for r in groups[key]),
            "accuracy": round(sum(r["correct"] for r in groups[key]) / len(groups[key]), 3),
            "no_speaker": sum(r["predicted"] is None for r in groups[key]),
        }
        for key in order
        if groups[key]
    }


def print_attribution(result: dict, show_test: bool) -> None:
    """The accuracy table, then the errors of the tuning splits (and of test when asked)."""
    print(f"\n{'attribution':25s} {'n':>4s} {'correct':>7s} {'accuracy':>8s} {'no speaker':>10s}")
    for key, row in result["table"].items():
        print(f"{key:25s} {row['n']:4d} {row['correct']:7d} {row['accuracy']:8.3f} {row['no_speaker']:10d}")
    splits = SPLITS if show_test else SPLITS[:2]
    errors = [r for r in result["rows"] if not r["correct"] and r["split"] in splits]
    print(f"\nerrors ({', '.join(splits)}): {len(errors)}")
    for r in errors:
        where = f"{r['doc_id']} {r['start']:>5}-{r['end']:<5}"
        print(f"  {where} {r['kind']:12s} gold={r['gold']!r} predicted={r['predicted']!r}")


# ---- sentence boundaries ----------------------------------------------------------------------
def _canonical(text: str, position: int) -> int:
    """A boundary moved past spaces and punctuation-only pieces ("...", "•")."""
    while True:
        while position < len(text) and text[position].isspace():
            position += 1
        piece = _PUNCT_ONLY.match(text, position)
        if not piece or "\n" in text[position : piece.end()]:
            return position
        position = piece.end()


def boundaries(annotator: Annotator, articles: dict[str, Article], gold_path: Path) -> dict[str, Any]:
    """Precision, recall and F1 of the sentence boundaries inside lines against the hand-labelled gold."""
    tp = fp = fn = 0
    errors = []
    for line in gold_path.read_text(encoding="utf-8").splitlines():
        gold = json.loads(line)
        text = articles[gold["doc_id"]].text
        line_starts = {_canonical(text, m.start()) for m in _LINE.finditer(text) if m.group().strip()}
        expected = {_canonical(text, p) for p in gold["starts"]} - line_starts
        found = {_canonical(text, s) for s, _ in annotator.sentences(text)} - line_starts
        tp, fp, fn = tp + len(expected & found), fp + len(found - expected), fn + len(expected - found)
        for p in sorted(expected ^ found):
            where = (text[max(0, p - 50) : p] + "‖" + text[p : p + 30]).replace("\n", "⏎")
            errors.append(f"{'FP' if p in found else 'FN'} {gold['doc_id']}@{p}: {where}")
    precision, recall = tp / max(tp + fp, 1), tp / max(tp + fn, 1)
    f1 = 2 * precision * recall / max(precision + recall, 1e-9)
    return {"tp": tp, "fp": fp, "fn": fn, "precision": round(precision, 4), "recall": round(recall, 4),
            "f1": round(f1, 4), "errors": errors}  # fmt: skip


# ---- speed ------------------------------------------------------------------------------------
def pysbd_split(texts: Sequence[str]) -> int:
    """Split every line of ``texts`` with pysbd as indexing does today; return the number of sentences."""
    import pysbd

    segmenter = pysbd.Segmenter(language="en", clean=False, char_span=True)
    return sum(len(segmenter.segment(m.group())) for text in texts for m in _LINE.finditer(text) if m.group().strip())


def speed(annotator: Annotator, articles: Sequence[Article], reps: int) -> dict[str, Any]:
    """Median wall and CPU seconds of ``annotate`` and of pysbd splitting on the same articles, timed in turn."""
    words = sum(len(a.text.split()) for a in articles)
    texts = [a.text for a in articles]
    annotator.annotate(articles[:5])
    pysbd_split(texts[:5])
    runs: dict[str, list[tuple[float, float]]] = {"annotate": [], "pysbd": []}
    loads = []
    for rep in range(reps):
        for name, work in (("annotate", lambda: annotator.annotate(articles)), ("pysbd", lambda: pysbd_split(texts))):
            wall, cpu = time.perf_counter(), time.process_time()
            work()
            runs[name].append((time.perf_counter() - wall, time.process_time() - cpu))
            loads.append(os.getloadavg()[0])
            print(f"  rep {rep + 1} {name}: {runs[name][-1][0]:.1f} s wall, {runs[name][-1][1]:.1f} s CPU, "
                  f"load {loads[-1]:.2f}", flush=True)  # fmt: skip
    result: dict[str, Any] = {"articles": len(articles), "words": words, "reps": reps, "load_averages": loads}
    for name, times in runs.items():
        wall, cpu = statistics.median(t[0] for t in times), statistics.median(t[1] for t in times)
        result[name] = {"wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "words_per_s": round(words / wall),
                        "words_per_cpu_s": round(words / cpu)}  # fmt: skip
    result["annotate_vs_pysbd_wall"] = round(result["pysbd"]["wall_s"] / result["annotate"]["wall_s"], 3)
    result["annotate_vs_pysbd_cpu"] = round(result["pysbd"]["cpu_s"] / result["annotate"]["cpu_s"], 3)
    return result


def speed_sample(articles: Sequence[Article], count: int) -> list[Article]:
    """``count`` articles drawn at random (seed 0), in corpus order."""
    chosen = sorted(random.Random(SPEED_SEED).sample(range(len(articles)), min(count, len(articles))))
    return [articles[i] for i in chosen]


# ---- the question set, as `qa eval` answered it -------------------------------------------------------
def question_table(report: Path, questions: Path = QUESTIONS) -> dict[str, dict[str, Any]]:
    """Per kind of question, from the report.json that `qa eval` wrote for ``questions``: how many were
    answered right (the answer names the speaker, or quotes what the speaker said) or, for those no article
    answers, abstained; and for who-said questions how many name the right speaker as the first citation's
    resolved speaker (None where the report predates speakers)."""
    kinds = {q["id"]: q for q in map(json.loads, questions.read_text(encoding="utf-8").splitlines())}
    rows = json.loads(report.read_text(encoding="utf-8"))["rows"]
    groups: dict[str, list[dict[str, Any]]] = defaultdict(list)
    for row in rows:
        q = kinds[row["id"]]
        groups[q["kind"]].append(row)
        if q["kind"] == "who-said":
            within = "who-said: named in the sentence" if q["speaker_named_in_sentence"] else "who-said: not named"
            groups[within].append(row)
    table = {}
    for kind, members in groups.items():
        first = [r["citations"][0].get("speaker") if r.get("citations") else None for r in members]
        speakers = None
        has_speakers = any("speaker" in (r["citations"][0] if r.get("citations") else {}) for r in members)
        if kind.startswith("who-said") and kind != "who-said-unanswerable" and has_speakers:
            speakers = sum(
                not r["abstained"] and s is not None and is_match(s["name"], *_gold(kinds[r["id"]]))
                for r, s in zip(members, first, strict=True)
            )
        table[kind] = {
            "n": len(members),
            "correct": sum(bool(r.get("correct")) for r in members),
            "rate": round(sum(bool(r.get("correct")) for r in members) / len(members), 3),
            "abstained": sum(r["abstained"] for r in members),
            "first_speaker_right": speakers,
        }
    return dict(sorted(table.items()))


def _gold(question: dict[str, Any]) -> tuple[str, list[str]]:
    answers = question["answers"]
    return answers[0], answers[1:]


def print_questions(table: dict[str, dict[str, Any]]) -> None:
    """The question-set table."""
    print(f"\n{'questions':34s} {'n':>4s} {'right':>6s} {'rate':>6s} {'abstained':>9s} {'first speaker':>13s}")
    for kind, row in table.items():
        first = "" if row["first_speaker_right"] is None else str(row["first_speaker_right"])
        print(f"{kind:34s} {row['n']:4d} {row['correct']:6d} {row['rate']:6.3f} {row['abstained']:9d} {first:>13s}")


def main() -> None:
    """Measure attribution, boundaries and speed; print them and write the JSON."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--data", type=Path, default=_common.DATA, help="the evaluation data folder")
    parser.add_argument("--out", type=Path, default=_common.OUT / "speakers.json")
    parser.add_argument("--no-speed", action="store_true", help="skip the speed measurement")
    parser.add_argument("--speed-articles", type=int, default=300)
    parser.add_argument("--reps", type=int, default=3, help="timed repetitions (the median is reported)")
    parser.add_argument("--show-test-errors", action="store_true", help="also list the errors of the test split")
    parser.add_argument("--show-boundary-errors", action="store_true")
    parser.add_argument(
        "--questions-report",
        type=Path,
        metavar="REPORT_JSON",
        help="only score a `qa eval benchmarks/data/speech_questions.jsonl` report.json per kind of question",
    )
    args = parser.parse_args()
    if args.questions_report:
        print_questions(question_table(args.questions_report))
        return
    corpus = args.data / CORPUS
    if _common.absent(corpus, "the annotation benchmark"):
        return
    loaded = load_articles([corpus]).articles
    articles = {a.doc_id: a for a in loaded}
    annotator = Annotator(load_spacy(DEFAULT_SPACY_MODEL))
    labels = [json.loads(line) for line in LABELS.read_text(encoding="utf-8").splitlines()]
    labelled = [articles[d] for d in sorted({label["doc_id"] for label in labels})]
    notes = {n.doc_id: n for n in annotator.annotate(labelled)}
    results: dict[str, Any] = {"command": _common.command("speakers"), "cores": _common.cores()}
    results["attribution"] = attribution(labels, articles, notes)
    print_attribution(results["attribution"], args.show_test_errors)
    results["boundaries"] = boundaries(annotator, articles, BOUNDARIES)
    b = results["boundaries"]
    print(f"\nsentence boundaries inside lines: P {b['precision']:.3f} R {b['recall']:.3f} F1 {b['f1']:.3f} "
          f"(TP {b['tp']}, FP {b['fp']}, FN {b['fn']})")  # fmt: skip
    if args.show_boundary_errors:
        print("\n".join("  " + e for e in b["errors"]))
    if not args.no_speed:
        print(f"\nspeed on {args.speed_articles} articles, {args.reps} reps:")
        s = results["speed"] = speed(annotator, speed_sample(loaded, args.speed_articles), args.reps)
        print(f"annotate: {s['annotate']['words_per_s']:,} words/s ({s['annotate']['words_per_cpu_s']:,} per CPU s); "
              f"pysbd: {s['pysbd']['words_per_s']:,} words/s; annotate/pysbd speed ratio "
              f"{s['annotate_vs_pysbd_wall']:.2f} (CPU {s['annotate_vs_pysbd_cpu']:.2f}); "
              f"load {min(s['load_averages']):.1f}-{max(s['load_averages']):.1f} "
              f"on {_common.cores()} cores")  # fmt: skip
    _common.write_json(args.out, results)
    print(f"Wrote {args.out}")


if __name__ == "__main__":
    main()
