"""The whole library in Milvus (``--store milvus://``): articles, annotations, passages, BM25 and vectors.

The module starts Milvus Lite's gRPC server (``milvus-lite server``, from the [milvus] extra; it
implements Milvus's BM25 function and hybrid search) on a free port of 127.0.0.1 with a temporary
data folder, and stops it at the end. Several ``Assistant`` objects and ``qa`` processes on one
library stand for replicas: each reads and writes the server, none shares memory with another.
"""

from __future__ import annotations

import json
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from qa import Assistant, Config
from qa.errors import UnknownArticleError
from qa.index.stores import StoreKind
from qa.index.versions import current_version
from qa.models import Models

from .conftest import DATA, SEED_DOC, SEEDS, assert_citations_exact

QA = str(Path(sys.executable).parent / "qa")
HARBOUR = "Harbour reopens\n\nThe city harbour reopened on Friday after a two-week strike by dock workers."
BRIDGE = "Bridge opens\n\nThe mayor opened the new river bridge on Tuesday morning."
START_TIMEOUT_S = 120


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="module")
def lite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A Milvus Lite gRPC server on 127.0.0.1, for this module only."""
    pytest.importorskip("milvus_lite", reason="the [milvus] extra (Milvus Lite) is not installed")
    pymilvus = pytest.importorskip("pymilvus", reason="the [milvus] extra is not installed")
    data = tmp_path_factory.mktemp("milvus-lite")
    port = _free_port()
    logs = (data / "server.log").open("w")
    command = [sys.executable, "-m", "milvus_lite", "server", "--data-dir", str(data / "db")]
    server = subprocess.Popen([*command, "--host", "127.0.0.1", "--port", str(port)], stdout=logs, stderr=logs)
    try:
        deadline = time.monotonic() + START_TIMEOUT_S
        while True:
            try:
                probe = pymilvus.MilvusClient(uri=f"http://127.0.0.1:{port}", timeout=2, dedicated=True)
                probe.get_server_version()
                probe.close()  # idle, its pings would make the server drop the connection
                break
            except Exception:
                if server.poll() is not None or time.monotonic() > deadline:
                    pytest.fail(f"Milvus Lite did not start: {(data / 'server.log').read_text()[-2000:]}")
                time.sleep(0.2)
        yield f"milvus://127.0.0.1:{port}"
    finally:
        server.terminate()
        server.wait(30)
        logs.close()


@pytest.fixture(scope="module")
def library_dir(lite: str, tmp_path_factory: pytest.TempPathFactory, config: Config, models: Models) -> Path:
    """The seed library in Milvus (do not modify)."""
    index_dir = tmp_path_factory.mktemp("seed-library") / "index"
    settings = config.with_changes(store=f"{lite}/seeds")
    Assistant.from_articles([SEEDS], index_dir=index_dir, config=settings, models=models, show_progress=False)
    return index_dir


def _collections(uri: str) -> list[str]:
    from pymilvus import MilvusClient

    client = MilvusClient(uri=uri.replace("milvus://", "http://"), dedicated=True)
    try:
        return client.list_collections()
    finally:
        client.close()


def _library(tmp_path: Path, lite: str, name: str, config: Config, models: Models) -> tuple[Path, Config]:
    index_dir, settings = tmp_path / "index", config.with_changes(store=f"{lite}/{name}")
    Assistant.from_articles([SEEDS], index_dir=index_dir, config=settings, models=models, show_progress=False)
    return index_dir, settings


def test_seed_questions_get_the_answers_and_citations_of_the_local_library(
    assistant: Assistant, library_dir: Path, lite: str, config: Config, models: Models
) -> None:
    milvus = Assistant.load(library_dir, config, models)  # no --store: the manifest says where
    store = milvus.index.store
    assert store.kind is StoreKind.MILVUS_LIBRARY and store.collection.startswith("seeds_")
    assert {f"{store.collection}_{kind}" for kind in ("passages", "articles", "meta")} <= set(_collections(lite))
    assert sorted(p.name for p in current_version(library_dir).iterdir()) == ["manifest.json"]  # settings only
    summary = milvus.summary()
    assert (summary.articles, summary.passages) == (1, len(assistant.index))
    assert summary.vectors == f"{lite}/{store.collection}"
    assert milvus.article(SEED_DOC) == assistant.article(SEED_DOC)
    assert milvus.index.notes(SEED_DOC) == assistant.index.notes(SEED_DOC)
    assert milvus.catalog() == assistant.catalog()  # the same headings, URL and passage count
    rows = [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line.strip()]
    for row in rows:
        expected, answer = assistant.ask(row["question"]), milvus.ask(row["question"])
        assert_citations_exact(milvus, answer)
        assert (answer.text, answer.abstained) == (expected.text, expected.abstained), row["id"]
        assert [(c.doc_id, c.start, c.end) for c in answer.citations] == [
            (c.doc_id, c.start, c.end) for c in expected.citations
        ], row["id"]
        vector = models.embedder().encode_queries([row["question"]])[0]
        local, remote = assistant.index.search(vector, 10), milvus.index.search(vector, 10)
        assert [h.passage for h in remote] == [h.passage for h in local], row["id"]
        assert [h.score for h in remote] == pytest.approx([h.score for h in local], abs=1e-5)


def test_bm25_in_milvus_scores_the_terms_the_local_index_scores(
    assistant: Assistant, library_dir: Path, config: Config, models: Models
) -> None:
    milvus = Assistant.load(library_dir, config, models)
    for query in ("Taliban China foreign minister", "reconstruction of Afghanistan", "Wang Yi said"):
        local = assistant.index.bm25_search(query, 10)
        remote = milvus.index.bm25_search(query, 10)
        assert [n.node.node_id for n in remote] == [n.node.node_id for n in local], query
        # Milvus's BM25 scores carry Lucene's constant factor k1 + 1 = 2.5
        assert [n.score for n in remote] == pytest.approx([2.5 * n.score for n in local], rel=1e-4), query
    assert milvus.index.bm25_search("the of and", 10) == []  # only stopwords: no terms


def test_replicas_see_each_others_additions_and_removals(
    lite: str, tmp_path: Path, config: Config, models: Models
) -> None:
    index_dir, settings = _library(tmp_path, lite, "replicas", config, models)
    first = Assistant.load(index_dir, settings, models)  # e.g. two `qa serve` behind a load balancer
    second = Assistant.load(index_dir, settings, models)
    (tmp_path / "port.txt").write_text(HARBOUR, encoding="utf-8")
    added = subprocess.run(  # a third process, as `qa index` on another machine would
        [QA, "index", str(tmp_path / "port.txt"), "--index", str(index_dir)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert added.returncode == 0, added.stderr
    assert "the library in milvus://" in added.stdout
    for replica in (first, second):  # searches run in Milvus: the next question finds it
        answer = replica.ask("When did the city harbour reopen?")
        assert "Friday" in answer.text and answer.citations[0].doc_id == "port"
        assert_citations_exact(replica, answer)
    (tmp_path / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    assert second.add(tmp_path / "bridge.txt", show_progress=False).added == ("bridge",)
    assert "Tuesday" in first.ask("When did the mayor open the river bridge?").text
    time.sleep(1.1)  # REFRESH_S: then each replica has read the change log
    for replica in (first, second):
        assert replica.summary().articles == 3
        assert [a.doc_id for a in replica.articles()] == [SEED_DOC, "port", "bridge"]
        listed = replica.catalog(newest_first=False).entries  # from the headings: no article read
        assert [(e.doc_id, e.title, e.url) for e in listed] == [(a.doc_id, a.title, a.url) for a in replica.articles()]
        assert all(e.passages >= 1 for e in listed)
    changes = first.summary().changes
    assert first.remove(["port"]) == ["port"]
    assert first.summary().changes > changes
    answer = second.ask("When did the city harbour reopen?")
    assert all(c.doc_id != "port" for c in answer.citations)  # its passages are gone from the next search
    with pytest.raises(UnknownArticleError, match="port"):
        second.remove(["port"])
    time.sleep(1.1)
    assert second.summary().articles == 2
    with pytest.raises(UnknownArticleError):  # nor is its copy kept once the change log is read
        second.article("port")


def test_replacing_an_article_leaves_only_its_new_passages_and_duplicates_are_reported(
    lite: str, tmp_path: Path, config: Config, models: Models
) -> None:
    index_dir, settings = _library(tmp_path, lite, "replace", config, models)
    assistant = Assistant.load(index_dir, settings, models)
    news = tmp_path / "news"
    news.mkdir()
    (news / "port.txt").write_text(HARBOUR, encoding="utf-8")
    assert assistant.add(news, show_progress=False).added == ("port",)
    (news / "port.txt").write_text(HARBOUR.replace("Friday", "Monday") + " Ships queued outside.", encoding="utf-8")
    (news / "copy.txt").write_text(BRIDGE, encoding="utf-8")
    (news / "bridge.txt").write_text(BRIDGE, encoding="utf-8")
    update = assistant.add(news, show_progress=False)
    assert update.replaced == ("port",) and len(update.added) == 1
    assert [p.reason for p in update.problems] == [f"duplicate of article {update.added[0]!r}"]
    assert assistant.add(news / "port.txt", show_progress=False).unchanged == ("port",)
    answer = assistant.ask("When did the city harbour reopen?")
    assert "Monday" in answer.text and "Friday" not in answer.text
    hits = assistant.search("harbour reopened strike dock workers", top_k=50)
    assert all("Friday" not in h.passage.text for h in hits if h.passage.doc_id == "port")
    assert Assistant.load(index_dir, settings, models).article("port").text.endswith("Ships queued outside.")


def test_an_article_longer_than_a_milvus_text_field_is_kept_whole(
    lite: str, tmp_path: Path, config: Config, models: Models
) -> None:
    index_dir, settings = _library(tmp_path, lite, "long", config, models)
    assistant = Assistant.load(index_dir, settings, models)
    filler = [
        f"Paragraph {i}: the committee — meeting in Zürich, 東京 and São Paulo — reviewed budget line {i} at length."
        for i in range(700)
    ]
    text = "Budget review\n\n" + " ".join(filler) + " The final vote approved the lighthouse repair on 3 March."
    assert len(text.encode("utf-8")) > 70_000  # over one VARCHAR field of 65,535 bytes
    (tmp_path / "budget.txt").write_text(text, encoding="utf-8")
    assert assistant.add(tmp_path / "budget.txt", show_progress=False).added == ("budget",)
    reloaded = Assistant.load(index_dir, settings, models)
    assert reloaded.article("budget").text == text.split("\n\n", 1)[1] or text.endswith(reloaded.article("budget").text)
    answer = reloaded.ask("What did the final vote approve?")
    assert "lighthouse" in answer.text
    assert_citations_exact(reloaded, answer)


def test_passages_an_interrupted_write_left_without_their_article_are_left_out(
    lite: str, tmp_path: Path, config: Config, models: Models
) -> None:
    index_dir, settings = _library(tmp_path, lite, "interrupted", config, models)
    assistant = Assistant.load(index_dir, settings, models)
    (tmp_path / "port.txt").write_text(HARBOUR, encoding="utf-8")
    assistant.add(tmp_path / "port.txt", show_progress=False)
    library = assistant.index
    # as a writer killed after the passages and before the article: the article row is missing
    library._rows.delete("articles", 'doc_id == "port"')
    answer = Assistant.load(index_dir, settings, models).ask("When did the city harbour reopen?")
    assert all(c.doc_id != "port" for c in answer.citations)
    again = Assistant.load(index_dir, settings, models)  # indexing it again completes the write
    assert again.add(tmp_path / "port.txt", show_progress=False).added == ("port",)
    assert again.ask("When did the city harbour reopen?").citations[0].doc_id == "port"


def test_a_search_within_some_articles_is_filtered_in_milvus(
    lite: str, tmp_path: Path, config: Config, models: Models
) -> None:
    index_dir, settings = _library(tmp_path, lite, "within", config, models)
    assistant = Assistant.load(index_dir, settings, models)
    for name, text in (("port", HARBOUR), ("bridge", BRIDGE)):
        (tmp_path / f"{name}.txt").write_text(text, encoding="utf-8")
        assistant.add(tmp_path / f"{name}.txt", show_progress=False)
    within = assistant.search("When did the city harbour reopen?", top_k=20, within=[SEED_DOC, "bridge"])
    assert within and {h.passage.doc_id for h in within} <= {SEED_DOC, "bridge"}
    assert assistant.search("When did the city harbour reopen?", top_k=1)[0].passage.doc_id == "port"


def test_a_library_in_a_folder_moves_into_milvus_without_embedding_again(
    assistant: Assistant, index_copy: Path, lite: str, config: Config, models: Models
) -> None:
    moved = subprocess.run(
        [QA, "migrate", "--index", str(index_copy), "--to", f"{lite}/moved"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert moved.returncode == 0, moved.stderr
    assert f"into {lite}/moved_" in moved.stdout and "1 article(s)" in moved.stdout
    assert sorted(p.name for p in current_version(index_copy).iterdir()) == ["manifest.json"]  # settings only
    library = Assistant.load(index_copy, config, models)
    assert library.index.store.kind is StoreKind.MILVUS_LIBRARY
    assert (library.summary().articles, library.summary().passages) == (1, len(assistant.index))
    assert library.index.notes(SEED_DOC) == assistant.index.notes(SEED_DOC)
    vector = models.embedder().encode_queries(["What did China say about the Taliban?"])[0]
    local, remote = assistant.index.search(vector, 10), library.index.search(vector, 10)
    assert [h.passage for h in remote] == [h.passage for h in local]
    assert [h.score for h in remote] == pytest.approx([h.score for h in local], abs=1e-5)  # the same vectors
    answer, expected = (
        library.ask("What did China say about the Taliban?"),
        assistant.ask("What did China say about the Taliban?"),
    )
    assert answer.text == expected.text
    assert_citations_exact(library, answer)
    again = subprocess.run(
        [QA, "migrate", "--index", str(index_copy), "--to", f"{lite}/moved"],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert again.returncode != 0 and "in milvus://" in again.stderr  # already there
