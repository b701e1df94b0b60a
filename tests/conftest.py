"""Shared fixtures: the real models, loaded once, and the seed index, built once."""

from __future__ import annotations

import shutil
from datetime import date, timedelta
from pathlib import Path

import pytest

from qa import Article, Assistant, Config
from qa.ingest.annotate import Annotator
from qa.models import Models

ROOT = Path(__file__).resolve().parent.parent
SEEDS = ROOT / "seeds"
DATA = Path(__file__).resolve().parent / "data"
SEED_DOC = "2021-08-16-china-taliban"
LIBRARY_SIZE = 55  # articles in catalog_index_dir: more than a page of the page's library table (50)


@pytest.fixture(scope="session")
def config() -> Config:
    return Config()


@pytest.fixture(scope="session")
def models(config: Config) -> Models:
    return Models(config.embed_model, config.cross_encoder)


@pytest.fixture(scope="session")
def annotator(models: Models) -> Annotator:
    """The annotation stage over the real spaCy pipeline (sentences, entities, speakers)."""
    return Annotator(models.nlp())


@pytest.fixture(scope="session")
def seed_index_dir(tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Path:
    """A persisted index of the seed article (do not modify: copy it first)."""
    index_dir = tmp_path_factory.mktemp("seed") / "index"
    Assistant.from_articles([SEEDS], index_dir=index_dir, config=config, models=models, show_progress=False)
    return index_dir


@pytest.fixture(scope="session")
def assistant(seed_index_dir: Path, config: Config, models: Models) -> Assistant:
    return Assistant.load(seed_index_dir, config, models)


def catalog_articles() -> list[Article]:
    """``LIBRARY_SIZE`` short articles indexed in this order: ``report-<i>`` dated 2023-01-01 plus i days, but
    report-11 on report-10's day and the last three undated; two sources; every other one with a URL."""
    articles = []
    for i in range(LIBRARY_SIZE):
        day = None if i >= LIBRARY_SIZE - 3 else str(date(2023, 1, 1) + timedelta(days=i - (i == 11)))
        source = "Porto Gazette" if i % 2 else "Lisbon Daily"
        text = f"Harbour report {i}\n\nThe harbour of Porto counted {i + 3} ships on the day of report {i}."
        url = f"https://news.example/report-{i}" if i % 2 == 0 else None
        articles.append(Article(f"report-{i}", f"Harbour report {i}", text, day, source, url))
    return articles


@pytest.fixture(scope="session")
def catalog_index_dir(tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Path:
    """A persisted index of ``catalog_articles()`` (do not modify: copy it first)."""
    index_dir = tmp_path_factory.mktemp("catalog") / "index"
    Assistant.build(catalog_articles(), index_dir, config, models, show_progress=False)
    return index_dir


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


# `make test-fast` (the inner loop, under a minute) leaves out the tests marked slow: those that start
# servers, browsers or subprocesses that load the models, and the few that ask many questions.
SLOW_MODULES = {
    "test_browser",
    "test_load",
    "test_ui",
    "test_security",
    "test_stores",
    "test_milvus_library",
    "test_cli",
    "test_index",
    "test_llm",
    "test_bad_input",
    "test_evaluate",
    "test_concurrency",
}
SLOW_TESTS = {
    "test_strictness_moves_the_operating_point_monotonically",
    "test_strictness_from_config_and_the_cli",
    "test_minilm_runs_as_int8_onnx_exported_into_the_cache",
    "test_ask_on_any_string_returns_an_answer_or_a_documented_error",
    "test_a_verified_llm_answer_quotes_and_cites_whatever_the_draft",
    "test_every_answer_quotes_and_cites_or_abstains_saying_why",
    "test_citations_slice_their_quotes_on_any_article",
    "test_seed_question_set_pass_rate",
    "test_the_shipped_parameters_load_offline_and_match_the_retraining_script",
}


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    for item in items:
        module = item.module.__name__.rsplit(".", 1)[-1] if item.module else ""
        if module in SLOW_MODULES or item.originalname in SLOW_TESTS:
            item.add_marker(pytest.mark.slow)
