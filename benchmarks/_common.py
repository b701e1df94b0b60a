"""What the benchmark scripts share: where the data and the outputs are, the cached indexes, the machine.

Public evaluation data is read from ``../shared/evaldata`` (never copied into the repository); a
script whose data is absent says so and exits cleanly. Reports, JSON and cached indexes go to
``benchmarks/out/`` (not committed); the ``RESULTS*.md`` pages to ``benchmarks/``.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import platform
import socket
import subprocess
import time
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from qa import Assistant, Config
from qa.types import Article

if TYPE_CHECKING:
    from qa.models import Models

ROOT = Path(__file__).resolve().parent.parent
BENCHMARKS = ROOT / "benchmarks"
DATA = ROOT.parent / "shared" / "evaldata"
OUT = BENCHMARKS / "out"
SEEDS = ROOT / "seeds"

log = logging.getLogger(__name__)


# ---- data and the cached indexes ----------------------------------------------------------
def absent(path: Path, what: str = "") -> bool:
    """True, after saying what is skipped, when the evaluation data at ``path`` is absent."""
    if path.exists():
        return False
    print(f"skipping{' ' + what if what else ''}: {path} is absent (evaluation data not available)")
    return True


def read_corpus(path: Path, config: Config) -> tuple[Article, ...]:
    """The articles in the file or folder ``path`` (unreadable ones are left out)."""
    return Assistant.read_articles(path, config).articles


def index_dir(name: str, embed_model: str, out: Path = OUT) -> Path:
    """Where the index of the set ``name`` embedded with ``embed_model`` is kept between runs."""
    return out / "indexes" / f"{name}@{embed_model.replace('/', '_')}"


def corpus_assistant(
    name: str, articles: Sequence[Article], config: Config, models: Models | None = None, out: Path = OUT
) -> tuple[Assistant, float | None]:
    """The assistant over ``articles``, its index kept in ``index_dir(name, ...)`` and reused while it
    holds exactly these articles built with these settings (``Assistant.build(..., reuse=True)``); and the
    seconds the index took to build (None when the kept one was reused: nothing was written)."""
    folder = index_dir(name, config.embed_model, out)
    before = _changed(folder)
    started = time.perf_counter()
    assistant = Assistant.build(articles, folder, config, models, reuse=True)
    if _changed(folder) == before:
        return assistant, None
    seconds = round(time.perf_counter() - started, 1)
    log.info("built %s (%d articles) in %.1f s", folder, len(articles), seconds)
    return assistant, seconds


def _changed(folder: Path) -> int | None:
    """When ``folder``'s entries last changed: a build adds a version to it, a load only reads it."""
    return folder.stat().st_mtime_ns if folder.is_dir() else None


# ---- synthetic indexes --------------------------------------------------------------------
class RandomEmbedder:
    """Unit vectors drawn at random, with the interface an index needs to build: what is measured
    is the index (files, store), which does not depend on the vectors' values."""

    dimension = 384
    batch_size = 256

    def __init__(self, seed: int = 0) -> None:
        self._rng = np.random.default_rng(seed)

    def encode(self, texts: list[str]) -> np.ndarray:
        """Return one random unit vector per text."""
        vectors = self._rng.standard_normal((len(texts), self.dimension)).astype(np.float32)
        return vectors / np.linalg.norm(vectors, axis=1, keepdims=True)


def synthetic_articles(count: int) -> list[Article]:
    """``count`` articles of 40 sentences each (about 3 passages)."""
    return [
        Article(
            f"article-{i}",
            f"Council report {i}",
            " ".join(f"The council of town {i} met on day {d} to discuss road {d % 17}." for d in range(40)),
        )
        for i in range(count)
    ]


# ---- writing results ----------------------------------------------------------------------
def command(script: str, args: Sequence[str] = ()) -> str:
    """The command line that runs ``benchmarks/<script>.py`` with ``args``, as the results quote it."""
    return " ".join([f"python -m benchmarks.{script}", *args])


def write_json(path: Path, data: Any, **options: Any) -> None:
    """Write ``data`` to ``path`` as indented JSON, creating its folder."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(data, **({"indent": 2} | options)), encoding="utf-8")


def write_page(path: Path, text: str) -> None:
    """Write a results page and say so."""
    path.write_text(text, encoding="utf-8")
    print(f"Wrote {path}")


# ---- the machine --------------------------------------------------------------------------
def cores() -> int:
    """The CPU cores this process may run on."""
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 0)


def produced_by(command_line: str) -> str:
    """The first words of a results page: the command, the day and the machine it ran on."""
    return f"Produced by `{command_line}` on {time.strftime('%Y-%m-%d')} ({platform.machine()}, {cores()} cores)."


def package_dir(package: str, missing: str) -> Path:
    """The folder of an installed package, located without importing it; exits saying ``missing`` without one."""
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise SystemExit(missing)
    return Path(next(iter(spec.submodule_search_locations)))


def free_port() -> int:
    """A TCP port of 127.0.0.1 that nothing listens on now."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def stop(proc: subprocess.Popen, timeout: float = 30.0) -> None:
    """Ask ``proc`` to end; kill it when it has not within ``timeout`` seconds."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()
