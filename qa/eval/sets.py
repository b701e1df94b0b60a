"""Question sets for evaluation, in the formats people have, detected from content.

- JSONL, one object a line: ``question`` (required), ``answers`` (acceptable answers; an
  empty list or ``"answerable": false`` means the right behaviour is to abstain), optional
  ``id``, ``gold_doc_ids``, ``evidence``, ``as_of`` (the day it was asked, ``YYYY-MM-DD``;
  alias ``question_date``), ``turns`` (a dialogue: a list of such objects asked in one
  conversation) and, for a multiple-choice question (RealtimeQA), ``choices`` (strings) with
  ``answer_index`` (the index, or list of indexes, of the right ones). Common aliases are read
  too (``qid``, ``answer_text``).
- SQuAD JSON (v1.1 and v2.0): its paragraphs are the corpus (id ``<title>-<paragraph>``).
- HotpotQA JSONL with ``contexts`` (distractor setting): the paragraphs of all questions
  are the corpus, the supporting ones are each question's gold documents.
- BEIR folders (``corpus.jsonl``, ``queries.jsonl``, ``qrels.tsv``): queries with an
  ``answers`` field run end to end, others retrieval only.

Malformed input raises ``EvalDataError`` naming the file, the line and what is wrong,
before anything runs.
"""

from __future__ import annotations

import csv
import hashlib
import json
import random
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from qa.errors import QAError
from qa.text import normalize_text, parse_date, slug
from qa.types import Article


class EvalDataError(QAError):
    """A question set or evaluation corpus is malformed."""


@dataclass(frozen=True)
class Question:
    """One evaluation question, or a dialogue when ``turns`` is not empty."""

    id: str
    question: str
    answers: tuple[str, ...] = ()
    answerable: bool = True
    gold_doc_ids: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    turns: tuple[Question, ...] = ()
    as_of: str | None = None  # the day the question was asked (YYYY-MM-DD), when the set says
    choices: tuple[str, ...] = ()  # a multiple-choice question's choices, in the set's order
    correct_choices: tuple[int, ...] = ()  # the indexes in ``choices`` of the right ones

    @property
    def has_gold_text(self) -> bool:
        """True when answers or evidence strings are known for this question."""
        return bool(self.answers or self.evidence)


@dataclass(frozen=True)
class EvalSet:
    """Questions, and the articles they are asked over when the set brings its own."""

    name: str
    format: str
    questions: tuple[Question, ...]
    corpus: tuple[Article, ...] | None = None
    retrieval_only: bool = False

    def sample(self, limit: int | None, seed: int = 0) -> EvalSet:
        """Return ``limit`` questions drawn with ``seed`` (in their original order)."""
        if limit is None or limit >= len(self.questions):
            return self
        picked = sorted(random.Random(seed).sample(range(len(self.questions)), limit))
        return replace(self, questions=tuple(self.questions[i] for i in picked))


def load_eval_set(path: str | Path) -> EvalSet:
    """Read a question set, detecting its format from its content."""
    path = Path(path)
    if path.is_dir():
        if (path / "queries.jsonl").is_file():
            return _load_beir(path)
        raise EvalDataError(f"{path}: a folder must be a BEIR set with corpus.jsonl, queries.jsonl and qrels.tsv")
    if not path.is_file():
        raise EvalDataError(f"{path}: no such file or folder")
    text = path.read_text(encoding="utf-8-sig")
    if not text.strip():
        raise EvalDataError(f"{path}: the file is empty")
    try:
        whole = json.loads(text)
    except json.JSONDecodeError:
        whole = None
    if isinstance(whole, dict) and isinstance(whole.get("data"), list):
        return _load_squad(path, whole)
    one_line = len([line for line in text.splitlines() if line.strip()]) == 1
    if isinstance(whole, (dict, list)) and not one_line:
        raise EvalDataError(f"{path}: a JSON file must be SQuAD JSON (with a 'data' list) or JSONL of questions")
    records = list(_jsonl_records(path, text))
    if not records:
        raise EvalDataError(f"{path}: no questions found")
    if "contexts" in records[0][1]:
        return _load_hotpot(path, records)
    questions = tuple(_question(rec, f"{path}:{lineno}", f"q{lineno}") for lineno, rec in records)
    _check_unique_ids(path, questions)
    return EvalSet(path.stem, "jsonl", questions)


def corpus_articles(path: str | Path) -> tuple[Article, ...] | None:
    """Return the articles an evaluation file or folder carries, or None for plain article files."""
    path = Path(path)
    if path.is_dir() and (path / "corpus.jsonl").is_file():
        return _beir_corpus(path / "corpus.jsonl")
    if path.is_file() and path.suffix == ".json":
        try:
            data = json.loads(path.read_text(encoding="utf-8-sig"))
        except json.JSONDecodeError:
            return None
        if isinstance(data, dict) and isinstance(data.get("data"), list):
            return _load_squad(path, data).corpus
    if path.is_file() and path.suffix == ".jsonl":
        with open(path, encoding="utf-8") as fh:
            first = fh.readline()
        try:
            if "contexts" in json.loads(first):
                return _load_hotpot(path, list(_jsonl_records(path, path.read_text(encoding="utf-8")))).corpus
        except json.JSONDecodeError:
            return None
    return None


# ---- JSONL questions ---------------------------------------------------------------------
def _jsonl_records(path: Path, text: str) -> Iterator[tuple[int, dict[str, Any]]]:
    for lineno, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvalDataError(f"{path}:{lineno}: invalid JSON: {exc.msg} (column {exc.colno})") from exc
        if not isinstance(record, dict):
            raise EvalDataError(f"{path}:{lineno}: expected a JSON object, got {type(record).__name__}")
        yield lineno, record


def _strings(value: Any, where: str, name: str) -> tuple[str, ...]:
    if value is None:
        return ()
    if isinstance(value, str):
        return (value,)
    if isinstance(value, list) and all(isinstance(v, (str, int, float)) for v in value):
        return tuple(str(v) for v in value if str(v).strip())
    raise EvalDataError(f"{where}: '{name}' must be a string or a list of strings")


def _question(record: dict[str, Any], where: str, fallback_id: str) -> Question:
    qid = str(record.get("id", record.get("qid", record.get("_id", fallback_id))))
    turns = record.get("turns")
    if turns is not None:
        if not isinstance(turns, list) or not turns:
            raise EvalDataError(f"{where}: 'turns' must be a non-empty list of question objects")
        parsed = []
        for i, turn in enumerate(turns, start=1):
            if not isinstance(turn, dict):
                raise EvalDataError(f"{where}: turn {i} must be an object")
            parsed.append(_question(turn, f"{where} turn {i}", f"{qid}#{i}"))
        day = _day(record.get("as_of", record.get("question_date")), where)
        return Question(qid, " / ".join(t.question for t in parsed), turns=tuple(parsed), as_of=day)
    question = record.get("question", record.get("question_text"))
    if not isinstance(question, str) or not question.strip():
        raise EvalDataError(f"{where}: missing or empty 'question'")
    answers = _strings(record.get("answers", record.get("answer_text", record.get("answer"))), where, "answers")
    answerable = record.get("answerable", bool(answers))
    if not isinstance(answerable, bool):
        raise EvalDataError(f"{where}: 'answerable' must be true or false")
    choices, correct = _choices(record, where)
    return Question(
        id=qid,
        question=question.strip(),
        answers=answers if answerable else (),
        answerable=answerable and bool(answers),
        gold_doc_ids=tuple(slug(d) for d in _strings(record.get("gold_doc_ids"), where, "gold_doc_ids")),
        evidence=_strings(record.get("evidence"), where, "evidence"),
        as_of=_day(record.get("as_of", record.get("question_date")), where),
        choices=choices,
        correct_choices=correct,
    )


def _choices(record: dict[str, Any], where: str) -> tuple[tuple[str, ...], tuple[int, ...]]:
    """A multiple-choice question's ``choices`` and the indexes of the right ones (both empty when it has none)."""
    choices, index = record.get("choices"), record.get("answer_index")
    if choices is None:
        return (), ()
    if not isinstance(choices, list) or len(choices) < 2 or not all(isinstance(c, str) and c.strip() for c in choices):
        raise EvalDataError(f"{where}: 'choices' must be a list of at least two non-empty strings")
    indexes = [index] if type(index) is int else index
    valid = isinstance(indexes, list) and indexes and all(type(i) is int for i in indexes)
    if not valid or not all(0 <= i < len(choices) for i in indexes):
        raise EvalDataError(f"{where}: 'answer_index' must be the index or a list of indexes of the right 'choices'")
    return tuple(c.strip() for c in choices), tuple(dict.fromkeys(indexes))


def _day(value: Any, where: str) -> str | None:
    """The question's ``as_of`` day as ``YYYY-MM-DD`` (None when absent); raises when unreadable."""
    if value in (None, ""):
        return None
    day = parse_date(value) if isinstance(value, str) else None
    if day is None:
        raise EvalDataError(f"{where}: 'as_of' {value!r} is not a date (use YYYY-MM-DD)")
    return day.isoformat()


def _check_unique_ids(path: Path, questions: tuple[Question, ...]) -> None:
    seen: set[str] = set()
    for q in questions:
        if q.id in seen:
            raise EvalDataError(f"{path}: question id {q.id!r} is used twice")
        seen.add(q.id)


# ---- SQuAD -----------------------------------------------------------------------------------
def _load_squad(path: Path, data: dict[str, Any]) -> EvalSet:
    articles: list[Article] = []
    questions: list[Question] = []
    for a_i, entry in enumerate(data["data"]):
        title = entry.get("title") if isinstance(entry, dict) else None
        paragraphs = entry.get("paragraphs") if isinstance(entry, dict) else None
        if not isinstance(title, str) or not isinstance(paragraphs, list):
            raise EvalDataError(f"{path}: data[{a_i}] needs a 'title' and a 'paragraphs' list (SQuAD format)")
        for p_i, paragraph in enumerate(paragraphs):
            where = f"{path}: data[{a_i}].paragraphs[{p_i}]"
            if not isinstance(paragraph, dict) or not isinstance(paragraph.get("context"), str):
                raise EvalDataError(f"{where}: missing 'context'")
            doc_id = slug(f"{title}-{p_i}")
            articles.append(Article(doc_id, title.replace("_", " "), normalize_text(paragraph["context"])))
            for q_i, qa in enumerate(paragraph.get("qas", [])):
                if not isinstance(qa, dict) or not isinstance(qa.get("question"), str):
                    raise EvalDataError(f"{where}.qas[{q_i}]: missing 'question'")
                impossible = bool(qa.get("is_impossible", False))
                answers = tuple(dict.fromkeys(a["text"] for a in qa.get("answers", []) if a.get("text")))
                questions.append(
                    Question(
                        id=str(qa.get("id", f"{doc_id}-{q_i}")),
                        question=qa["question"].strip(),
                        answers=() if impossible else answers,
                        answerable=not impossible and bool(answers),
                        gold_doc_ids=(doc_id,),
                    )
                )
    version = str(data.get("version", "v1.1"))
    return EvalSet(f"{path.stem}", f"squad-{version}", tuple(questions), tuple(articles))


# ---- HotpotQA (distractor) ---------------------------------------------------------------
def _load_hotpot(path: Path, records: list[tuple[int, dict[str, Any]]]) -> EvalSet:
    articles: dict[str, Article] = {}
    questions: list[Question] = []
    for lineno, rec in records:
        where = f"{path}:{lineno}"
        contexts = rec.get("contexts")
        if not isinstance(contexts, list):
            raise EvalDataError(f"{where}: 'contexts' must be a list")
        gold: list[str] = []
        for ctx in contexts:
            if not isinstance(ctx, dict) or not isinstance(ctx.get("paragraph_text"), str):
                raise EvalDataError(f"{where}: each context needs 'title' and 'paragraph_text'")
            title = str(ctx.get("title", ""))
            text = normalize_text(ctx["paragraph_text"])
            doc_id = "hp-" + hashlib.sha1(f"{title}\n{text}".encode()).hexdigest()[:12]
            articles.setdefault(doc_id, Article(doc_id, title or doc_id, text))
            if ctx.get("is_supporting"):
                gold.append(doc_id)
        answers: list[str] = []
        for obj in rec.get("answers_objects", []) or []:
            answers.extend(s for s in obj.get("spans", []) if s)
        if not answers and rec.get("answers"):
            answers = list(_strings(rec["answers"], where, "answers"))
        question = rec.get("question_text", rec.get("question"))
        if not isinstance(question, str) or not question.strip():
            raise EvalDataError(f"{where}: missing 'question_text'")
        qid = str(rec.get("question_id", rec.get("id", f"q{lineno}")))
        questions.append(Question(qid, question.strip(), tuple(answers), bool(answers), tuple(gold)))
    return EvalSet(path.stem, "hotpotqa", tuple(questions), tuple(articles.values()))


# ---- BEIR ------------------------------------------------------------------------------------
def _beir_corpus(path: Path) -> tuple[Article, ...]:
    articles = []
    for lineno, rec in _jsonl_records(path, path.read_text(encoding="utf-8")):
        if "_id" not in rec or not isinstance(rec.get("text"), str):
            raise EvalDataError(f"{path}:{lineno}: a corpus line needs '_id' and 'text'")
        doc_id = slug(str(rec["_id"]))
        articles.append(Article(doc_id, str(rec.get("title") or doc_id), normalize_text(rec["text"])))
    return tuple(articles)


def _load_beir(folder: Path) -> EvalSet:
    qrels: dict[str, list[str]] = {}
    qrels_path = folder / "qrels.tsv"
    if qrels_path.is_file():
        with open(qrels_path, encoding="utf-8", newline="") as fh:
            for lineno, row in enumerate(csv.reader(fh, delimiter="\t"), start=1):
                if lineno == 1 and row and row[0] in ("query-id", "query_id", "qid"):
                    continue
                if len(row) < 2:
                    raise EvalDataError(f"{qrels_path}:{lineno}: expected query id, document id and relevance")
                relevant = len(row) == 2 or row[2].strip() not in ("", "0")
                if relevant:
                    qrels.setdefault(row[0], []).append(slug(row[1]))
    queries_path = folder / "queries.jsonl"
    questions = []
    any_answers = False
    for lineno, rec in _jsonl_records(queries_path, queries_path.read_text(encoding="utf-8")):
        if "_id" not in rec or not isinstance(rec.get("text"), str):
            raise EvalDataError(f"{queries_path}:{lineno}: a query line needs '_id' and 'text'")
        qid = str(rec["_id"])
        answers = _strings(rec.get("answers"), f"{queries_path}:{lineno}", "answers")
        any_answers = any_answers or bool(answers)
        questions.append(Question(qid, rec["text"].strip(), answers, True, tuple(qrels.get(qid, ()))))
    corpus = _beir_corpus(folder / "corpus.jsonl") if (folder / "corpus.jsonl").is_file() else None
    return EvalSet(folder.name, "beir", tuple(questions), corpus, retrieval_only=not any_answers)
