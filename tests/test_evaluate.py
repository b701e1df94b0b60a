"""Metrics on tiny hand-checked inputs, real runs, and the `qa eval` command."""

from __future__ import annotations

import json
import re
import subprocess
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.eval.choices import pick_choice, same_word, words
from qa.eval.run import (
    Report,
    contains_any,
    exact_match,
    f1_score,
    normalize_answer,
    percentile,
    run,
    score_row,
    summarize,
)
from qa.eval.sets import EvalDataError, Question, load_eval_set
from qa.models import Models
from qa.types import Answer, Article, Citation, Evidence, ShortAnswer

from .conftest import DATA
from .test_cli import QA
from .test_evalsets import SQUAD, write_jsonl


def cite(n: int, doc: str, quote: str) -> Citation:
    return Citation(n, doc, "T", None, None, None, quote, 0, len(quote), 5.0)


def ev(text: str) -> Evidence:
    return Evidence("d", 0, len(text), text, 1.0)


def answer(text: str, citations=(), abstained=False, evidence=(), total=0.1, short=None) -> Answer:  # noqa: ANN001
    return Answer(
        "q",
        text,
        tuple(citations),
        abstained,
        {"retrieve": total / 2, "read": total / 2, "total": total},
        "q",
        tuple(evidence),
        short=short,
    )


def short(text: str) -> ShortAnswer:
    return ShortAnswer(text, "d", 0, len(text), 1, "person")


def test_squad_normalisation_match_em_f1_percentile() -> None:
    assert normalize_answer("The  Quick, brown fox!") == "quick brown fox"
    assert contains_any("He left for Tajikistan.", ["tajikistan"])
    assert contains_any("It said “Squid Game” was back", ["“Squid Game”"])
    assert not contains_any("129 passengers", ["12"])  # whole words only
    assert exact_match("the Friday", ["Friday"]) == 1.0 and exact_match("Friday night", ["Friday"]) == 0.0
    assert f1_score("the cat sat", ["cat sat on"]) == pytest.approx(0.8)
    assert f1_score("dog", ["cat"]) == 0.0
    assert percentile([1, 2, 3, 4], 50) == 2.5 and percentile([1, 2, 3, 4], 100) == 4
    assert percentile([], 50) is None


def test_metrics_on_hand_checked_rows() -> None:
    q1 = Question("q1", "Where did Ghani go?", ("Tajikistan",), True, ("d1",))
    q2 = Question("q2", "What did Russia say?", (), False)
    q3 = Question("q3", "What did Germany say?", (), False)
    q4 = Question("q4", "How many passengers?", ("129",), True, ("d3",))
    rows = [
        score_row(
            q1,
            answer(
                "Ghani left for Tajikistan. [1] Other. [2]",
                [cite(1, "d1", "Ghani left for Tajikistan."), cite(2, "d2", "Other.")],
                evidence=[ev("Other."), ev("Ghani left for Tajikistan.")],
                total=0.1,
            ),
            ["d2", "d1"],
        ),
        score_row(q2, answer("The articles do not answer.", abstained=True, total=0.2), ["d1"]),
        score_row(q3, answer("Germany said things. [1]", [cite(1, "d1", "Germany said things.")], total=0.3), ["d1"]),
        score_row(
            q4, answer("The articles do not answer.", abstained=True, evidence=[ev("129 people")], total=0.4), ["d1"]
        ),
    ]
    assert rows[0]["recall@1"] == 0 and rows[0]["recall@5"] == 1 and rows[0]["rr@10"] == 0.5
    assert rows[0]["evidence_hit@1"] is False and rows[0]["evidence_hit@5"] is True
    assert rows[0]["citations_supported"] == 1
    m, counts = summarize(rows)
    assert counts == {
        "questions": 4,
        "answerable": 2,
        "unanswerable": 2,
        "with_gold_docs": 2,
        "answered": 2,
        "with_short": 0,
        "with_choices": 0,
    }
    assert m["accuracy"] == 0.5  # q1 right, q2 right, q3 wrong (answered), q4 wrong (abstained)
    assert m["answer_recall"] == 0.5
    assert m["exact_match"] is None and m["f1"] is None  # no short answers: n/a, not a made-up number
    assert m["short_answer_rate"] == 0.0 and "mc_accuracy" not in m
    assert m["evidence_hit@1"] == 0.5 and m["evidence_hit@5"] == 1.0
    assert m["retrieval_recall@1"] == 0.0 and m["retrieval_recall@5"] == 0.5 and m["mrr@10"] == 0.25
    assert m["citation_precision"] == 0.5 and m["citation_recall"] == 1.0
    assert m["abstain_precision"] == 0.5 and m["abstain_recall"] == 0.5 and m["abstain_f1"] == 0.5
    assert m["answer_rate"] == 0.5
    assert m["latency_p50_total"] == pytest.approx(0.25) and m["latency_p50_rerank"] is None


def test_em_and_f1_are_scored_on_short_answers() -> None:
    who = Question("who", "Who is the spokesperson of the Chinese foreign ministry?", ("Hua Chunying",))
    sentence = cite(1, "d", "Hua Chunying said so.")
    rows = [
        score_row(who, answer("Hua Chunying said so. [1]", [sentence], short=short("Hua Chunying")), []),
        score_row(who, answer("Hua Chunying said so. [1]", [sentence], short=short("spokesperson Hua")), []),
        score_row(who, answer("Hua Chunying said so. [1]", [sentence]), []),  # answered without a short answer
        score_row(who, answer("The articles do not answer.", abstained=True, short=short("Hua Chunying")), []),
        score_row(Question("none", "Who bought it?", (), False), answer("X. [1]", [sentence], short=short("X")), []),
    ]
    assert rows[0]["short"]["text"] == "Hua Chunying" and rows[0]["exact_match"] == 1.0 and rows[0]["f1"] == 1.0
    assert rows[1]["exact_match"] == 0.0 and rows[1]["f1"] == pytest.approx(0.5)
    assert rows[2]["short"] is None and "exact_match" not in rows[2]
    assert rows[3]["short"] is None and "f1" not in rows[3]  # an abstention's short answer is not scored
    assert "short" not in rows[4]  # nothing to score it against
    m, counts = summarize(rows)
    assert m["exact_match"] == 0.5 and m["f1"] == pytest.approx(0.75)  # over the two short answers
    assert m["short_answer_rate"] == 0.5  # two of the four answerable questions asked
    assert counts["with_short"] == 2 and counts["with_choices"] == 0
    report = Report("short", m, counts, tuple(rows))
    assert "| exact_match | 0.500 |" in report.to_markdown() and "| short_answer_rate | 0.500 |" in report.to_markdown()
    assert "2 with short" in report.table() and re.search(r"\n  f1 +0\.750\n", report.table())


CONTINENT = "To help reduce cable clutter, which continent will require a single common charging standard?"
SPEAKER = "Who is the spokesperson of the Chinese foreign ministry?"
# (question, choices, answer, the choice the rule must pick), each checked by hand against the rule.
MC_CASES = [
    (  # "Europe" is found in "European" (same first five letters)
        CONTINENT,
        ["Europe", "North America", "Asia", "Africa"],
        answer("X", evidence=[ev("European regulators announced a plan that will eliminate charging cables.")]),
        0,
    ),
    (  # curly quotes are punctuation; "Game" alone covers half of "Game of Thrones"
        "Which wildly popular show was recently green lit for a new season?",
        ["“Game of Thrones”", "“Squid Game”", "“Breaking Bad”", "“Friends”"],
        answer("X", [cite(1, "d", "Netflix said the hit show “Squid Game“ is coming back for a second season.")]),
        1,
    ),
    (  # two choices equally supported: a tie picks none
        "Which country signed the treaty?",
        ["France", "Spain", "Italy"],
        answer("X", evidence=[ev("Both France and Spain signed the treaty on Monday.")]),
        None,
    ),
    (  # no choice found anywhere: none
        "Which country signed the treaty?",
        ["France", "Spain", "Italy"],
        answer("X", evidence=[ev("The weather was mild all week.")]),
        None,
    ),
    (  # "France" is all question words (weight 0.25): "Italy" wins though both are in the evidence
        "Which country, besides France, signed the deal with Germany?",
        ["France", "Italy", "Spain"],
        answer("X", evidence=[ev("France and Italy signed the deal with Germany on Monday.")]),
        1,
    ),
    (  # the short answer (3) and its citation (2) outweigh topical evidence sentences (1, 1/2)
        SPEAKER,
        ["Wang Wenbin", "Hua Chunying", "Zhao Lijian"],
        answer(
            "Hua Chunying told reporters. [1]",
            [cite(1, "d", "Hua Chunying told reporters on Monday.")],
            evidence=[ev("Wang Wenbin spoke for the foreign ministry."), ev("Zhao Lijian spoke too.")],
            short=short("Hua Chunying"),
        ),
        1,
    ),
    (  # an abstention's nearest sentences (its citations, 2) still count, above the top evidence (1)
        "Which city will host the summit?",
        ["Osaka", "Tokyo", "Kyoto"],
        answer(
            "The articles do not answer this question.",
            [cite(1, "d", "Officials in Tokyo prepared for the visit.")],
            abstained=True,
            evidence=[ev("Osaka hosted a fair last year.")],
        ),
        1,
    ),
    (  # evidence weighs less by rank: 1 at rank 0 beats 1/2 + 1/3 further down
        "Where did the president travel?",
        ["Ankara", "Istanbul"],
        answer("X", evidence=[ev("He landed in Ankara."), ev("Istanbul was busy."), ev("Crowds in Istanbul.")]),
        0,
    ),
    (  # numbers: separators dropped, digits compared exactly ("1,000" does not match "10,000")
        "How many people marched?",
        ["1,000", "10,000", "100,000"],
        answer("X", evidence=[ev("About 10,000 people marched through the capital.")]),
        1,
    ),
    (  # "Iran" begins "Iranian" (four letters or more); "Iraq" does not
        "Which country's officials denied the report?",
        ["Iraq", "Iran", "Israel"],
        answer("X", evidence=[ev("Iranian officials denied the report.")]),
        1,
    ),
    (  # many words of one choice found, few of the others; question words ("measure", "gun") count little
        "Senators agreed on gun safety legislation, but which measure did lawmakers leave out?",
        [
            "Enhanced review process for gun buyers under 21",
            "Investment in mental health",
            "Ban on military-style assault weapons",
            "Funding to improve school security",
        ],
        answer("X", evidence=[ev("The deal does not include a ban on military-style assault weapons, a measure.")]),
        2,
    ),
]


@pytest.mark.parametrize(("question", "choices", "given", "expected"), MC_CASES)
def test_the_choice_the_evidence_supports_best_is_picked(
    question: str, choices: list[str], given: Answer, expected: int | None
) -> None:
    assert pick_choice(question, choices, given).index == expected


def test_choice_words_and_matching() -> None:
    assert words("The EU’s “USB-C” rule: 10,000 devices, 2.5 years") == [
        "the",
        "eu",
        "usb",
        "c",
        "rule",
        "10000",
        "devices",
        "25",
        "years",
    ]
    assert words("São Paulo’s mayor") == ["são", "paulo", "mayor"]
    assert same_word("europe", "european") and same_word("iran", "iranian") and same_word("asia", "asian")
    assert not same_word("war", "warsaw") and not same_word("china", "chinese") and not same_word("1000", "10000")
    question = "Which country, besides France, signed the deal with Germany?"
    pick = pick_choice(question, ["France", "Italy"], answer("X", evidence=[ev("France and Italy signed.")]))
    assert pick.scores == (0.25, 1.0)


def test_multiple_choice_rows_and_accuracy() -> None:
    quiz = Question("q1", CONTINENT, ("Europe",), choices=("Europe", "Asia"), correct_choices=(0,))
    missed = Question("q2", "Which country signed?", ("Spain",), choices=("France", "Spain"), correct_choices=(1,))
    unsure = Question("q3", "Which country signed?", ("Spain",), choices=("France", "Spain"), correct_choices=(1,))
    rows = [
        score_row(quiz, answer("X", evidence=[ev("European regulators agreed.")]), []),
        score_row(missed, answer("X", evidence=[ev("France signed it.")]), []),
        score_row(unsure, answer("X", evidence=[ev("Nobody signed it.")]), []),
        score_row(Question("q4", "Who?", ("Ann",)), answer("Ann did."), []),
    ]
    assert (rows[0]["mc_choice"], rows[0]["mc_correct"]) == (0, True)
    assert (rows[1]["mc_choice"], rows[1]["mc_correct"]) == (0, False)
    assert (rows[2]["mc_choice"], rows[2]["mc_correct"]) == (None, False)  # none picked: wrong
    assert "mc_choice" not in rows[3]
    m, counts = summarize(rows)
    assert m["mc_accuracy"] == pytest.approx(1 / 3) and counts["with_choices"] == 3
    assert m["accuracy"] == 0.25  # containment: only q4's answer holds its gold answer
    report = Report("quiz", m, counts, tuple(rows))
    assert "| mc_accuracy | 0.333 |" in report.to_markdown() and "3 with choices" in report.table()


def test_run_seed_questions_with_a_dialogue(assistant: Assistant, tmp_path: Path) -> None:
    rows = [json.loads(x) for x in (DATA / "seed_questions.jsonl").read_text().splitlines()[:3]]
    rows.append(
        {
            "id": "dlg",
            "turns": [
                {"question": "What did Pakistan's prime minister say?", "answers": ["shackles of slavery"]},
                {"question": "Where was he when he said it?", "answers": ["Islamabad"]},
            ],
        }
    )
    rows[1] |= {"choices": ["Wang Yi", "Hua Chunying", "Imran Khan"], "answer_index": [1]}
    rows.append({"id": "none", "question": "What did Russia say about the Taliban?", "answers": []})
    eval_set = load_eval_set(write_jsonl(tmp_path / "q.jsonl", rows))
    report = run(assistant, eval_set, show_progress=False)
    assert [r["id"] for r in report.rows] == ["seed-01", "seed-02", "seed-03", "dlg#1", "dlg#2", "none"]
    assert report.rows[4]["resolved_question"] != "Where was he when he said it?"
    assert report.metrics["accuracy"] == 1.0 and report.metrics["abstain_recall"] == 1.0
    assert report.counts["questions"] == 6 and report.counts["with_choices"] == 1
    assert report.rows[1]["mc_choice"] == 1 and report.metrics["mc_accuracy"] == 1.0
    json_path, md_path = report.write(tmp_path / "out")
    saved = json.loads(json_path.read_text())
    assert saved["metrics"]["accuracy"] == 1.0 and len(saved["rows"]) == 6
    assert saved["rows"][0]["citations"][0]["quote"] in saved["rows"][0]["answer"]
    assert "| accuracy | 1.000 |" in md_path.read_text()
    assert "exact_match" in report.table() and "short_answer_rate" in report.table()


def test_retrieval_only_run_over_a_beir_folder(tmp_path: Path, config: Config, models: Models) -> None:
    write_jsonl(
        tmp_path / "corpus.jsonl",
        [
            {
                "_id": "harbour",
                "title": "Harbour",
                "text": "The harbour reopened on Friday after a strike by dock workers.",
            },
            {"_id": "bridge", "title": "Bridge", "text": "The mayor opened a new bridge over the river on Tuesday."},
            {
                "_id": "school",
                "title": "School",
                "text": "A new school for 600 pupils was built in the north of the city.",
            },
        ],
    )
    write_jsonl(
        tmp_path / "queries.jsonl",
        [
            {"_id": "q1", "text": "When did the harbour reopen?"},
            {"_id": "q2", "text": "How many pupils does the new school have?"},
        ],
    )
    (tmp_path / "qrels.tsv").write_text("query-id\tcorpus-id\tscore\nq1\tharbour\t1\nq2\tschool\t1\n")
    eval_set = load_eval_set(tmp_path)
    assistant = Assistant.build(eval_set.corpus, None, config, models, show_progress=False)
    report = run(assistant, eval_set, show_progress=False)
    assert report.meta["retrieval_only"] is True
    assert report.metrics["retrieval_recall@1"] == 1.0 and report.metrics["mrr@10"] == 1.0
    assert "accuracy" not in report.metrics and "answer" not in report.rows[0]


def test_dated_questions_are_asked_as_of_their_day(config: Config, models: Models) -> None:
    corpus = [
        Article(
            "opening", "Bridge opens", "The mayor opened a new bridge over the river on Tuesday.", date="2022-06-14"
        ),
        Article(
            "school", "School", "A new school for 600 pupils was built in the north of the city.", date="2022-01-03"
        ),
    ]
    assistant = Assistant.build(corpus, None, config, models, show_progress=False)
    questions = [
        Question("early", "Who opened the new bridge?", ("mayor",), gold_doc_ids=("opening",), as_of="2022-06-01"),
        Question("late", "Who opened the new bridge?", ("mayor",), gold_doc_ids=("opening",), as_of="2022-06-20"),
    ]
    dated = run(assistant, questions, show_progress=False)
    early, late = dated.rows
    assert early["abstained"] and early["recall@10"] == 0.0  # the bridge opened after it was asked
    assert not late["abstained"] and late["recall@1"] == 1.0
    assert dated.meta["dated_questions"] == 2
    undated = run(assistant, questions, show_progress=False, use_dates=False)
    assert not any(row["abstained"] for row in undated.rows) and undated.meta["dated_questions"] == 0


def test_bad_question_fails_before_anything_runs(assistant: Assistant) -> None:
    with pytest.raises(EvalDataError, match="'long'"):
        run(assistant, [Question("ok", "Who?", ("x",)), Question("long", "why " * 5000, ("x",))], show_progress=False)


def test_qa_eval_command_on_squad_json(tmp_path: Path) -> None:
    squad = tmp_path / "squad.json"
    squad.write_text(json.dumps(SQUAD))
    out = tmp_path / "report"
    done = subprocess.run([QA, "eval", str(squad), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    assert "accuracy" in done.stdout and "retrieval_recall@1" in done.stdout
    report = json.loads((out / "report.json").read_text())
    assert report["counts"] == {
        "questions": 3,
        "answerable": 2,
        "unanswerable": 1,
        "with_gold_docs": 3,
        "answered": report["counts"]["answered"],
        "with_short": report["counts"]["with_short"],
        "with_choices": 0,
    }
    assert report["metrics"]["retrieval_recall@5"] == 1.0  # two paragraphs: both in the top 5
    assert report["metrics"]["retrieval_recall@1"] is not None
    assert (out / "report.md").is_file()


def test_qa_eval_malformed_input_writes_nothing(tmp_path: Path) -> None:
    bad = write_jsonl(tmp_path / "bad.jsonl", ['{"question": "fine?", "answers": ["a"]}', "{oops"])
    out = tmp_path / "report"
    done = subprocess.run([QA, "eval", str(bad), "--out", str(out)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 1
    assert f"{bad}:2: invalid JSON" in done.stderr and "Traceback" not in done.stderr
    assert not out.exists()
