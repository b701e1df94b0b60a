"""Run app.py on a free port for the UI tests (gradio_client and the browser)."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@contextmanager
def running_app(
    seed_index_dir: Path, workdir: Path, env: dict[str, str] | None = None, args: Sequence[str] = ()
) -> Iterator[str]:
    """Serve a private copy of the seed index with app.py (and ``args``); yield the page's URL, stop it afterwards."""
    index_dir = workdir / "index"
    shutil.copytree(seed_index_dir, index_dir)
    port = free_port()
    log = workdir / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(index_dir), *args],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
            env={**os.environ, **(env or {})},
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError as exc:
                if proc.poll() is not None or time.time() > deadline:
                    raise RuntimeError(f"app.py did not start:\n{log.read_text()}") from exc
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)
