"""Persisting and loading the index: same answers, nothing re-embedded, clear errors."""

from __future__ import annotations

import hashlib
import json
import logging
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.errors import (
    CorruptIndexError,
    IndexChangedError,
    IndexLockedError,
    IndexNotFoundError,
    ManifestMismatchError,
    NoArticlesError,
    UnknownArticleError,
)
from qa.index.durability import LOCK_FILE, WriteLock
from qa.index.versions import FORMAT_VERSION, MANIFEST, current_version
from qa.models import Models

from .conftest import SEED_DOC, SEEDS

FRESH_PROCESS = """
import json, sys
from qa import Assistant
assistant = Assistant.load(sys.argv[1])
answer = assistant.ask("What did China say about the Taliban?")
print(json.dumps({"answer": answer.to_dict(), "embedded": assistant.models.embedder().texts_encoded}))
"""


def test_manifest_describes_the_index(seed_index_dir: Path, config: Config) -> None:
    folder = current_version(seed_index_dir)
    manifest = json.loads((folder / MANIFEST).read_text())
    assert manifest["format_version"] == FORMAT_VERSION == 4
    assert manifest["embed_model"] == config.embed_model
    assert manifest["dimension"] == 384
    assert manifest["chunk_words"] == config.chunk_words
    assert list(manifest["articles"]) == ["2021-08-16-china-taliban"]
    assert len(manifest["articles"]["2021-08-16-china-taliban"]) == 64  # sha256
    # a SHA-256 for every other file of the version, FAISS and BM25 included
    files = {p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()} - {MANIFEST}
    assert set(manifest["files"]) == files
    assert {"faiss/segments.json", "articles/segments.json", "bm25/segments.json"} <= files
    assert any(f.startswith("faiss/") and f.endswith(".faiss") for f in files)  # the vectors' one segment
    assert not {"docstore.json", "index_store.json", "id_map.json", "default__vector_store.json"} & files
    assert any(f.startswith("bm25/") and f.endswith(".docs.npy") for f in files)  # BM25's one segment
    assert any(f.startswith("articles/") and f.endswith(".notes.jsonl") for f in files)  # the annotations
    spans = next(f for f in files if f.endswith(".passages.jsonl"))  # the passages' spans
    assert manifest["files"][spans] == hashlib.sha256((folder / spans).read_bytes()).hexdigest()


def test_load_in_fresh_process_gives_same_answer_without_embedding_corpus(
    seed_index_dir: Path, assistant: Assistant
) -> None:
    expected = assistant.ask("What did China say about the Taliban?")
    out = subprocess.run(
        [sys.executable, "-c", FRESH_PROCESS, str(seed_index_dir)], capture_output=True, text=True, check=True
    )
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert result["answer"]["text"] == expected.text
    assert result["answer"]["citations"] == [c.to_dict() for c in expected.citations]
    assert result["embedded"] == 1  # the question only: loading embedded no passage


def test_other_model_configured_raises_manifest_mismatch(seed_index_dir: Path) -> None:
    other = Config(embed_model="sentence-transformers/all-mpnet-base-v2")
    with pytest.raises(ManifestMismatchError) as err:
        Assistant.load(seed_index_dir, other, Models(other.embed_model))
    message = str(err.value)
    assert "all-mpnet-base-v2" in message and Config().embed_model in message
    assert "qa index" in message  # says how to rebuild


def test_other_chunking_configured_raises_manifest_mismatch(seed_index_dir: Path) -> None:
    with pytest.raises(ManifestMismatchError, match="chunk_words"):
        Assistant.load(seed_index_dir, Config(chunk_words=42))


def test_an_index_of_the_format_before_annotations_is_refused_with_the_rebuild_command(index_copy: Path) -> None:
    folder = current_version(index_copy)  # format 1 had no annotations: it cannot be read
    manifest = json.loads((folder / MANIFEST).read_text())
    manifest["format_version"] = 1
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with pytest.raises(ManifestMismatchError) as err:
        Assistant.load(index_copy)
    message = str(err.value)
    assert "format_version: index has 1, configuration has 4" in message
    assert f"qa index PATH... --index {index_copy} --rebuild" in message


def test_missing_index_error(tmp_path: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="qa index"):
        Assistant.load(tmp_path / "nothing-here")


def _flip_byte(path: Path, at: float = 0.5) -> None:
    data = bytearray(path.read_bytes())
    data[int(len(data) * at)] ^= 0x01
    path.write_bytes(bytes(data))


def _edit(path: Path) -> None:
    path.write_text(path.read_text().replace("China", "Chine"))


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


# (damage done to a file of the live version, what the error must name)
DAMAGE = {
    "BM25 file deleted": (lambda v: (v / "bm25" / "segments.json").unlink(), "bm25/segments.json is missing"),
    "BM25 postings torn": (lambda v: _truncate(next((v / "bm25").glob("*.docs.npy"))), ".docs.npy is damaged"),
    "segment ids torn": (lambda v: _truncate(next((v / "articles").glob("*.ids.json"))), ".ids.json is damaged"),
    "manifest torn": (lambda v: _truncate(v / MANIFEST), "manifest.json unreadable"),
    "manifest deleted": (lambda v: (v / MANIFEST).unlink(), "manifest.json is missing"),
    "CURRENT points outside": (lambda v: (v.parent / "CURRENT").write_text("../../etc"), "CURRENT names"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_damaged_index_file_is_detected_with_how_to_rebuild(
    damage: str, index_copy: Path, config: Config, models: Models
) -> None:
    harm, expected = DAMAGE[damage]
    harm(current_version(index_copy))
    with pytest.raises(CorruptIndexError) as err:
        Assistant.load(index_copy, config, models)
    message = str(err.value)
    assert expected in message
    assert f"qa index PATH... --index {index_copy} --rebuild" in message


def _bm25_segment_json(version: Path) -> Path:
    return next(p for p in (version / "bm25").glob("*.json") if p.name != "segments.json")


# (damage done to a file read a record at a time or when a search first needs it, what the error must name):
# loading does not read these files whole; each record, BM25 segment file and block of postings is checked
# against its checksum when a question reads it.
RECORD_DAMAGE = {
    "article text edited": (lambda v: _edit(next((v / "articles").glob("*[0-9a-f].jsonl"))), ".jsonl is damaged"),
    "annotations torn": (lambda v: _truncate(next((v / "articles").glob("*.notes.jsonl"))), ".notes.jsonl is damaged"),
    "passages torn": (lambda v: _truncate(next((v / "articles").glob("*.passages.jsonl"))), ".passages.jsonl is"),
    "BM25 postings flipped": (lambda v: _flip_byte(next((v / "bm25").glob("*.docs.npy")), 0.9), ".docs.npy is damaged"),
    "BM25 terms edited": (lambda v: _flip_byte(_bm25_segment_json(v), 0.5), ".json is damaged"),
    "FAISS vector flipped": (lambda v: _flip_byte(next((v / "faiss").glob("*.faiss")), 0.9), ".faiss is damaged"),
    "FAISS segment torn": (lambda v: _truncate(next((v / "faiss").glob("*.faiss"))), ".faiss is damaged"),
}


@pytest.mark.parametrize("damage", list(RECORD_DAMAGE))
def test_a_damaged_record_is_caught_when_a_question_reads_it_with_how_to_rebuild(
    damage: str, index_copy: Path, config: Config, models: Models
) -> None:
    harm, expected = RECORD_DAMAGE[damage]
    harm(current_version(index_copy))
    assistant = Assistant.load(index_copy, config, models)  # the record files are not read whole
    with pytest.raises(CorruptIndexError) as err:
        assistant.ask("What did China say about the Taliban?")
    message = str(err.value)
    assert expected in message and ("does not match its checksum" in message or "ends before byte" in message)
    assert f"qa index PATH... --index {index_copy} --rebuild" in message


def test_a_flipped_vector_byte_is_caught_only_by_the_checksum(index_copy: Path, config: Config, models: Models) -> None:
    """FAISS reads a damaged vector silently: a checksum is what catches it, the segment's own in the FAISS
    listing when the manifest has none, when a question first reads the segment."""
    folder = current_version(index_copy)
    _flip_byte(next((folder / "faiss").glob("*.faiss")), 0.9)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["files"]
    (folder / MANIFEST).write_text(json.dumps(manifest))
    loaded = Assistant.load(index_copy, config, models)
    assert len(loaded.articles()) == 1
    with pytest.raises(CorruptIndexError, match=r"\.faiss is damaged: it does not match its checksum"):
        loaded.ask("What did China say about the Taliban?")
    listing = json.loads((folder / "faiss" / "segments.json").read_text())
    del listing["held"]  # as written before the listing described its segments: they are read at load
    (folder / "faiss" / "segments.json").write_text(json.dumps(listing))
    assert len(Assistant.load(index_copy, config, models).articles()) == 1  # and nothing else notices


def test_index_without_checksums_loads_with_a_warning_and_gets_them_on_the_next_write(
    tmp_path: Path, index_copy: Path, config: Config, models: Models, caplog: pytest.LogCaptureFixture
) -> None:
    folder = current_version(index_copy)
    manifest = json.loads((folder / MANIFEST).read_text())
    del manifest["files"]  # as written before checksums existed
    (folder / MANIFEST).write_text(json.dumps(manifest))
    with caplog.at_level(logging.WARNING, logger="qa.index.passage_index"):
        old = Assistant.load(index_copy, config, models)
    assert any("no file checksums" in r.getMessage() for r in caplog.records)
    assert "friendly and cooperative" in old.ask("What did China say about the Taliban?").text
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "port.txt").write_text(HARBOUR, encoding="utf-8")
    old.add(tmp_path / "news", show_progress=False)
    assert "files" in json.loads((current_version(index_copy) / MANIFEST).read_text())


def test_rebuild_replaces_the_index_and_leaves_no_temporary_folders(
    tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    (tmp_path / "new").mkdir()
    (tmp_path / "new" / "port.txt").write_text(
        "Harbour reopens\n\nThe city harbour reopened on Friday after a two-week strike by dock workers.",
        encoding="utf-8",
    )
    rebuilt = Assistant.from_articles([SEEDS, tmp_path / "new"], index_copy, config, models, show_progress=False)
    assert len(rebuilt.articles()) == 2
    reloaded = Assistant.load(index_copy, config, models)
    answer = reloaded.ask("When did the city harbour reopen?")
    assert "Friday" in answer.text and answer.citations[0].doc_id == "port"
    assert sorted(p.name for p in index_copy.iterdir()) == ["CURRENT", current_version(index_copy).name]


def test_empty_folder_raises_no_articles(tmp_path: Path, config: Config, models: Models) -> None:
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(NoArticlesError, match="empty.txt"):
        Assistant.from_articles([tmp_path], config=config, models=models, show_progress=False)


HARBOUR = "Harbour reopens\n\nThe city harbour reopened on Friday after a two-week strike by dock workers."


def test_incremental_add_embeds_only_new_articles(tmp_path: Path, index_copy: Path, config: Config) -> None:
    models = Models(config.embed_model, config.cross_encoder)
    assistant = Assistant.load(index_copy, config, models)
    before = len(assistant.index)
    folder = tmp_path / "more"
    folder.mkdir()
    (folder / "port.txt").write_text(HARBOUR, encoding="utf-8")
    (folder / "copy-of-seed.txt").write_text((SEEDS / "2021-08-16-china-taliban.txt").read_text(encoding="utf-8"))
    update = assistant.add([SEEDS, folder], show_progress=False)
    assert update.added == ("port",) and update.unchanged == ("2021-08-16-china-taliban",)
    assert update.passages_embedded == 1
    assert models.embedder().texts_encoded == 1  # the new passage only: the seed was not embedded again
    assert any("duplicate" in p.reason for p in update.problems)
    assert len(assistant.index) == before + 1
    reloaded = Assistant.load(index_copy, config, models)
    answer = reloaded.ask("When did the city harbour reopen?")
    assert answer.citations and answer.citations[0].doc_id == "port" and "Friday" in answer.text


def test_changed_article_is_replaced(tmp_path: Path, index_copy: Path, config: Config, models: Models) -> None:
    assistant = Assistant.load(index_copy, config, models)
    news = tmp_path / "news"
    news.mkdir()
    (news / "port.txt").write_text(HARBOUR, encoding="utf-8")
    assistant.add(news, show_progress=False)
    (news / "port.txt").write_text(HARBOUR.replace("Friday", "Saturday"), encoding="utf-8")
    update = assistant.add(news, show_progress=False)
    assert update.replaced == ("port",)
    answer = Assistant.load(index_copy, config, models).ask("When did the city harbour reopen?")
    assert "Saturday" in answer.text and "Friday" not in answer.text
    assert assistant.index.passage_count("port") == 1


def test_remove_deletes_everywhere_and_is_never_cited(
    tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    assistant = Assistant.load(index_copy, config, models)
    seed_passages = len(assistant.index)
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "port.txt").write_text(HARBOUR, encoding="utf-8")
    (tmp_path / "news" / "bridge.txt").write_text(
        "Bridge opens\n\nThe mayor opened the new river bridge on Tuesday morning.", encoding="utf-8"
    )
    assistant.add(tmp_path / "news", show_progress=False)
    assert assistant.remove("port") == ["port"]
    # a later add gets FAISS ids that collide with nothing left in the index
    (tmp_path / "news" / "school.txt").write_text(
        "School built\n\nA school for 600 pupils was built in the north of the city.", encoding="utf-8"
    )
    assistant.add(tmp_path / "news" / "school.txt", show_progress=False)
    for loaded in (assistant, Assistant.load(index_copy, config, models)):
        assert [a.doc_id for a in loaded.articles()] == ["2021-08-16-china-taliban", "bridge", "school"]
        assert len(loaded.index) == seed_passages + 2
        hits = loaded.search("When did the city harbour reopen after the dock strike?", top_k=50)
        assert "port" not in {h.passage.doc_id for h in hits}
        assert all(c.doc_id != "port" for c in loaded.ask("When did the city harbour reopen?").citations)
        assert "Tuesday" in loaded.ask("When did the mayor open the river bridge?").text
        assert "600" in loaded.ask("How many pupils does the new school have?").text
    with pytest.raises(UnknownArticleError, match="no-such-id"):
        assistant.remove(["bridge", "no-such-id"])
    assert "bridge" in {a.doc_id for a in assistant.articles()}  # nothing removed on error


# ---- one writer at a time --------------------------------------------------------------

HOLD_LOCK = """
import sys
from qa.index.durability import WriteLock
with WriteLock(sys.argv[1]):
    print("locked", flush=True)
    sys.stdin.read()
"""


def test_a_second_writer_in_the_same_process_is_refused(tmp_path: Path) -> None:
    with WriteLock(tmp_path) as lock:
        with pytest.raises(IndexLockedError) as err:
            WriteLock(tmp_path).__enter__()
        assert str(lock.path) in str(err.value) and f"pid {os.getpid()}" in str(err.value)
    assert not lock.path.exists()
    with WriteLock(tmp_path):  # released: free again
        pass


def test_concurrent_writers_are_refused_not_interleaved(
    tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    towns = _towns(tmp_path / "towns", 20)
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "port.txt").write_text(HARBOUR, encoding="utf-8")
    here = Assistant.load(index_copy, config, models)
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, "add", str(index_copy), str(towns), "pause"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    assert writer.stdin is not None and writer.stdout is not None
    assert writer.stdout.readline().strip() == "loaded"
    assert writer.stdout.readline().strip() == "paused"  # it holds the lock and waits for us
    lock = index_copy / LOCK_FILE
    assert f'"pid": {writer.pid}' in lock.read_text(encoding="utf-8")
    for attempt in (lambda: here.add(tmp_path / "news", show_progress=False), lambda: here.remove(SEED_DOC)):
        with pytest.raises(IndexLockedError) as err:
            attempt()
        assert str(lock) in str(err.value) and f"pid {writer.pid}" in str(err.value)
    writer.stdin.write("go on\n")
    writer.stdin.close()
    assert writer.wait(timeout=300) == 0
    # the other writer's change stands; this assistant's copy is now stale, so writing is refused
    with pytest.raises(IndexChangedError, match="Load the index again"):
        here.add(tmp_path / "news", show_progress=False)
    again = Assistant.load(index_copy, config, models)
    assert len(again.articles()) == 21
    assert again.add(tmp_path / "news", show_progress=False).added == ("port",)
    final = Assistant.load(index_copy, config, models)
    assert len(final.articles()) == 22 and "Friday" in final.ask("When did the city harbour reopen?").text
    assert "town-7" in {h.passage.doc_id for h in final.search("council of town 7", top_k=20)}


def test_cli_names_the_lock_holder_and_a_dead_holders_lock_is_taken_over(
    tmp_path: Path, index_copy: Path, config: Config, models: Models, caplog: pytest.LogCaptureFixture
) -> None:
    (tmp_path / "news").mkdir()
    (tmp_path / "news" / "port.txt").write_text(HARBOUR, encoding="utf-8")
    holder = subprocess.Popen(
        [sys.executable, "-c", HOLD_LOCK, str(index_copy)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    assert holder.stdout is not None and holder.stdout.readline().strip() == "locked"
    qa = str(Path(sys.executable).parent / "qa")
    refused = subprocess.run(
        [qa, "index", str(tmp_path / "news"), "--index", str(index_copy)], capture_output=True, text=True, timeout=300
    )
    assert refused.returncode == 1 and "Traceback" not in refused.stderr
    assert str(index_copy / LOCK_FILE) in refused.stderr and f"pid {holder.pid}" in refused.stderr
    holder.kill()  # SIGKILL: the lock file stays behind, naming a dead process
    holder.wait(timeout=30)
    assert f'"pid": {holder.pid}' in (index_copy / LOCK_FILE).read_text()
    with caplog.at_level(logging.WARNING, logger="qa.index.durability"):
        update = Assistant.load(index_copy, config, models).add(tmp_path / "news", show_progress=False)
    assert update.added == ("port",)
    assert any("Taking over the lock" in r.getMessage() and str(holder.pid) in r.getMessage() for r in caplog.records)
    assert not (index_copy / LOCK_FILE).exists()


# ---- crash safety: a writer killed with SIGKILL at chosen points of build, add and remove ----

# The writer runs the real operation; `point` wraps one step of it so that the process
# SIGKILLs itself there (or, for "timed", the test kills it after a delay).
KILLED_WRITER = """
import os, shutil, signal, sys
import qa.index.article_store, qa.index.versions, qa.models
from qa import Assistant

op, index_dir, arg, point = sys.argv[1:5]

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def wrap(owner, name, before=lambda *a: False, after=lambda *a: False):
    original = getattr(owner, name)
    def wrapper(*args, **kwargs):
        if before(*args):
            die()
        result = original(*args, **kwargs)
        if after(*args):
            die()
        return result
    setattr(owner, name, wrapper)

def half_delete(*args):
    count = iter(range(3))
    wrap(os, "unlink", after=lambda *a: next(count, None) is None)  # dies on the 3rd file deleted

def pause_once(*args):
    if not paused:  # holding the lock: tell the test, and wait until it says go on
        paused.append(True)
        print("paused", flush=True)
        sys.stdin.readline()
    return False

paused = []
named = lambda name: (lambda path, *rest: os.path.basename(path) == name)
POINTS = {
    "embedding": lambda: wrap(qa.models.Embedder, "encode", after=lambda *a: True),
    "half-written": lambda: wrap(qa.index.article_store, "write", after=lambda *a: True),
    "unrenamed": lambda: wrap(qa.index.versions, "write_atomically", after=named("manifest.json")),
    "before-current": lambda: wrap(os, "replace", before=lambda *a: len(a) > 1 and named("CURRENT")(a[1])),
    "after-current": lambda: wrap(qa.index.versions, "remove_old_versions", before=lambda *a: True),
    "cleanup": lambda: wrap(qa.index.versions, "remove_old_versions", before=half_delete),
    "pause": lambda: wrap(qa.models.Embedder, "encode", before=pause_once),
    "timed": lambda: None,
}
POINTS[point]()
if op == "build":
    print("loaded", flush=True)
    Assistant.from_articles([arg.split(",")[0], arg.split(",")[1]], index_dir, show_progress=False)
else:
    assistant = Assistant.load(index_dir)
    print("loaded", flush=True)
    if op == "add":
        assistant.add(arg, show_progress=False)
    else:
        assistant.remove(arg.split(","))
print("done", flush=True)
"""


def _towns(folder: Path, count: int, sentences: int = 40) -> Path:
    folder.mkdir(exist_ok=True)
    for i in range(count):
        (folder / f"town-{i}.txt").write_text(
            f"Town {i} news\n\n"
            + " ".join(f"The council of town {i} met on day {d} to discuss road {d}." for d in range(sentences)),
            encoding="utf-8",
        )
    return folder


def _run_killed_writer(op: str, index_dir: Path, arg: str, point: str, delay: float = 0.0) -> None:
    """Run the writer until it is killed at ``point``; a "timed" kill lands wherever it lands.

    A writer killed at a chosen point dies holding the lock, so the lock file stays behind naming
    it. A timed kill may land before the writer takes the lock, while it holds it, after it has
    released it, or after it has finished (then it exits normally): every one of these outcomes
    is accepted, and each is checked for what it must guarantee."""
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, op, str(index_dir), arg, point], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout is not None
    assert proc.stdout.readline().strip() == "loaded"
    if point == "timed":
        time.sleep(delay)
        proc.send_signal(signal.SIGKILL)  # a no-op when the writer has exited already
    rest = proc.stdout.read().split()
    code = proc.wait(timeout=120)
    lock = index_dir / LOCK_FILE
    holder = lock.read_text(encoding="utf-8") if lock.exists() else ""
    if point != "timed":
        assert code == -signal.SIGKILL and rest == []
        assert f'"pid": {proc.pid}' in holder  # it died holding the lock: the file names it
    elif code == 0:
        assert rest == ["done"] and not lock.exists()  # finished before the kill: lock released
    else:
        assert code == -signal.SIGKILL and rest in ([], ["done"])
        # Killed before it took the lock (no file, or one not yet written), while holding it (the
        # file names it) or after releasing it (no file): never a lock naming anyone else.
        assert holder == "" or f'"pid": {proc.pid}' in holder


def _assert_loads_answers_and_recovers(
    index_dir: Path, config: Config, models: Models, expected_articles: set[str], tmp_path: Path
) -> Assistant:
    """The index loads with exactly ``expected_articles``, answers, and the next write cleans up."""
    loaded = Assistant.load(index_dir, config, models)
    assert {a.doc_id for a in loaded.articles()} == expected_articles
    assert "friendly and cooperative" in loaded.ask("What did China say about the Taliban?").text
    (tmp_path / "later").mkdir(exist_ok=True)
    (tmp_path / "later" / "bridge.txt").write_text(
        "Bridge opens\n\nThe mayor opened the new river bridge on Tuesday morning.", encoding="utf-8"
    )
    update = loaded.add(tmp_path / "later", show_progress=False)  # takes over the dead writer's lock
    assert update.added == ("bridge",)
    assert sorted(p.name for p in index_dir.iterdir()) == ["CURRENT", current_version(index_dir).name]
    return loaded


SEED_ONLY = {SEED_DOC}
TOWNS = {"town-0", "town-1", "town-2"}
# Kill points in the order a write meets them; before CURRENT is replaced the previous index
# must survive, after it the new one.
BEFORE_CURRENT = ("embedding", "half-written", "unrenamed", "before-current")
KILLS = [
    ("build", "embedding"),
    ("build", "half-written"),
    ("build", "cleanup"),
    ("add", "embedding"),
    ("add", "before-current"),
    ("add", "after-current"),
    ("remove", "half-written"),
    ("remove", "unrenamed"),
    ("remove", "before-current"),
    ("remove", "after-current"),
    ("remove", "cleanup"),
]


@pytest.mark.parametrize(("op", "point"), KILLS)
def test_write_killed_leaves_the_previous_or_the_new_index(
    op: str, point: str, tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    towns = _towns(tmp_path / "towns", 3, sentences=10)
    before, after = SEED_ONLY, SEED_ONLY | TOWNS
    if op == "remove":
        Assistant.load(index_copy, config, models).add(towns, show_progress=False)
        before, after = after, before
    arg = {"build": f"{SEEDS},{towns}", "add": str(towns), "remove": ",".join(sorted(TOWNS))}[op]
    _run_killed_writer(op, index_copy, arg, point)
    survivor = before if point in BEFORE_CURRENT else after
    loaded = _assert_loads_answers_and_recovers(index_copy, config, models, survivor, tmp_path)
    if survivor == after and op != "remove":
        assert "town-1" in {h.passage.doc_id for h in loaded.search("council of town 1", top_k=5)}


@pytest.mark.parametrize("delay", [1.5, 4.0])
def test_add_killed_at_any_moment_leaves_a_loadable_index(
    delay: float, tmp_path: Path, index_copy: Path, config: Config, models: Models
) -> None:
    towns = _towns(tmp_path / "towns", 60)
    _run_killed_writer("add", index_copy, str(towns), "timed", delay)
    survived = {a.doc_id for a in Assistant.load(index_copy, config, models).articles()}
    new = SEED_ONLY | {f"town-{i}" for i in range(60)}
    assert survived in (SEED_ONLY, new)  # the old index or the new one, never a mix
    loaded = _assert_loads_answers_and_recovers(index_copy, config, models, survived, tmp_path)
    assert not (index_copy / LOCK_FILE).exists()  # the next writer took over any lock and released it
    if survived == new:
        assert "town-7" in {h.passage.doc_id for h in loaded.search("council of town 7", top_k=20)}
