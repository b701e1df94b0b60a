"""The annotation stage in a worker process: the same notes as in process, and a worker that fails or dies leaves
the annotating to this process; a worker whose parent was killed ends. Each case runs in a fresh process: the
worker is forked, and only from a process with no other thread."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from .conftest import SEEDS

pytestmark = pytest.mark.slow  # each case loads spaCy in two fresh processes

SCRIPT = """
import json, os, signal, sys
from qa import Assistant
from qa.config import Config
from qa.ingest.annotate import Annotator
from qa.ingest.annotate_worker import AnnotatorWorker
from qa.models import load_spacy

case, seeds, out = sys.argv[1:4]
model = Config().spacy_model
worker = AnnotatorWorker.start(model, lambda: Annotator(load_spacy(model)))
assert worker is not None
print(worker._process.pid, flush=True)
if case == "parent killed":
    os.kill(os.getpid(), signal.SIGKILL)
articles = list(Assistant.read_articles([seeds]).articles)
if case == "worker killed":
    os.kill(worker._process.pid, signal.SIGKILL)
    worker._process.join()
notes = worker.annotate(articles)
here = Annotator(load_spacy(model)).annotate(articles)
with open(out, "w") as fh:
    json.dump({"same": [n.to_json() for n in notes] == [n.to_json() for n in here], "count": len(notes)}, fh)
"""


def _run(case: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    args = [sys.executable, "-c", SCRIPT, case, str(SEEDS), str(tmp_path / "out.json")]
    return subprocess.run(args, capture_output=True, text=True, timeout=300)


@pytest.mark.parametrize("case", ["worker annotates", "worker killed"])
def test_the_notes_are_those_this_process_makes_whoever_makes_them(case: str, tmp_path: Path) -> None:
    done = _run(case, tmp_path)
    assert done.returncode == 0, done.stderr
    assert json.loads((tmp_path / "out.json").read_text()) == {"same": True, "count": 1}
    assert ("annotating in this process" in done.stderr) == (case == "worker killed")


def test_a_worker_ends_when_its_parent_is_killed(tmp_path: Path) -> None:
    done = _run("parent killed", tmp_path)
    assert done.returncode == -signal.SIGKILL
    worker = int(done.stdout.split()[0])
    deadline = time.monotonic() + 30
    while _alive(worker) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert not _alive(worker)


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    status = Path(f"/proc/{pid}/status")
    return not (status.is_file() and "\nState:\tZ" in status.read_text())  # a zombie has ended
