"""The `qa` command in a subprocess, as a user runs it."""

from __future__ import annotations

import json
import re
import subprocess
import sys
from pathlib import Path

from .conftest import SEEDS

QA = str(Path(sys.executable).parent / "qa")


def run(*args: str, stdin: str | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run([QA, *args], capture_output=True, text=True, input=stdin, timeout=300)


def test_index_then_ask_json_round_trip(tmp_path: Path) -> None:
    corpus = tmp_path / "corpus"
    corpus.mkdir()
    (corpus / "china.txt").write_text((SEEDS / "2021-08-16-china-taliban.txt").read_text(encoding="utf-8"))
    (corpus / "broken.txt").write_bytes(b"\x00\xff\x00binary")
    (corpus / "blank.md").write_text("  \n")
    index_dir = tmp_path / "idx"

    built = run("index", str(corpus), "--index", str(index_dir))
    assert built.returncode == 0, built.stderr
    assert "Indexed 1 article(s)" in built.stdout
    assert "broken.txt" in built.stderr and "binary" in built.stderr
    assert "blank.md" in built.stderr and "empty" in built.stderr

    asked = run("ask", "What did China say about the Taliban?", "--index", str(index_dir), "--json")
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert set(answer) >= {"question", "text", "citations", "abstained", "timings"}
    assert not answer["abstained"] and "friendly and cooperative" in answer["text"]
    text = (corpus / "china.txt").read_text(encoding="utf-8")
    keys = {"number", "doc_id", "title", "source", "date", "url", "quote", "start", "end", "score", "speaker"}
    for c in answer["citations"]:
        assert set(c) == keys
        assert text[c["start"] : c["end"]] == c["quote"]  # the seed has no headline and clean whitespace
    speakers = [c["speaker"] for c in answer["citations"] if c["speaker"]]
    hua = next(s for s in speakers if s["name"] == "Hua Chunying")  # "she said", resolved at indexing
    assert text[hua["start"] : hua["end"]] == "Hua Chunying" and hua["role"] == "Chinese foreign ministry spokesperson"

    who = run("ask", "Who said “We welcome this”?", "--index", str(index_dir))
    assert who.returncode == 0, who.stderr
    short, _, rest = who.stdout.partition("\n\n")
    assert short.startswith("Hua Chunying [")
    assert rest.startswith("Hua Chunying (Chinese foreign ministry spokesperson): “")
    assert "said by Hua Chunying (Chinese foreign ministry spokesperson)" in who.stdout

    plain = run("ask", "What did Russia say about the Taliban?", "--index", str(index_dir))
    assert plain.returncode == 0 and "do not answer" in plain.stdout


def test_chat_keeps_the_conversation(seed_index_dir: Path) -> None:
    out = run(
        "chat",
        "--index",
        str(seed_index_dir),
        stdin="What did Pakistan's prime minister say?\nWhere was he when he said it?\n/quit\n",
    )
    assert out.returncode == 0, out.stderr
    assert "Imran Khan" in out.stdout and "(searched:" in out.stdout and "Islamabad" in out.stdout


def test_clear_errors(tmp_path: Path) -> None:
    missing = run("ask", "Anything?", "--index", str(tmp_path / "none"))
    assert missing.returncode == 1 and "No index found" in missing.stderr and "qa index" in missing.stderr
    (tmp_path / "empty").mkdir()
    empty = run("index", str(tmp_path / "empty"), "--index", str(tmp_path / "idx"))
    assert empty.returncode == 1 and "No articles could be loaded" in empty.stderr
    assert not (tmp_path / "idx").exists()
    blank = run("ask", "   ", "--index", str(tmp_path / "none"))
    assert blank.returncode != 0 and "Traceback" not in blank.stderr


def test_help_on_every_command() -> None:
    for command in ([], ["index"], ["remove"], ["articles"], ["ask"], ["chat"], ["eval"], ["serve"]):
        out = run(*command, "--help")
        assert out.returncode == 0 and "usage: qa" in out.stdout


def test_incremental_index_list_and_remove(tmp_path: Path) -> None:
    index_dir = str(tmp_path / "idx")
    assert run("index", str(SEEDS), "--index", index_dir).returncode == 0
    news = tmp_path / "news"
    news.mkdir()
    (news / "port.md").write_text("# Harbour reopens\n\nThe city harbour reopened on Friday after a strike.")
    added = run("index", str(SEEDS), str(news), "--index", index_dir)
    assert added.returncode == 0, added.stderr
    assert "Added 1, updated 0, unchanged 1 article(s) (1 passage(s) embedded)" in added.stdout
    listed = run("articles", "--index", index_dir, "--json")  # newest first: the undated port.md last
    rows = [json.loads(line) for line in listed.stdout.splitlines()]
    assert [(r["doc_id"], r["title"], r["passages"]) for r in rows][1] == ("port", "Harbour reopens", 1)
    assert set(rows[0]) == {"doc_id", "title", "date", "source", "url", "passages"} and "more:" not in listed.stderr
    first = run("articles", "--index", index_dir, "--limit", "1")
    assert first.stdout.startswith("2021-08-16-china-taliban\tChina Taliban (2021-08-16)\t")
    assert len(first.stdout.splitlines()) == 1 and "(1 more: --offset 1 lists them)" in first.stderr
    second = run("articles", "--index", index_dir, "--offset", "1", "--json")
    assert [json.loads(line)["doc_id"] for line in second.stdout.splitlines()] == [
        "port"
    ] and "more:" not in second.stderr
    bad = run("articles", "--index", index_dir, "--offset", "-1")
    assert bad.returncode == 1 and "offset must be a whole number" in bad.stderr
    removed = run("remove", "port", "--index", index_dir)
    assert removed.returncode == 0 and "Removed 1 article(s): port; 1 left" in removed.stdout
    unknown = run("remove", "port", "--index", index_dir)
    assert unknown.returncode == 1 and "Not in the index: 'port'" in unknown.stderr and "qa articles" in unknown.stderr
    asked = run("ask", "When did the city harbour reopen?", "--index", index_dir, "--json")
    assert all(c["doc_id"] != "port" for c in json.loads(asked.stdout)["citations"])
    rebuilt = run("index", str(news), "--index", index_dir, "--rebuild")
    assert rebuilt.returncode == 0 and "Indexed 1 article(s)" in rebuilt.stdout


def test_ask_as_of_a_day(seed_index_dir: Path) -> None:
    """The seed article is dated 2021-08-16: asked as of the day before, the articles do not say yet."""
    question = "What did China say about the Taliban?"
    before = run("ask", question, "--index", str(seed_index_dir), "--as-of", "2021-08-15", "--json")
    assert before.returncode == 0, before.stderr
    assert json.loads(before.stdout)["abstained"]
    after = run("ask", question, "--index", str(seed_index_dir), "--as-of", "2021-08-20", "--json")
    assert not json.loads(after.stdout)["abstained"]
    bad = run("ask", question, "--index", str(seed_index_dir), "--as-of", "soon")
    assert bad.returncode != 0 and "as_of='soon' is not a date" in bad.stderr


def test_output_cut_short_by_a_pipe_is_no_crash(seed_index_dir: Path) -> None:
    """`qa ask ... | head`: the reader may leave before the answer is written (here at once); no traceback."""
    command = f"{QA} ask 'What did China say about the Taliban?' --index {seed_index_dir}"
    done = subprocess.run(["bash", "-c", f"{command} | true"], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0  # the pipeline's status is that of `true`
    assert "Traceback" not in done.stderr and "BrokenPipe" not in done.stderr


def test_app_py_is_qa_serve_with_the_same_options() -> None:
    """The README's flags work for both front doors: `python app.py` takes every option of `qa serve`."""
    app = subprocess.run([sys.executable, str(SEEDS.parent / "app.py"), "--help"], capture_output=True, text=True)
    serve = run("serve", "--help")
    assert app.returncode == serve.returncode == 0
    options = sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", serve.stdout)))
    assert {"--llm", "--strictness", "--store", "--embed-model", "--host", "--port", "--auth-file"} <= set(options)
    assert sorted(set(re.findall(r"(?<![\w-])--[a-z][a-z-]+", app.stdout))) == options
