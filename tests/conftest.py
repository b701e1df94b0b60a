"""Shared fixtures: the real models, loaded once, and the seed index, built once."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.models import Models

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
SEED_DOC = "2021-08-16-china-taliban"


@pytest.fixture(scope="session")
def config() -> Config:
    return Config()


@pytest.fixture(scope="session")
def models(config: Config) -> Models:
    return Models(config.embed_model, config.cross_encoder)


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Path:
    """A persisted index of the seed article (do not modify: copy it first)."""
    index_dir = tmp_path_factory.mktemp("seed") / "index"
    Assistant.from_articles([SEEDS], index_dir=index_dir, config=config, models=models, show_progress=False)
    return index_dir


@pytest.fixture(scope="session")
def assistant(seed_index_dir: Path, config: Config, models: Models) -> Assistant:
    return Assistant.load(seed_index_dir, config, models)


@pytest.fixture
def index_copy(seed_index_dir: Path, tmp_path: Path) -> Path:
    """A private copy of the seed index that a test may change."""
    target = tmp_path / "index"
    shutil.copytree(seed_index_dir, target)
    return target


def assert_citations_exact(assistant: Assistant, answer) -> None:  # noqa: ANN001
    """Every citation slices its article's text to exactly its quote."""
    for c in answer.citations:
        assert assistant.article(c.doc_id).text[c.start : c.end] == c.quote
