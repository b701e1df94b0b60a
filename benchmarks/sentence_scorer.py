"""The answer-sentence scorer (qa/pipeline/sentence_scorer.py): collect, fit, measure.

    .venv/bin/python -m benchmarks.sentence_scorer collect   # the reader's sentences and their features
    .venv/bin/python -m benchmarks.sentence_scorer fit       # qa/pipeline/sentence_scorer.json from them
    .venv/bin/python -m benchmarks.sentence_scorer report    # evidence hit@1, before and after, held out
    .venv/bin/python -m benchmarks.sentence_scorer compare --set realtimeqa   # qa eval figures, before/after
    .venv/bin/python -m benchmarks.sentence_scorer shorts --per-half 1500     # short answers, right sentence given

Data (../shared/evaldata, never copied into the repository): SQuAD v1.1 and v2.0 dev, open-book over
all the paragraphs of each file (the indexes ``benchmarks.evaluate_public`` builds). One rule for
everything fitted on SQuAD: the model is fitted only on questions of the first half of each file's
articles, in file order (v1.1 ``data[:24]``, v2.0 ``data[:17]``), and reported on the second half.

``collect`` asks retrieval and the reader's first steps (``SentenceReader.candidates``: the sentences
read, their cross-encoder logits and features) for a seeded sample of the answerable questions of both
halves; a sentence is labelled an answer when it holds a gold answer. ``fit`` fits a logistic
regression (scikit-learn, L2, C=1, standardised features) on the first halves and writes the parameter
file, and the numbers it was fitted on (no text) to benchmarks/sentence_scorer/features.csv, from
which ``fit_from_csv`` reproduces the file exactly. ``report`` compares, on the held-out halves, the
sentence the cross-encoder ranks first with the one the scorer ranks first.
"""

from __future__ import annotations

import argparse
import csv
import json
import logging
import random
from pathlib import Path
from typing import Any

from benchmarks import _common
from benchmarks._common import BENCHMARKS, DATA, OUT, ROOT
from qa import Config
from qa.eval.run import contains_any
from qa.eval.sets import load_eval_set
from qa.models import Models
from qa.pipeline.question import question_names
from qa.pipeline.reader import SentenceReader
from qa.pipeline.sentence_scorer import FEATURES, PARAMETERS, SentenceScorer

SETS = {"v1.1": ("squad/dev-v1.1.json", 24), "v2.0": ("squad/dev-v2.0.json", 17)}  # file, articles fitted on
RAW = OUT / "sentence_scorer"
FEATURES_CSV = BENCHMARKS / "sentence_scorer" / "features.csv"
MODEL_FILE = ROOT / "qa" / "pipeline" / PARAMETERS
KEPT = 24  # sentences kept per question for fitting: the best by logit (the rest are almost never answers)
SEED = 0
L2 = 1.0  # the conditional logit's penalty on the standardised weights
# The inputs the shipped model reads: the logit and the answer kind. Richer sets were fitted the same way and
# measured by evidence hit@1 (SQuAD held-out halves; RealtimeQA as of the question day, its articles split
# in two by a hash of the gold article's id, A and B), against the cross-encoder's order (0.816; 0.468, 0.463):
#   all 13 inputs 0.828; 0.432, 0.400 (the passage's score, place and words describe SQuAD's one-paragraph
#   articles, not news); the sentence's own 9 (no passage, no position) 0.820; 0.468, 0.400; these 3: 0.816;
#   0.468, 0.463. None beats the cross-encoder on news, so the shipped model is the one that costs nothing there.
USED = ("logit", "type_present", "type_missing")


def halves(path: Path, first: int) -> tuple[set[str], set[str]]:
    """The titles of the articles of the first ``first`` entries of a SQuAD file, and of the rest."""
    data = json.loads(path.read_text(encoding="utf-8"))["data"]
    titles = [entry["title"].replace("_", " ") for entry in data]
    return set(titles[:first]), set(titles[first:])


def collect(per_half: int) -> None:
    """Record the reader's sentences and features for ``per_half`` questions of each half of each file."""
    config = Config.from_env()
    models = Models.of(config)
    for version, (name, first) in SETS.items():
        path = DATA / name
        eval_set = load_eval_set(path)
        fitted, held = halves(path, first)
        title_of = {a.doc_id: a.title for a in eval_set.corpus or ()}
        assistant = _common.corpus_assistant(f"squad-{version}", list(eval_set.corpus or ()), config, models)[0]
        reader = SentenceReader(models.cross_encoder(), assistant.config)
        for half, titles in (("fit", fitted), ("held-out", held)):
            pool = [q for q in eval_set.questions if q.answerable and title_of[q.gold_doc_ids[0]] in titles]
            chosen = random.Random(SEED).sample(pool, min(per_half, len(pool)))
            rows = []
            for i, q in enumerate(chosen):
                hits = assistant.retrieve(q.question, top_k=assistant.config.top_k).hits
                terms = question_names(models.nlp(), q.question)
                located, logits, found = reader.candidates(q.question, hits, assistant.article, terms)
                rows.append(
                    {
                        "id": q.id,
                        "labels": [int(contains_any(x.sentence.text, q.answers)) for x in located],
                        "logits": logits,
                        "features": [f.vector() for f in found],
                    }
                )
                if (i + 1) % 100 == 0:
                    logging.info("%s %s: %d of %d", version, half, i + 1, len(chosen))
            out = RAW / f"{version}-{half}.jsonl"
            out.parent.mkdir(parents=True, exist_ok=True)
            out.write_text("".join(json.dumps(r) + "\n" for r in rows), encoding="utf-8")
            print(f"{out.relative_to(ROOT)}: {len(rows)} questions")


def _rows(half: str) -> list[dict[str, Any]]:
    return [json.loads(line) for v in SETS for line in (RAW / f"{v}-{half}.jsonl").read_text().splitlines()]


def write_csv(rows: list[dict[str, Any]]) -> None:
    """The fitting numbers: per question its ``KEPT`` best sentences by logit, label and features."""
    FEATURES_CSV.parent.mkdir(parents=True, exist_ok=True)
    with FEATURES_CSV.open("w", newline="", encoding="utf-8") as f:
        writer = csv.writer(f)
        writer.writerow(["question", "label", *FEATURES])
        for n, row in enumerate(rows):
            order = sorted(range(len(row["logits"])), key=lambda i: -row["logits"][i])[:KEPT]
            for i in order:
                writer.writerow([n, row["labels"][i], *(f"{x:.4f}" for x in row["features"][i])])


def fit_from_csv(path: Path = FEATURES_CSV) -> dict[str, Any]:
    """The parameter file's content, fitted on ``path``; deterministic.

    The weights are those of a conditional logit (a softmax over each question's sentences, L2 penalty
    ``L2``), which rewards ranking an answer sentence first, as the reader uses the scores; a pointwise
    logistic regression did worse than the cross-encoder's logit alone. Then one logistic regression of
    the label on that score (scikit-learn, C=1) turns it into a probability."""
    import numpy as np
    from scipy.optimize import minimize
    from sklearn.linear_model import LogisticRegression

    with path.open(encoding="utf-8") as f:
        rows = list(csv.DictReader(f))
    x = np.array([[float(r[name]) for name in USED] for r in rows])
    y = np.array([int(r["label"]) for r in rows])
    question = np.array([int(r["question"]) for r in rows])
    mean, scale = x.mean(axis=0), x.std(axis=0)
    scale[scale == 0] = 1.0
    z = (x - mean) / scale
    groups = [g for q in np.unique(question) if 0 < y[g := question == q].sum() < g.sum()]

    def loss(w: Any) -> tuple[float, Any]:
        total, grad = L2 * float(w @ w), 2 * L2 * w
        for g in groups:
            s = z[g] @ w
            p = np.exp(s - s.max())
            p /= p.sum()
            right = p * y[g]
            total -= float(np.log(right.sum()))
            grad = grad - z[g].T @ (right / right.sum() - p)
        return total, grad

    start = np.zeros(len(USED))
    start[USED.index("logit")] = 1.0
    weights = minimize(loss, start, jac=True, method="L-BFGS-B").x
    platt = LogisticRegression(C=1.0).fit((z @ weights).reshape(-1, 1), y)
    slope, intercept = float(platt.coef_[0][0]), float(platt.intercept_[0])
    return {
        "features": list(USED),
        "mean": [round(float(v), 6) for v in mean],
        "scale": [round(float(v), 6) for v in scale],
        "coef": [round(float(v) * slope, 6) for v in weights],
        "intercept": round(intercept, 6),
        "trained_on": f"SQuAD v1.1 dev data[:24] and v2.0 dev data[:17]: {len(set(question.tolist()))} answerable "
        f"questions, {len(rows)} sentences ({path.name}); conditional logit, L2 {L2}, then Platt scaling",
    }


def fit() -> None:
    write_csv(_rows("fit"))
    parameters = fit_from_csv()
    MODEL_FILE.write_text(json.dumps(parameters, indent=1) + "\n", encoding="utf-8")
    print(f"wrote {MODEL_FILE.relative_to(ROOT)} and {FEATURES_CSV.relative_to(ROOT)}")
    for name, coef in zip(USED, parameters["coef"], strict=True):
        print(f"  {name:<14} {coef:+.3f}")


def report() -> None:
    """Evidence hit@1 on the held-out halves: the cross-encoder's first sentence against the scorer's."""
    from qa.pipeline.sentence_scorer import Features

    scorer = SentenceScorer.load()
    for version in SETS:
        rows = [json.loads(line) for line in (RAW / f"{version}-held-out.jsonl").read_text().splitlines()]
        rows = [r for r in rows if r["labels"]]
        before = sum(r["labels"][max(range(len(r["logits"])), key=r["logits"].__getitem__)] for r in rows)
        chances = [scorer.score([Features(*v) for v in r["features"]]) for r in rows]
        after = sum(r["labels"][max(range(len(c)), key=c.__getitem__)] for r, c in zip(rows, chances, strict=True))
        reachable = sum(any(r["labels"]) for r in rows)
        print(
            f"SQuAD {version} held-out, {len(rows)} questions: evidence hit@1 {before / len(rows):.3f} -> "
            f"{after / len(rows):.3f} (an answer sentence among those read: {reachable / len(rows):.3f})"
        )


def shorts(per_half: int) -> None:
    """Short answers with the right sentence given: for questions of each half of SQuAD v1.1, the first
    sentence of the gold paragraph holding a gold answer, annotated as indexing does; EM/F1 of the short
    answer (``qa.pipeline.answer_kind.short_answer``) over the questions that get one."""
    from qa.eval.run import exact_match, f1_score
    from qa.ingest.annotate import Annotator
    from qa.ingest.chunking import article_sentences
    from qa.pipeline.answer_kind import answer_kind, short_answer
    from qa.types import Article

    annotator = Annotator(Models.of(Config.from_env()).nlp())
    data = json.loads((DATA / SETS["v1.1"][0]).read_text(encoding="utf-8"))["data"]
    first = SETS["v1.1"][1]
    for half, entries in (("fit", data[:first]), ("held-out", data[first:])):
        items = [(p["context"], qa["question"], [a["text"] for a in qa["answers"]]) for e in entries
                 for p in e["paragraphs"] for qa in p["qas"]]  # fmt: skip
        items = random.Random(SEED).sample(items, min(per_half, len(items)))
        articles = [Article(f"p{i}", "", context) for i, (context, _, _) in enumerate(items)]
        em = f1 = got = read = 0
        for article, notes, (_, question, golds) in zip(articles, annotator.annotate(articles), items, strict=True):
            sentence = next((x for x in article_sentences(article, notes) if contains_any(x.text, golds)), None)
            if sentence is None:
                continue
            read += 1
            kind = answer_kind(question)
            found = short_answer(kind, question, sentence) if kind else None
            if found is not None:
                got, em, f1 = got + 1, em + exact_match(found.text, golds), f1 + f1_score(found.text, golds)
        print(f"SQuAD v1.1 {half}: {got} of {read} questions get a short answer: EM {em / got:.3f}, F1 {f1 / got:.3f}")


COMPARED = {  # set: (questions, corpus), relative to the data folder or, for the factoid set, the repository
    "realtimeqa": ("realtimeqa_news/queries_with_gold.jsonl", "realtimeqa_news/corpus_small.jsonl"),
    "news-factoid": ("benchmarks/data/news_factoid.jsonl", "realtimeqa_news/corpus_small.jsonl"),
    "squad-v1.1-held-out": ("squad/dev-v1.1.json", None),
    "squad-v2.0-held-out": ("squad/dev-v2.0.json", None),
}
METRICS = (
    "accuracy", "mc_accuracy", "evidence_hit@1", "answer_rate", "abstain_recall", "exact_match", "f1",
    "short_answer_rate",
)  # fmt: skip


def compare(name: str, limit: int | None) -> None:
    """``qa eval`` figures of one set with the cross-encoder alone ordering the sentences (the reader before
    the scorer: a model of the logit alone) and with the fitted scorer, side by side in one process."""
    from qa.eval.run import run

    config = Config.from_env()
    models = Models.of(config)
    questions, corpus = COMPARED[name]
    eval_set = load_eval_set((ROOT if questions.startswith("benchmarks/") else DATA) / questions)
    if corpus is None:  # SQuAD: the held-out half of the file's articles, open-book over all its paragraphs
        version = name.split("-")[1]
        held = halves(DATA / SETS[version][0], SETS[version][1])[1]
        title_of = {a.doc_id: a.title for a in eval_set.corpus or ()}
        pool = [q for q in eval_set.questions if title_of[q.gold_doc_ids[0]] in held]
        items = random.Random(SEED).sample(pool, min(limit or len(pool), len(pool)))
        articles, index_name = list(eval_set.corpus or ()), f"squad-{version}"
    else:
        items = list(eval_set.questions)[:limit]
        articles, index_name = _common.read_corpus(DATA / corpus, config), "realtimeqa"
    assistant = _common.corpus_assistant(index_name, articles, config, models)[0]
    fitted = assistant.scorer
    logit_only = SentenceScorer([0.0], [1.0], [1.0], 0.0, ["logit"])
    table = {}
    for label, scorer in (("cross-encoder order", logit_only), ("answer-sentence scorer", fitted)):
        assistant.scorer = scorer
        table[label] = run(assistant, items, name=name, show_progress=False).metrics
    print(f"{name}: {len(items)} questions")
    print(f"{'metric':<20}" + "".join(f"{label:>24}" for label in table))
    for metric in METRICS:
        values = [table[label].get(metric) for label in table]
        print(f"{metric:<20}" + "".join(f"{'n/a' if v is None else f'{v:.3f}':>24}" for v in values))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", choices=["collect", "fit", "report", "compare", "shorts"])
    parser.add_argument("--per-half", type=int, default=500, help="questions per half of each file (collect)")
    parser.add_argument("--set", choices=sorted(COMPARED), default="realtimeqa", help="the set to compare")
    parser.add_argument("--limit", type=int, default=None, help="questions of the set to compare (default all)")
    args = parser.parse_args()
    logging.basicConfig(level=logging.INFO, format="%(message)s")
    if not (DATA / "squad").is_dir():
        print(f"no SQuAD data in {DATA}: skipped")
        return 0
    parts = {"collect": lambda: collect(args.per_half), "fit": fit, "report": report}
    parts["compare"] = lambda: compare(args.set, args.limit)
    parts["shorts"] = lambda: shorts(args.per_half)
    parts[args.part]()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
