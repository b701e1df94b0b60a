"""Bad input never crashes and never silently disappears.

Every file below is indexed, skipped or refused, and the report says which and why:
through ``load_articles`` and through ``qa index``. Bad questions get a clear message.
"""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import pytest

from qa import Assistant
from qa.errors import InvalidQuestionError
from qa.ingest.articles import load_articles
from qa.types import LoadReport

from .conftest import SEEDS

QA = str(Path(sys.executable).parent / "qa")
LIMIT = 20_000  # Config.max_file_bytes for these tests
STORY = "Harbour reopens\n\nThe city harbour reopened on Friday after a two-week strike by dock workers."


def _noise(size: int) -> bytes:
    """Random bytes without any NUL (the easy binary test does not catch them)."""
    rng = random.Random(7)
    return bytes(rng.randrange(1, 256) for _ in range(size))


@dataclass(frozen=True)
class Case:
    """Files of one kind of bad input, and what must become of each."""

    files: dict[str, bytes]
    indexed: dict[str, str]  # doc_id -> a phrase its text must contain
    problems: dict[str, str]  # file name (or name:line / name[i]) -> words of the reason
    notes: tuple[str, ...] = ()  # names whose problem is a note (indexed anyway), not a skip


def _json(value: object) -> bytes:
    return json.dumps(value).encode("utf-8")


CASES: dict[str, Case] = {
    "empty file": Case({"empty.txt": b""}, {}, {"empty.txt": "file is empty"}),
    "whitespace only": Case({"blank.md": b" \n\t\r\n  "}, {}, {"blank.md": "file is empty"}),
    "binary with NUL bytes": Case(
        {"photo.txt": b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(200)},
        {},
        {"photo.txt": "binary file (a PNG image)"},
    ),
    "binary without NUL bytes": Case({"noise.txt": _noise(4000)}, {}, {"noise.txt": "binary file"}),
    "PDF saved as .txt": Case({"report.txt": b"%PDF-1.7\n" + _noise(500)}, {}, {"report.txt": "a PDF document"}),
    "control characters only": Case({"ctrl.txt": b"\x01\x02\x03\x07\x1b[0m" * 20}, {}, {"ctrl.txt": "binary"}),
    "Latin-1": Case(
        {"cafe.txt": "Café owners in Málaga protest against the new tax on Monday.".encode("latin-1")},
        {"cafe": "Café owners in Málaga"},
        {"cafe.txt": "not UTF-8; decoded as Windows-1252"},
        notes=("cafe.txt",),
    ),
    "UTF-16 with BOM": Case(
        {"zurich.txt": "Zürich votes on Sunday about the new tram line.".encode("utf-16")},
        {"zurich": "Zürich votes on Sunday"},
        {"zurich.txt": "decoded as UTF-16 (byte order mark)"},
        notes=("zurich.txt",),
    ),
    "UTF-16 without BOM": Case(
        {"bern.txt": "Bern opens a new library on Friday.".encode("utf-16-le")},
        {"bern": "Bern opens a new library"},
        {"bern.txt": "decoded as UTF-16-LE (no byte order mark)"},
        notes=("bern.txt",),
    ),
    "UTF-8 with a stray byte": Case(
        {"geneva.txt": "Genève and Zürich sign a rail deal \xff today.".encode().replace(b"\xc3\xbf", b"\xff")},
        {"geneva": "Genève and Zürich sign a rail deal"},
        {"geneva.txt": "1 unreadable byte sequence(s) replaced"},
        notes=("geneva.txt",),
    ),
    "over the size limit": Case(
        {"huge.txt": b"All work and no play. " * (LIMIT // 20)}, {}, {"huge.txt": f"over the limit of {LIMIT:,}"}
    ),
    "HTML with scripts": Case(
        {
            "page.html": b"<html><head><title>Bridge opens</title><script>alert('head')</script></head><body>"
            b"<article><h1>Bridge opens</h1><p onclick=\"alert('p')\">The new bridge opened to traffic on Tuesday "
            b"after three years of construction work in the city centre.</p><script>document.write('evil')</script>"
            b"<p>Officials said the bridge would cut journey times for thousands of commuters.</p></article>"
            b"<noscript>enable scripts</noscript></body></html>"
        },
        {"page": "The new bridge opened to traffic on Tuesday"},
        {},
    ),
    "HTML that is only scripts": Case(
        {"app.html": b"<html><body><script>var x = 1; alert(x);</script></body></html>"},
        {},
        {"app.html": "no article text found in the HTML"},
    ),
    "JSONL with broken lines": Case(
        {
            "feed.jsonl": b"\n".join(
                [
                    _json({"id": "one", "text": "First story about the harbour strike ending."}),
                    b'{"id": "two", "text": "cut off',
                    _json({"id": "three", "text": "Third story about the new bridge."}),
                    b"[1, 2, 3]",
                    b"",
                    _json({"id": "five", "title": "no text here"}),
                ]
            )
        },
        {"one": "harbour strike", "three": "new bridge"},
        {
            "feed.jsonl:2": "invalid JSON",
            "feed.jsonl:4": "expected a JSON object, got a list",
            "feed.jsonl:6": "no 'text'",
        },
    ),
    "JSON with wrong fields": Case(
        {
            "wrong.json": _json(
                [
                    {"title": "Text missing"},
                    {"text": 42},
                    {"text": ["a", "list"]},
                    {"text": "   "},
                    {"id": {"nested": 1}, "title": ["A", "list"], "date": 20220101, "text": "Trams run again today."},
                    "just a string",
                ]
            )
        },
        {"wrong-": "Trams run again today."},
        {
            "wrong.json[0]": "no 'text' field",
            "wrong.json[1]": "must be a string, not a number",
            "wrong.json[2]": "must be a string, not a list",
            "wrong.json[3]": "the 'text' field is empty",
            "wrong.json[4]": "field 'title' is a list, ignored",
            "wrong.json[5]": "expected a JSON object, got a string",
        },
        notes=("wrong.json[4]",),
    ),
    "JSON with nothing in it": Case(
        {"none.json": b"[]", "nothing.jsonl": b"\n\n"}, {}, {"none.json": "no articles", "nothing.jsonl": "empty"}
    ),
    "JSON nested too deeply": Case({"deep.json": b"[" * 15_000}, {}, {"deep.json": "nested too deeply"}),
    "JSON with a lone surrogate": Case(
        {"odd.json": b'{"id": "odd", "title": "Bad \\ud800 title", "text": "Ferries run \\udc00again on Monday."}'},
        {"odd": "Ferries run again on Monday."},
        {},
    ),
    "duplicated articles": Case(
        {
            "a-story.json": _json({"id": "harbour-story", "text": STORY}),
            "b-copy.txt": STORY.replace(" after", "  after").encode(),  # equal once whitespace is normalised
            "c-same-id.json": _json({"id": "harbour-story", "text": "Another text under a taken id."}),
        },
        {"harbour-story": "harbour reopened"},
        {
            "b-copy.txt": "duplicate of article 'harbour-story'",
            "c-same-id.json": "doc_id 'harbour-story' is already used",
        },
    ),
    "'..' in names and ids": Case(
        {
            "report..final.txt": b"The council approved the final report on Wednesday.",
            "..hidden-looking.txt": b"A file whose name starts with two dots.",
            "climb.json": _json({"id": "../../etc/passwd", "text": "An id that tries to climb out of the folder."}),
        },
        {"report..final": "final report", "etc/passwd": "tries to climb"},
        {"..hidden-looking.txt": "hidden"},
    ),
    "unsupported and hidden files": Case(
        {"notes.pdf": b"%PDF-1.4", "README": b"plain", ".DS_Store": b"\x00\x01"},
        {},
        {
            "notes.pdf": "unsupported file type '.pdf'",
            "README": "unsupported file type '(none)'",
            ".DS_Store": "hidden",
        },
    ),
}


def _write(folder: Path, files: dict[str, bytes]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, data in files.items():
        (folder / name).write_bytes(data)
    return folder


def _problems_by_name(report: LoadReport, folder: Path) -> dict[str, tuple[str, bool]]:
    return {str(Path(p.path).relative_to(folder)): (p.reason, p.skipped) for p in report.problems}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_file_is_indexed_skipped_or_refused_with_the_reason(name: str, tmp_path: Path) -> None:
    case = CASES[name]
    folder = _write(tmp_path / "in", case.files)
    report = load_articles([folder], max_file_bytes=LIMIT)
    texts = {a.doc_id: a.text for a in report.articles}
    assert len(texts) == len(case.indexed), texts
    for doc_id, phrase in case.indexed.items():  # ids given by prefix: records without an id get a hash
        assert any(d.startswith(doc_id) and phrase in t for d, t in texts.items()), (doc_id, texts)
    problems = _problems_by_name(report, folder)
    assert set(problems) == set(case.problems), problems
    for where, words in case.problems.items():
        reason, skipped = problems[where]
        assert words in reason, (where, reason)
        assert skipped == (where not in case.notes), (where, reason)
    # nothing silently disappears: every file is an article's source or has a problem reported
    sources = {str(Path(a.path or "").relative_to(folder)).split(":")[0].split("[")[0] for a in report.articles}
    reported = {w.split(":")[0].split("[")[0] for w in problems}
    assert set(case.files) <= sources | reported
    for article in report.articles:  # what is indexed is clean, single-line metadata and safe ids
        assert ".." not in article.doc_id.split("/") and not article.doc_id.startswith("/")
        assert "\n" not in article.title and not any(0xD800 <= ord(c) <= 0xDFFF for c in article.title + article.text)
        article.text.encode("utf-8")


def test_a_path_with_dot_dot_is_read_with_a_clean_id(tmp_path: Path) -> None:
    _write(tmp_path / "news", {"story.txt": STORY.encode()})
    (tmp_path / "other").mkdir()
    report = load_articles([tmp_path / "other" / ".." / "news" / "story.txt", tmp_path / "other" / ".." / "news"])
    assert [a.doc_id for a in report.articles] == ["story"]
    assert [p.reason for p in report.problems] == ["duplicate of article 'story'"]


def test_every_bad_input_through_qa_index_then_ask(tmp_path: Path) -> None:
    """All the cases at once through the command: it indexes the good, names every bad file, then answers."""
    folder = tmp_path / "corpus"
    for i, case in enumerate(CASES.values()):
        _write(folder / f"case-{i:02d}", case.files)
    _write(folder, {"china.txt": (SEEDS / "2021-08-16-china-taliban.txt").read_bytes()})
    env = {**os.environ, "QA_MAX_FILE_BYTES": str(LIMIT)}
    out = subprocess.run(
        [QA, "index", str(folder), "--index", str(tmp_path / "idx")],
        capture_output=True,
        text=True,
        env=env,
        timeout=600,
    )
    assert out.returncode == 0, out.stderr
    assert "Traceback" not in out.stderr
    expected_articles = 1 + sum(len(c.indexed) for c in CASES.values())
    assert f"Indexed {expected_articles} article(s)" in out.stdout
    skips = sum(len(c.problems) - len(c.notes) for c in CASES.values())
    assert f"{skips} skipped (see warnings)" in out.stdout
    warnings = [line for line in out.stderr.splitlines() if line.startswith("warning: ")]
    for case in CASES.values():
        for where, words in case.problems.items():
            verb = "note" if where in case.notes else "skipped"
            assert any(f"{where}: {verb}: " in w and words in w for w in warnings), (where, words)
    asked = subprocess.run(
        [QA, "ask", "When did the new bridge open?", "--index", str(tmp_path / "idx")],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert asked.returncode == 0 and "Tuesday" in asked.stdout, asked.stderr


# ---- questions ---------------------------------------------------------------------------

BAD_QUESTIONS = {
    "empty": ("", "empty"),
    "whitespace only": (" \n\t \r\n ", "empty"),
    "100 KB": ("Why? " * 20_000, "the limit is 2,000"),
    "control characters only": ("\x00\x01\x02\x1b\x7f\x85\x9b", "empty"),
    "lone surrogates only": ("\udcff\ud800", "empty"),
    "not text": (b"What did China say?", "must be text"),
}


@pytest.mark.parametrize("name", list(BAD_QUESTIONS))
def test_bad_question_gets_a_clear_message(name: str, assistant: Assistant) -> None:
    question, words = BAD_QUESTIONS[name]
    with pytest.raises(InvalidQuestionError, match=words):
        assistant.ask(question)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    "question",
    [
        "What did\x00 China\x07 say about\x1b[31m the Taliban?\x7f",
        "What did China say about the Taliban?\udcff\u0085",
        "\u202eWhat did China say about the Taliban?\u200b",
    ],
)
def test_control_characters_inside_a_question_are_dropped(question: str, assistant: Assistant) -> None:
    answer = assistant.ask(question)
    assert answer.question == "What did China say about the Taliban?"
    assert "friendly and cooperative" in answer.text


def test_odd_but_valid_questions_get_answers_not_errors(assistant: Assistant) -> None:
    for question in ("?", "!!!", "the of and", "🙂", "x" * 2_000, "中国对塔利班说了什么？"):
        answer = assistant.ask(question)
        assert answer.abstained or answer.citations


@pytest.mark.parametrize(
    ("question", "words"),
    [("\x01\x02 \x03", "empty"), ("Why? " * 20_000, "the limit is 2,000")],
)
def test_qa_ask_reports_bad_questions_without_a_traceback(question: str, words: str, seed_index_dir: Path) -> None:
    out = subprocess.run([QA, "ask", question, "--index", str(seed_index_dir)], capture_output=True, timeout=300)
    stderr = out.stderr.decode("utf-8", "replace")
    assert out.returncode == 1 and stderr.startswith("error: ") and words in stderr
    assert "Traceback" not in stderr


def test_qa_ask_with_undecodable_bytes_in_the_question(seed_index_dir: Path) -> None:
    out = subprocess.run(
        [QA, "ask", b"What did China say about the Taliban?\xff", "--index", str(seed_index_dir)],
        capture_output=True,
        timeout=300,
    )
    assert out.returncode == 0, out.stderr
    assert b"friendly and cooperative" in out.stdout
