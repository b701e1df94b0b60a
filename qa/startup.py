"""Starting a server: its index loaded, or built from seed articles, while its models load."""

from __future__ import annotations

import logging
from collections.abc import Iterable
from concurrent.futures import Future, ThreadPoolExecutor
from pathlib import Path

from qa.assistant import Assistant
from qa.config import Config
from qa.models import Models, warm_models

log = logging.getLogger(__name__)


def load_or_build(
    index_dir: str | Path, seed_paths: Iterable[str | Path], config: Config | None = None, models: Models | None = None
) -> Assistant:
    """Load ``index_dir``, or build it from ``seed_paths`` when it holds no index yet."""
    if Assistant.exists(index_dir):
        return Assistant.load(index_dir, config, models)
    log.info("No index in %s yet: building it from %s", index_dir, ", ".join(map(str, seed_paths)))
    return Assistant.from_articles(seed_paths, index_dir=index_dir, config=config, models=models)


def start_loading(config: Config, seed_paths: Iterable[str | Path] = ("seeds",)) -> Future[Assistant]:
    """Start loading the index of ``config`` (or building it from ``seed_paths`` when there is
    none) in a thread, and its models in another; ``result()`` returns the assistant or raises
    what loading raised. A server calls this before it imports its web framework: the index
    is read and the models load meanwhile (on the 1,663-article index the page was up 0.2-0.3 s
    sooner in a timing of each phase; benchmarks.speed cold cannot tell it from noise)."""
    models = warm_models(config)
    executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="load-index")
    future = executor.submit(load_or_build, config.index_dir, list(seed_paths), config, models)
    executor.shutdown(wait=False)
    return future
