"""The chat UI: app.py on a free port, driven through gradio_client."""

from __future__ import annotations

import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import pytest
from gradio_client import Client

from .conftest import ROOT


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server(seed_index_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    port = free_port()
    log = tmp_path_factory.mktemp("ui") / "app.log"
    with open(log, "w") as fh:
        proc = subprocess.Popen(
            [sys.executable, str(ROOT / "app.py"), "--port", str(port), "--index", str(seed_index_dir)],
            cwd=ROOT,
            stdout=fh,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}/"
    try:
        deadline = time.time() + 120
        while True:
            try:
                urllib.request.urlopen(url, timeout=2)
                break
            except OSError:
                if proc.poll() is not None or time.time() > deadline:
                    pytest.fail(f"app.py did not start:\n{log.read_text()}")
                time.sleep(0.5)
        yield url
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_ask_endpoint_returns_cited_answer(server: str) -> None:
    client = Client(server, verbose=False)
    answer = client.predict("What did China say about the Taliban?", api_name="/ask")
    assert not answer["abstained"] and "friendly and cooperative" in answer["text"]
    assert answer["citations"] and answer["citations"][0]["quote"] in answer["text"]
    filtered = client.predict("What did China say about the Taliban?", [], "2022-01-01", "", api_name="/ask")
    assert filtered["abstained"] and filtered["citations"] == []  # the seed is dated 2021-08-16
    bad = client.predict("What did China say about the Taliban?", [], "soon", "", api_name="/ask")
    assert "not a date" in bad["error"]


def test_chat_endpoint_shows_answer_and_sources(server: str) -> None:
    client = Client(server, verbose=False)
    textbox, chat, sources = client.predict("What did China say about the Taliban?", [], [], "", "", api_name="/chat")
    assert textbox == ""
    reply = chat[-1]["content"]
    reply_text = reply if isinstance(reply, str) else " ".join(part.get("text", "") for part in reply)
    assert "friendly and cooperative" in reply_text and "[1]" in reply_text
    assert "<mark>" in sources and "China Taliban" in sources


def test_page_binds_to_loopback_only(server: str) -> None:
    assert server.startswith("http://127.0.0.1:")
    html = urllib.request.urlopen(server, timeout=5).read().decode()
    assert "Newsdesk QA" in html
