"""Question-set formats, detected from content, and their errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from qa.eval.sets import EvalDataError, corpus_articles, load_eval_set

ROOT = Path(__file__).resolve().parent.parent


def write_jsonl(path: Path, rows: list) -> Path:
    path.write_text("\n".join(r if isinstance(r, str) else json.dumps(r) for r in rows) + "\n", encoding="utf-8")
    return path


SQUAD = {
    "version": "v2.0",
    "data": [
        {
            "title": "Harbour_Town",
            "paragraphs": [
                {
                    "context": "The harbour  reopened on Friday.\nDock workers ended their strike.",
                    "qas": [
                        {
                            "id": "a1",
                            "question": "When did the harbour reopen?",
                            "answers": [{"text": "Friday", "answer_start": 25}, {"text": "Friday", "answer_start": 25}],
                        },
                        {"id": "a2", "question": "Who bought the harbour?", "answers": [], "is_impossible": True},
                    ],
                },
                {
                    "context": "The mayor opened a new bridge.",
                    "qas": [
                        {"id": "a3", "question": "What did the mayor open?", "answers": [{"text": "a new bridge"}]}
                    ],
                },
            ],
        }
    ],
}


def test_jsonl_questions_with_aliases_abstentions_and_dialogues(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "q.jsonl",
        [
            {"id": "one", "question": "Who?", "answers": ["Ann"], "gold_doc_ids": ["doc 1"], "evidence": "Ann said"},
            {"qid": "two", "question": "Which show?", "answer_text": ["“Squid Game”"], "question_date": "2022/06/16"},
            {"question": "Unknown?", "answers": []},
            {"question": "Also unknown?", "answers": ["x"], "answerable": False},
            {
                "id": "dlg",
                "turns": [
                    {"question": "What did China say?", "answers": ["friendly"]},
                    {"question": "Who said that?", "answers": ["Hua"]},
                ],
            },
        ],
    )
    s = load_eval_set(path)
    assert s.format == "jsonl" and len(s.questions) == 5 and s.corpus is None
    one, two, three, four, dlg = s.questions
    assert (one.id, one.answers, one.gold_doc_ids, one.evidence) == ("one", ("Ann",), ("doc-1",), ("Ann said",))
    assert two.id == "two" and two.answers == ("“Squid Game”",) and two.as_of == "2022-06-16"
    assert one.as_of is None
    assert not three.answerable and three.id == "q3"  # no id: q<line>
    assert not four.answerable and four.answers == ()
    assert [t.question for t in dlg.turns] == ["What did China say?", "Who said that?"]
    assert s.sample(2, seed=1).questions == s.sample(2, seed=1).questions
    assert len(s.sample(2, seed=1).questions) == 2


def test_multiple_choice_questions_keep_their_choices_and_right_indexes(tmp_path: Path) -> None:
    path = write_jsonl(
        tmp_path / "quiz.jsonl",
        [
            {
                "qid": "20220617_1",
                "question": "Which continent will require a common charger?",
                "choices": ["Europe", " North America ", "Asia", "Africa"],
                "answer_index": [0],
                "answer_text": ["Europe"],
            },
            {"question": "Which two?", "answers": ["b", "c"], "choices": ["a", "b", "c"], "answer_index": [1, 2, 1]},
            {"question": "Which one?", "answers": ["b"], "choices": ["a", "b"], "answer_index": 1},
            {"question": "No choices?", "answers": ["x"]},
        ],
    )
    quiz, two, one, plain = load_eval_set(path).questions
    assert quiz.choices == ("Europe", "North America", "Asia", "Africa") and quiz.correct_choices == (0,)
    assert quiz.answers == ("Europe",) and quiz.answerable
    assert two.correct_choices == (1, 2) and one.correct_choices == (1,)
    assert plain.choices == () and plain.correct_choices == ()


def test_the_realtimeqa_quiz_reads_with_its_choices() -> None:
    path = ROOT.parent / "shared" / "evaldata" / "realtimeqa_news" / "queries_with_gold.jsonl"
    if not path.is_file():
        pytest.skip("the public evaluation data (../shared/evaldata) is not on this machine")
    questions = load_eval_set(path).questions
    assert all(len(q.choices) == 4 and len(q.correct_choices) == 1 for q in questions)
    assert all(q.answers and q.choices[q.correct_choices[0]] in q.answers for q in questions)


def test_squad_json_v2_with_its_paragraphs_as_corpus(tmp_path: Path) -> None:
    path = tmp_path / "squad.json"
    path.write_text(json.dumps(SQUAD))
    s = load_eval_set(path)
    assert s.format == "squad-v2.0"
    assert [q.id for q in s.questions] == ["a1", "a2", "a3"]
    a1, a2, a3 = s.questions
    assert a1.answers == ("Friday",) and a1.gold_doc_ids == ("Harbour_Town-0",)
    assert not a2.answerable and a2.answers == ()
    assert a3.gold_doc_ids == ("Harbour_Town-1",)
    assert [(a.doc_id, a.title) for a in s.corpus] == [
        ("Harbour_Town-0", "Harbour Town"),
        ("Harbour_Town-1", "Harbour Town"),
    ]
    assert s.corpus[0].text == "The harbour reopened on Friday.\nDock workers ended their strike."
    assert corpus_articles(path) == s.corpus


def test_hotpot_contexts_pool_into_one_corpus(tmp_path: Path) -> None:
    ctx = [
        {"title": "A", "paragraph_text": "Alpha is a town.", "is_supporting": True},
        {"title": "B", "paragraph_text": "Beta is a river.", "is_supporting": False},
    ]
    path = write_jsonl(
        tmp_path / "hotpot.jsonl",
        [
            {
                "question_id": "h1",
                "question_text": "What is Alpha?",
                "answers_objects": [{"spans": ["a town"]}],
                "contexts": ctx,
            },
            {
                "question_id": "h2",
                "question_text": "What is Beta?",
                "answers_objects": [{"spans": ["a river"]}],
                "contexts": [dict(ctx[1], is_supporting=True), ctx[0] | {"is_supporting": False}],
            },
        ],
    )
    s = load_eval_set(path)
    assert s.format == "hotpotqa" and len(s.corpus) == 2
    h1, h2 = s.questions
    assert h1.answers == ("a town",) and len(h1.gold_doc_ids) == 1
    assert h1.gold_doc_ids != h2.gold_doc_ids and set(h1.gold_doc_ids + h2.gold_doc_ids) == {a.doc_id for a in s.corpus}


def test_beir_folder_retrieval_only_unless_queries_have_answers(tmp_path: Path) -> None:
    write_jsonl(tmp_path / "corpus.jsonl", [{"_id": "d1", "title": "T1", "text": "one"}, {"_id": "d2", "text": "two"}])
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "first?"}, {"_id": "q2", "text": "second?"}])
    (tmp_path / "qrels.tsv").write_text("query_id\tdoc_id\trelevance\nq1\td1\t1\nq2\td2\t1\nq2\td1\t0\n")
    s = load_eval_set(tmp_path)
    assert s.format == "beir" and s.retrieval_only
    assert [q.gold_doc_ids for q in s.questions] == [("d1",), ("d2",)]
    assert [a.title for a in s.corpus] == ["T1", "d2"]
    write_jsonl(tmp_path / "queries.jsonl", [{"_id": "q1", "text": "first?", "answers": ["one"]}])
    assert not load_eval_set(tmp_path).retrieval_only


@pytest.mark.parametrize(
    ("lines", "message"),
    [
        (['{"question": "ok?", "answers": ["a"]}', '{"question": "ok2?"}', "{not json"], ":3: invalid JSON"),
        (['{"answers": ["a"]}'], ":1: missing or empty 'question'"),
        (['{"question": "q?", "answers": 5}'], ":1: 'answers' must be"),
        (['{"question": "q?", "answerable": "no"}'], ":1: 'answerable' must be"),
        (['{"question": "q?", "turns": []}'], ":1: 'turns' must be"),
        (['{"question": "q?", "as_of": "last week"}'], ":1: 'as_of' 'last week' is not a date"),
        (['["a list"]'], ":1: expected a JSON object"),
        (['{"question": "q?", "answers": ["a"], "choices": "a"}'], ":1: 'choices' must be a list"),
        (['{"question": "q?", "answers": ["a"], "choices": ["a", ""], "answer_index": 0}'], ":1: 'choices' must be"),
        (['{"question": "q?", "answers": ["a"], "choices": ["a", "b"]}'], ":1: 'answer_index' must be"),
        (['{"question": "q?", "answers": ["a"], "choices": ["a", "b"], "answer_index": [2]}'], ":1: 'answer_index'"),
        (['{"question": "q?", "answers": ["a"], "choices": ["a", "b"], "answer_index": true}'], ":1: 'answer_index'"),
        (['{"id": "x", "question": "a?"}', '{"id": "x", "question": "b?"}'], "'x' is used twice"),
    ],
)
def test_malformed_jsonl_names_file_line_and_problem(tmp_path: Path, lines: list[str], message: str) -> None:
    path = write_jsonl(tmp_path / "bad.jsonl", lines)
    with pytest.raises(EvalDataError) as err:
        load_eval_set(path)
    assert str(path) in str(err.value) and message in str(err.value)


def test_malformed_squad_and_missing_files(tmp_path: Path) -> None:
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps({"data": [{"title": "T", "paragraphs": [{"qas": []}]}]}))
    with pytest.raises(EvalDataError, match=r"paragraphs\[0\]: missing 'context'"):
        load_eval_set(bad)
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n\n")
    with pytest.raises(EvalDataError, match="empty"):
        load_eval_set(empty)
    with pytest.raises(EvalDataError, match="no such file"):
        load_eval_set(tmp_path / "absent.jsonl")


def test_the_reported_speech_question_set_and_labels_are_well_formed() -> None:
    data = ROOT / "benchmarks" / "data"
    questions = load_eval_set(data / "speech_questions.jsonl").questions
    kinds = {q["id"]: q["kind"] for q in map(json.loads, (data / "speech_questions.jsonl").read_text().splitlines())}
    assert len(questions) == len(kinds) >= 130
    who = [q for q in questions if kinds[q.id] == "who-said"]
    unanswerable = [q for q in questions if kinds[q.id] == "who-said-unanswerable"]
    assert len(who) >= 80 and len(unanswerable) >= 25
    assert all(q.answerable and q.answers and q.as_of for q in who)
    assert all(not q.answerable and not q.answers for q in unanswerable)
    labels = [json.loads(line) for line in (data / "speech_labels.jsonl").read_text().splitlines()]
    assert len(labels) >= 150 and len({label["doc_id"] for label in labels}) >= 20
    kinds_of_mention = {"name", "pronoun", "role", "document", "continuation"}
    for label in labels:
        assert label["kind"] in kinds_of_mention and label["speaker"] and label["split"] in ("dev", "dev-2", "test")
        assert label["start"] < label["end"] and len(label["sha1"]) == 40
        assert (label["mention_start"] is None) == (label["kind"] == "continuation")
