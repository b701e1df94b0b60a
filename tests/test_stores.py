"""Vector stores: the seed index with its vectors in a real Milvus server (``milvus-vectors://``) answers as
the FAISS one does.

The module starts Milvus standalone 2.3.5 (the ``milvus`` package's server, from the [milvus] extra)
on a free port of 127.0.0.1 with a temporary data folder, and stops it at the end. The whole library in
Milvus (``milvus://``, which needs Milvus 2.5+) is tested against Milvus Lite in test_milvus_library.py.
"""

from __future__ import annotations

import json
import logging
import shutil
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.errors import InvalidStoreError, ManifestMismatchError, StoreUnavailableError
from qa.index.stores import StoreKind, StoreSpec, parse_store
from qa.index.versions import current_version
from qa.models import Models

from .conftest import DATA, SEED_DOC, SEEDS, assert_citations_exact

QA = str(Path(sys.executable).parent / "qa")
HARBOUR = "Harbour reopens\n\nThe city harbour reopened on Friday after a two-week strike by dock workers."
BRIDGE = "Bridge opens\n\nThe mayor opened the new river bridge on Tuesday morning."

log = logging.getLogger(__name__)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def milvus_uri(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus standalone server on 127.0.0.1, for this module only."""
    milvus = pytest.importorskip("milvus", reason="the [milvus] extra (Milvus server) is not installed")
    pytest.importorskip("llama_index.vector_stores.milvus", reason="the [milvus] extra is not installed")
    server = milvus.MilvusServer()
    data = tmp_path_factory.mktemp("milvus")
    server.set_base_dir(str(data))
    server.listen_port = _free_port()
    try:
        server.start()
    except (RuntimeError, TimeoutError, OSError) as exc:
        server.stop()
        logs = data / "logs" / "milvus-stderr.log"
        tail = logs.read_text(errors="replace")[-2000:] if logs.is_file() else ""
        pytest.skip(f"the Milvus server cannot start on this platform ({exc}): {tail}")
    try:
        yield f"milvus://127.0.0.1:{server.listen_port}"
    finally:
        server.stop()
        shutil.rmtree(data, ignore_errors=True)  # the unpacked server alone is about 250 MB


@pytest.fixture(scope="module")
def milvus_index_dir(milvus_uri: str, tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Path:
    """The seed index with its vectors in Milvus (do not modify)."""
    index_dir = tmp_path_factory.mktemp("seed-milvus") / "index"
    Assistant.from_articles(
        [SEEDS],
        index_dir=index_dir,
        config=config.with_changes(store=_vectors(milvus_uri)),
        models=models,
        show_progress=False,
    )
    return index_dir


def _vectors(uri: str) -> str:
    """The ``--store`` keeping only the passage vectors in the server at ``uri``."""
    return uri.replace("milvus://", "milvus-vectors://", 1)


def _client(uri: str):  # noqa: ANN202 - pymilvus is optional
    from pymilvus import MilvusClient

    return MilvusClient(uri=uri.replace("milvus://", "http://"))


def _rows(uri: str, collection: str, expr: str = "") -> int:
    rows = _client(uri).query(collection, filter=expr, output_fields=["count(*)"], consistency_level="Strong")
    return int(rows[0]["count(*)"])


# ---- the seed question set: Milvus answers as FAISS does -------------------------------------


def test_seed_questions_get_the_same_answers_and_citations_as_with_faiss(
    assistant: Assistant, milvus_index_dir: Path, config: Config, models: Models
) -> None:
    milvus = Assistant.load(milvus_index_dir, config, models)  # no --store: the manifest says where
    store = milvus.index.store
    assert store.kind is StoreKind.MILVUS and store.collection.startswith("newsdesk_")
    assert not (current_version(milvus_index_dir) / "faiss").exists()
    assert _rows(store.uri, store.collection) == len(milvus.index) == len(assistant.index)
    rows = [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line.strip()]
    same = 0
    for row in rows:
        expected, answer = assistant.ask(row["question"]), milvus.ask(row["question"])
        assert_citations_exact(milvus, answer)
        assert (answer.text, answer.abstained) == (expected.text, expected.abstained), row["id"]
        assert [(c.doc_id, c.start, c.end) for c in answer.citations] == [
            (c.doc_id, c.start, c.end) for c in expected.citations
        ], row["id"]
        vector = models.embedder().encode_queries([row["question"]])[0]
        faiss_hits, milvus_hits = assistant.index.search(vector, 10), milvus.index.search(vector, 10)
        assert [h.passage.passage_id for h in milvus_hits] == [h.passage.passage_id for h in faiss_hits], row["id"]
        assert [h.score for h in milvus_hits] == pytest.approx([h.score for h in faiss_hits], abs=1e-5)
        same += 1
    log.info("seed set through Milvus: %d/%d questions answered and cited as with FAISS", same, len(rows))


def test_cli_indexes_into_milvus_and_a_fresh_process_asks_without_store(milvus_uri: str, tmp_path: Path) -> None:
    index_dir = tmp_path / "idx"
    built = subprocess.run(
        [QA, "index", str(SEEDS), "--index", str(index_dir), "--store", f"{_vectors(milvus_uri)}/clitest"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert built.returncode == 0, built.stderr
    assert "Indexed 1 article(s)" in built.stdout and f"vectors in {_vectors(milvus_uri)}/clitest_" in built.stdout
    asked = subprocess.run(
        [QA, "ask", "What did China say about the Taliban?", "--index", str(index_dir), "--json"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert asked.returncode == 0, asked.stderr
    answer = json.loads(asked.stdout)
    assert not answer["abstained"] and "friendly and cooperative" in answer["text"]


# ---- changes go through Milvus -----------------------------------------------------------------


def test_add_and_remove_update_the_milvus_collection(
    milvus_uri: str, tmp_path: Path, config: Config, models: Models
) -> None:
    settings = config.with_changes(store=_vectors(milvus_uri))
    index_dir = tmp_path / "index"
    Assistant.from_articles([SEEDS], index_dir=index_dir, config=settings, models=models, show_progress=False)
    assistant = Assistant.load(index_dir, settings, models)
    store = assistant.index.store
    seed_passages = len(assistant.index)
    news = tmp_path / "news"
    news.mkdir()
    (news / "port.txt").write_text(HARBOUR, encoding="utf-8")
    (news / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    assert sorted(assistant.add(news, show_progress=False).added) == ["bridge", "port"]
    assert _rows(milvus_uri, store.collection) == seed_passages + 2
    assert "Friday" in assistant.ask("When did the city harbour reopen?").text
    # a dense search within some articles filters in Milvus
    vector = models.embedder().encode_queries(["When did the city harbour reopen after the strike?"])[0]
    assert assistant.index.search(vector, 3)[0].passage.doc_id == "port"
    assert {h.passage.doc_id for h in assistant.index.search(vector, 10, doc_ids=[SEED_DOC, "bridge"])} <= {
        SEED_DOC,
        "bridge",
    }
    assert assistant.remove("port") == ["port"]
    assert _rows(milvus_uri, store.collection, 'doc_id == "port"') == 0
    assert _rows(milvus_uri, store.collection) == seed_passages + 1
    for loaded in (assistant, Assistant.load(index_dir, settings, models)):
        assert loaded.index.store.collection == store.collection
        assert [a.doc_id for a in loaded.articles()] == [SEED_DOC, "bridge"]
        assert "port" not in {h.passage.doc_id for h in loaded.search("When did the city harbour reopen?", top_k=50)}
        assert all(c.doc_id != "port" for c in loaded.ask("When did the city harbour reopen?").citations)
        assert "Tuesday" in loaded.ask("When did the mayor open the river bridge?").text


def test_rebuild_creates_a_new_collection_and_drops_the_replaced_one(
    milvus_uri: str, tmp_path: Path, config: Config, models: Models
) -> None:
    settings = config.with_changes(store=f"{_vectors(milvus_uri)}/rebuilt")
    index_dir = tmp_path / "index"
    first = Assistant.from_articles([SEEDS], index_dir=index_dir, config=settings, models=models, show_progress=False)
    second = Assistant.from_articles([SEEDS], index_dir=index_dir, config=settings, models=models, show_progress=False)
    old, new = first.index.store.collection, second.index.store.collection
    assert old != new and old.startswith("rebuilt_") and new.startswith("rebuilt_")
    collections = _client(milvus_uri).list_collections()
    assert new in collections and old not in collections


def test_a_passage_another_writer_added_is_left_out_until_reloaded(
    milvus_uri: str, tmp_path: Path, config: Config, models: Models
) -> None:
    settings = config.with_changes(store=_vectors(milvus_uri))
    index_dir = tmp_path / "index"
    Assistant.from_articles([SEEDS], index_dir=index_dir, config=settings, models=models, show_progress=False)
    reader = Assistant.load(index_dir, settings, models)  # e.g. a running `qa serve`
    (tmp_path / "port.txt").write_text(HARBOUR, encoding="utf-8")
    Assistant.load(index_dir, settings, models).add(tmp_path / "port.txt", show_progress=False)
    vector = models.embedder().encode_queries(["When did the city harbour reopen?"])[0]
    raw = _client(milvus_uri).search(
        reader.index.store.collection,
        data=[vector.tolist()],
        limit=1,
        anns_field="embedding",
        search_params={"metric_type": "IP"},
        consistency_level="Strong",
    )
    assert raw[0][0]["id"] == "port::0"  # in the shared collection, unknown to the reader's docstore
    assert "port" not in {h.passage.doc_id for h in reader.index.search(vector, 10)}
    assert Assistant.load(index_dir, settings, models).index.search(vector, 1)[0].passage.doc_id == "port"


# ---- errors ----------------------------------------------------------------------------------


def test_an_unreachable_server_names_the_uri_and_how_to_start_one(
    milvus_index_dir: Path, tmp_path: Path, config: Config, models: Models
) -> None:
    dead = f"milvus://127.0.0.1:{_free_port()}"
    with pytest.raises(StoreUnavailableError, match=rf"{dead}.*milvus-server --data DIR --proxy-port PORT"):
        Assistant.load(milvus_index_dir, config.with_changes(store=dead), models)
    for store in (dead, _vectors(dead)):  # the whole library, the vectors only
        with pytest.raises(StoreUnavailableError, match=dead):
            Assistant.from_articles([SEEDS], tmp_path / "new", config=config.with_changes(store=store), models=models)
    assert not (tmp_path / "new" / "CURRENT").exists()


def test_the_whole_library_is_refused_by_a_server_that_cannot_compute_bm25(
    milvus_uri: str, tmp_path: Path, config: Config, models: Models
) -> None:
    settings = config.with_changes(store=milvus_uri)  # Milvus 2.3.5: no BM25 function
    with pytest.raises(InvalidStoreError, match=r"Milvus v?2\.3\.5.*2\.5 or later.*milvus-vectors://HOST:PORT"):
        Assistant.from_articles([SEEDS], tmp_path / "index", config=settings, models=models, show_progress=False)
    assert not (tmp_path / "index" / "CURRENT").exists()


def test_without_the_milvus_extra_the_error_says_how_to_install_it(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, config: Config, models: Models
) -> None:
    for module in ("qa.index.stores.milvus", "qa.index.stores.milvus_library"):
        monkeypatch.setitem(sys.modules, module, None)  # as when their imports fail
    for store in ("milvus://127.0.0.1:19530", "milvus-vectors://127.0.0.1:19530"):
        settings = config.with_changes(store=store)
        with pytest.raises(StoreUnavailableError, match=r"pip install 'newsdesk-qa\[milvus\]'"):
            Assistant.from_articles([SEEDS], tmp_path / "index", config=settings, models=models, show_progress=False)


def test_store_values_are_parsed_or_refused() -> None:
    assert parse_store("faiss") == StoreSpec(StoreKind.FAISS)
    expected = StoreSpec(StoreKind.MILVUS_LIBRARY, "milvus://db.example:19531", "newsdesk")
    assert parse_store("milvus://db.example:19531") == expected
    assert parse_store("milvus-vectors://db.example/news_2026") == StoreSpec(
        StoreKind.MILVUS, "milvus://db.example:19530", "news_2026"
    )
    assert (
        parse_store("milvus-vectors://db.example/news_2026").describe() == "milvus-vectors://db.example:19530/news_2026"
    )
    for bad in ("qdrant://x:6333", "milvus://", "milvus://h:99999", "milvus://h/bad-name", "milvus://h:1/a;drop"):
        with pytest.raises(InvalidStoreError, match="faiss.*milvus://HOST:PORT"):
            parse_store(bad)


def test_a_faiss_index_is_not_silently_used_for_a_milvus_store(seed_index_dir: Path, models: Models) -> None:
    with pytest.raises(ManifestMismatchError, match="store.*--rebuild"):
        Assistant.load(seed_index_dir, Config(store="milvus://127.0.0.1:19530"), models)
