"""Run a question set through an ``Assistant`` and measure it.

``run(assistant, questions) -> Report``. The metrics (formulas in the README):

- accuracy: answerable questions whose answer contains a gold answer, plus unanswerable
  questions that were abstained on, over all questions;
- answer recall: a gold answer (SQuAD-normalised) occurs in the answer text;
- multiple-choice accuracy, for questions with ``choices``: the choice that the answer's evidence
  supports best (``qa.eval.choices``) is a right one; a question where none is picked is wrong;
- EM / F1 of the short answer (``Answer.short``), over the answerable questions answered with one,
  and the short-answer rate: the share of answerable questions answered with one;
- evidence hit@k: a gold answer or evidence string occurs in one of the reader's top-k
  evidence sentences;
- retrieval recall@k and MRR@10 against the gold documents, at article level;
- citation precision and recall: citations whose quote contains a gold answer or evidence
  string, or that come from a gold document;
- abstention precision / recall / F1 on unanswerable questions, answer rate on answerable;
- latency p50 / p95 per question and per stage.
"""

from __future__ import annotations

import collections
import json
import re
import string
import time
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any

from tqdm.auto import tqdm

from qa.assistant import Assistant
from qa.config import Config
from qa.eval.choices import pick_choice
from qa.eval.sets import EvalDataError, EvalSet, Question, corpus_articles
from qa.types import Answer, FileProblem

if TYPE_CHECKING:
    from qa.models import Models

RECALL_KS = (1, 5, 10)
EVIDENCE_KS = (1, 5)
SEARCH_DEPTH = 100  # passages searched to rank documents for recall@10
STAGES = ("retrieve", "rerank", "read", "total")


# ---- text matching (SQuAD conventions) ------------------------------------------------------
def normalize_answer(text: str) -> str:
    """Lower-case, drop punctuation, articles and extra spaces (the SQuAD normalisation)."""
    text = text.lower().replace("’", "'").replace("“", '"').replace("”", '"')
    text = "".join(ch for ch in text if ch not in set(string.punctuation))
    text = re.sub(r"\b(a|an|the)\b", " ", text)
    return " ".join(text.split())


def contains_any(text: str, golds: Iterable[str]) -> bool:
    """True when a normalised gold string occurs in the normalised text, on word boundaries."""
    haystack = f" {normalize_answer(text)} "
    return any(g and f" {g} " in haystack for g in (normalize_answer(x) for x in golds))


def exact_match(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD exact match: 1.0 when the normalised prediction equals a normalised gold answer."""
    return float(any(normalize_answer(prediction) == normalize_answer(g) for g in golds))


def f1_score(prediction: str, golds: Sequence[str]) -> float:
    """SQuAD token F1 against the best-matching gold answer."""
    best = 0.0
    pred_tokens = normalize_answer(prediction).split()
    for gold in golds:
        gold_tokens = normalize_answer(gold).split()
        common = collections.Counter(pred_tokens) & collections.Counter(gold_tokens)
        overlap = sum(common.values())
        if overlap == 0:
            continue
        precision, recall = overlap / len(pred_tokens), overlap / len(gold_tokens)
        best = max(best, 2 * precision * recall / (precision + recall))
    return best


def percentile(values: Sequence[float], q: float) -> float | None:
    """The q-th percentile (0-100) with linear interpolation; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    pos = (len(ordered) - 1) * q / 100
    low, high = int(pos), min(int(pos) + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (pos - low)


def _mean(values: Sequence[float]) -> float | None:
    return sum(values) / len(values) if values else None


# ---- per-question scoring ----------------------------------------------------------------
def doc_ranking(doc_ids: Iterable[str]) -> list[str]:
    """Distinct document ids in first-seen order."""
    return list(dict.fromkeys(doc_ids))


def score_row(question: Question, answer: Answer | None, ranked_docs: Sequence[str]) -> dict[str, Any]:
    """Return the per-question measurements (None where a measure does not apply)."""
    gold_text = question.answers + question.evidence
    gold_docs = set(question.gold_doc_ids)
    row: dict[str, Any] = {
        "id": question.id,
        "question": question.question,
        "answers": list(question.answers),
        "answerable": question.answerable,
        "gold_doc_ids": list(question.gold_doc_ids),
        "retrieved_doc_ids": list(ranked_docs[:10]),
    }
    if gold_docs:
        top10 = ranked_docs[:10]
        for k in RECALL_KS:
            row[f"recall@{k}"] = len(gold_docs & set(ranked_docs[:k])) / len(gold_docs)
        row["rr@10"] = next((1 / (i + 1) for i, d in enumerate(top10) if d in gold_docs), 0.0)
    if answer is None:
        return row
    row.update(
        resolved_question=answer.resolved_question,
        answer=answer.text,
        abstained=answer.abstained,
        citations=[c.to_dict() for c in answer.citations],
        evidence=[e.to_dict() for e in answer.evidence[:5]],
        timings=dict(answer.timings),
    )
    if question.answerable and question.answers:
        row["answer_hit"] = (not answer.abstained) and contains_any(answer.text, question.answers)
        row["correct"] = row["answer_hit"]
        row.update(_short_answer_scores(question, answer))
    elif not question.answerable:
        row["correct"] = answer.abstained
    if question.answerable and gold_text:
        for k in EVIDENCE_KS:
            row[f"evidence_hit@{k}"] = any(contains_any(e.text, gold_text) for e in answer.evidence[:k])
    if question.answerable and not answer.abstained and (gold_text or gold_docs):
        supported = [c.doc_id in gold_docs or contains_any(c.quote, gold_text) for c in answer.citations]
        row["citations_supported"] = sum(supported)
    if question.choices:
        row.update(_choice_scores(question, answer))
    return row


def _short_answer_scores(question: Question, answer: Answer) -> dict[str, Any]:
    """The short answer of an answerable question, with its EM and F1 when the answer has one."""
    short = answer.short if not answer.abstained else None
    if short is None:
        return {"short": None}
    return {
        "short": short.to_dict(),
        "exact_match": exact_match(short.text, question.answers),
        "f1": f1_score(short.text, question.answers),
    }


def _choice_scores(question: Question, answer: Answer) -> dict[str, Any]:
    """The choice the answer supports best, whether it is a right one, and every choice's score."""
    pick = pick_choice(question.question, question.choices, answer)
    return {
        "choices": list(question.choices),
        "correct_choices": list(question.correct_choices),
        "mc_choice": pick.index,
        "mc_correct": pick.index in question.correct_choices,
        "mc_scores": list(pick.scores),
    }


# ---- the report ----------------------------------------------------------------------------
@dataclass(frozen=True)
class Report:
    """Metrics of one evaluation run, with every per-question row."""

    name: str
    metrics: dict[str, float | None]
    counts: dict[str, int]
    rows: tuple[dict[str, Any], ...]
    meta: dict[str, Any] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """Return the whole report as a JSON-serialisable dict."""
        return {
            "name": self.name,
            "meta": self.meta,
            "counts": self.counts,
            "metrics": self.metrics,
            "rows": list(self.rows),
        }

    def table(self) -> str:
        """Return the metrics as an aligned plain-text table, under the counts that are not zero."""
        counted = ", ".join(f"{v} {k.replace('_', ' ')}" for k, v in self.counts.items() if v and k != "questions")
        lines = [f"{self.name}: {self.counts.get('questions', 0)} questions" + (f" ({counted})" if counted else "")]
        width = max(len(k) for k in self.metrics) if self.metrics else 10
        for key, value in self.metrics.items():
            lines.append(f"  {key:<{width}}  {_fmt(key, value)}")
        return "\n".join(lines)

    def to_markdown(self) -> str:
        """Return the report as Markdown: counts, metrics, and the first misses."""
        out = [f"# Evaluation: {self.name}", ""]
        out += [f"- {k}: {v}" for k, v in self.meta.items()]
        out += [f"- {k}: {v}" for k, v in self.counts.items()]
        out += ["", "| metric | value |", "|---|---|"]
        out += [f"| {k} | {_fmt(k, v)} |" for k, v in self.metrics.items()]
        misses = [r for r in self.rows if r.get("correct") is False][:20]
        if misses:
            out += ["", "## First misses", ""]
            for r in misses:
                expected = ", ".join(r["answers"]) if r["answerable"] else "(abstain)"
                got = (r.get("answer") or "").replace("\n", " ")[:200]
                out.append(f"- `{r['id']}` {r['question']} — expected: {expected} — got: {got}")
        return "\n".join(out) + "\n"

    def write(self, out_dir: str | Path) -> tuple[Path, Path]:
        """Write ``report.json`` and ``report.md`` into ``out_dir``; return their paths."""
        folder = Path(out_dir)
        folder.mkdir(parents=True, exist_ok=True)
        json_path, md_path = folder / "report.json", folder / "report.md"
        json_path.write_text(json.dumps(self.to_dict(), indent=2, ensure_ascii=False), encoding="utf-8")
        md_path.write_text(self.to_markdown(), encoding="utf-8")
        return json_path, md_path


def _fmt(key: str, value: float | None) -> str:
    if value is None:
        return "n/a"
    if key.startswith("latency"):
        return f"{value * 1000:.0f} ms"
    return f"{value:.3f}"


def summarize(rows: Sequence[dict[str, Any]]) -> tuple[dict[str, float | None], dict[str, int]]:
    """Aggregate per-question rows into the report's metrics and counts."""

    def values(key: str) -> list[float]:
        return [float(r[key]) for r in rows if r.get(key) is not None]

    asked = [r for r in rows if "abstained" in r]
    answerable = [r for r in asked if r["answerable"]]
    unanswerable = [r for r in asked if not r["answerable"]]
    metrics: dict[str, float | None] = {}
    if asked:
        metrics["accuracy"] = _mean(values("correct"))
        if any("mc_correct" in r for r in asked):
            metrics["mc_accuracy"] = _mean(values("mc_correct"))
        metrics["answer_recall"] = _mean(values("answer_hit"))
        metrics["exact_match"] = _mean(values("exact_match"))  # over the answers with a short answer
        metrics["f1"] = _mean(values("f1"))
        metrics["short_answer_rate"] = _mean([float(r["short"] is not None) for r in asked if "short" in r])
        for k in EVIDENCE_KS:
            metrics[f"evidence_hit@{k}"] = _mean(values(f"evidence_hit@{k}"))
    for k in RECALL_KS:
        metrics[f"retrieval_recall@{k}"] = _mean(values(f"recall@{k}"))
    metrics["mrr@10"] = _mean(values("rr@10"))
    if asked:
        judged = [r for r in answerable if "citations_supported" in r]
        n_citations = sum(len(r["citations"]) for r in judged)
        metrics["citation_precision"] = (
            sum(r["citations_supported"] for r in judged) / n_citations if n_citations else None
        )
        metrics["citation_recall"] = _mean([float(r["citations_supported"] > 0) for r in judged])
        tp = sum(r["abstained"] for r in unanswerable)
        fp = sum(r["abstained"] for r in answerable)
        precision = tp / (tp + fp) if unanswerable and tp + fp else None
        recall = tp / len(unanswerable) if unanswerable else None
        metrics["abstain_precision"] = precision
        metrics["abstain_recall"] = recall
        metrics["abstain_f1"] = (
            2 * precision * recall / (precision + recall) if precision and recall else (0.0 if unanswerable else None)
        )
        metrics["answer_rate"] = _mean([float(not r["abstained"]) for r in answerable])
    for stage in STAGES:
        times = [r["timings"][stage] for r in rows if stage in r.get("timings", {})]
        metrics[f"latency_p50_{stage}"] = percentile(times, 50)
        metrics[f"latency_p95_{stage}"] = percentile(times, 95)
    counts = {
        "questions": len(rows),
        "answerable": sum(r["answerable"] for r in rows),
        "unanswerable": sum(not r["answerable"] for r in rows),
        "with_gold_docs": sum(bool(r["gold_doc_ids"]) for r in rows),
        "answered": sum(not r.get("abstained", True) for r in asked),
        "with_short": sum(r.get("short") is not None for r in asked),
        "with_choices": sum("mc_correct" in r for r in asked),
    }
    return metrics, counts


# ---- running -------------------------------------------------------------------------------
def run(
    assistant: Assistant,
    questions: EvalSet | Sequence[Question],
    *,
    retrieval_only: bool | None = None,
    show_progress: bool = True,
    name: str | None = None,
    use_dates: bool = True,
) -> Report:
    """Ask every question (dialogues in one conversation each) and measure the answers.

    A question that says when it was asked (``Question.as_of``) is asked as of that day
    (see ``Assistant.ask``) unless ``use_dates`` is false. Every question is checked
    before the first is asked, so a bad one fails the run before anything is measured.
    """
    if isinstance(questions, EvalSet):
        name = name or questions.name
        retrieval_only = questions.retrieval_only if retrieval_only is None else retrieval_only
        items = questions.questions
    else:
        items = tuple(questions)
    retrieval_only = bool(retrieval_only)
    flat = [t for q in items for t in (q.turns or (q,))]
    for q in flat:
        try:
            assistant.check_question(q.question)
        except Exception as exc:
            raise EvalDataError(f"question {q.id!r}: {exc}") from exc
    rows: list[dict[str, Any]] = []
    started = time.perf_counter()
    with tqdm(total=len(flat), desc="Evaluating", unit="q", disable=not show_progress) as bar:
        for item in items:
            conversation = assistant.chat()
            for turn in item.turns or (item,):
                as_of = (turn.as_of or item.as_of) if use_dates else None
                rows.append(_run_one(assistant, conversation, turn, retrieval_only, as_of))
                bar.update(1)
    metrics, counts = summarize(rows)
    meta = {
        "embed_model": assistant.config.embed_model,
        "cross_encoder": assistant.config.cross_encoder,
        "articles": (library := assistant.summary()).articles,
        "passages": library.passages,
        "retrieval_only": retrieval_only,
        "dated_questions": sum(1 for q in flat if q.as_of) if use_dates else 0,
        "seconds": round(time.perf_counter() - started, 1),
    }
    return Report(name or "questions", metrics, counts, tuple(rows), meta)


def _run_one(
    assistant: Assistant, conversation: Any, question: Question, retrieval_only: bool, as_of: str | None
) -> dict[str, Any]:
    if retrieval_only:
        t0 = time.perf_counter()
        retrieval = assistant.retrieve(question.question, SEARCH_DEPTH, as_of=as_of)
        row = score_row(question, None, doc_ranking(h.passage.doc_id for h in retrieval.hits))
        row["timings"] = {**retrieval.timings, "total": round(time.perf_counter() - t0, 4)}
        return row
    answer = conversation.ask(question.question, as_of=as_of)
    hits = assistant.search(answer.resolved_question or answer.question, SEARCH_DEPTH, as_of=as_of)
    return score_row(question, answer, doc_ranking(h.passage.doc_id for h in hits))


def assistant_for(
    eval_set: EvalSet,
    config: Config,
    index_dir: str | Path | None = None,
    corpus: str | Path | None = None,
    models: Models | None = None,
) -> tuple[Assistant, tuple[FileProblem, ...]]:
    """The assistant an evaluation runs against, and the corpus files it could not read.

    ``corpus`` (articles, a SQuAD JSON or a BEIR folder) is indexed for the run, kept in
    ``index_dir`` when given and reused from there while its articles and settings match; else
    ``index_dir`` (or the configured index) when given or when the set brings no paragraphs of its
    own; else the set's own paragraphs, indexed in memory.
    """
    problems: tuple[FileProblem, ...] = ()
    if corpus:
        articles = corpus_articles(corpus)
        if articles is None:
            report = Assistant.read_articles(corpus, config)
            articles, problems = list(report.articles), report.problems
        return Assistant.build(articles, index_dir, config, models, reuse=True), problems
    if index_dir or eval_set.corpus is None:
        return Assistant.load(index_dir or config.index_dir, config, models), problems
    return Assistant.build(eval_set.corpus, None, config, models), problems
