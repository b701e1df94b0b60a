"""Several sessions at once: questions run together, library changes wait for them and hold them back."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from qa import Assistant, Config
from qa.locks import ReadWriteLock
from qa.models import Models

from .conftest import SEED_DOC, assert_citations_exact


def test_readers_share_the_lock_and_a_writer_has_it_alone() -> None:
    lock, inside, log = ReadWriteLock(), [0], []
    guard = threading.Lock()
    # Each of the first two readers waits, inside the lock, until the other is inside too: with a
    # lock that readers could not share, the barrier would break instead.
    together = threading.Barrier(2, timeout=60)

    def read(meet: bool) -> None:
        with lock.reading():
            with guard:
                inside[0] += 1
            if meet:
                together.wait()
            time.sleep(0.01)
            with guard:
                inside[0] -= 1

    def write() -> None:
        with lock.writing():
            log.append(("write", inside[0]))
            time.sleep(0.05)

    with ThreadPoolExecutor(8) as pool:
        for future in [pool.submit(read, True), pool.submit(read, True)]:
            future.result()  # a broken barrier would raise here
        futures = [pool.submit(read, False) for _ in range(4)] + [pool.submit(write)]
        futures += [pool.submit(read, False) for _ in range(4)]
        for future in futures:
            future.result()
    assert log == [("write", 0)]  # the writer ran with no reader inside


def test_questions_while_articles_are_added_and_removed(
    index_copy: Path, tmp_path: Path, config: Config, models: Models
) -> None:
    assistant = Assistant.load(index_copy, config, models)
    extra = tmp_path / "2024-04-01-ferry.txt"
    extra.write_text(
        "Ferry service resumes\n\nThe ferry between Dover and Calais resumed service on Monday after a storm.\n",
        encoding="utf-8",
    )

    def ask_three() -> list:
        chat = assistant.chat()
        return [
            chat.ask("What did Pakistan's prime minister say?"),
            chat.ask("Where was he when he said it?"),
            assistant.ask("When did the ferry between Dover and Calais resume?"),
        ]

    def change_library() -> None:
        for _ in range(2):
            assistant.add([extra], show_progress=False)
            assistant.remove(["2024-04-01-ferry"])

    with ThreadPoolExecutor(4) as pool:
        askers = [pool.submit(ask_three) for _ in range(3)]
        pool.submit(change_library).result()
        results = [future.result() for future in askers]
    for pakistan, where, ferry in results:
        assert "Imran Khan" in pakistan.text and "Islamabad" in where.text
        for answer in (pakistan, where):
            assert {c.doc_id for c in answer.citations} == {SEED_DOC}
            assert_citations_exact(assistant, answer)
        assert ferry.abstained or "resumed service on Monday" in ferry.text
    assert [a.doc_id for a in assistant.articles()] == [SEED_DOC]
    assert [a.doc_id for a in Assistant.load(index_copy, config, models).articles()] == [SEED_DOC]
