"""Load: 16 chat sessions at once against app.py for about 15 seconds (benchmarks/load.py runs 60),
each holding its own dialogue, while an article is uploaded: no errors, no cross-talk, every answer right."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

from benchmarks import load

from .conftest import ROOT, SEEDS

CLIENTS = 16
SECONDS = 15.0


@pytest.fixture(scope="module")
def load_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Path]]:
    work = tmp_path_factory.mktemp("load")
    load.write_articles(work / "articles", load.PERSONAS)
    upload = load.write_articles(work / "upload", [load.UPLOADED])[0]
    with load.app_server(work / "index", work / "app.log", seeds=[SEEDS, work / "articles"]) as url:
        yield url, upload


def test_the_question_set_has_one_distinct_person_article_and_answer_per_session() -> None:
    personas = [*load.PERSONAS, load.UPLOADED]
    for attribute in ("doc_id", "name", "venue", "fact"):
        values = [getattr(p, attribute) for p in personas]
        assert len(set(values)) == len(values) >= CLIENTS + 1, attribute
    for p in personas:  # each expected answer is in its own article only
        assert p.fact in p.article() and p.venue in p.article()
        assert not any(p.fact in q.article() or p.venue in q.article() for q in personas if q is not p)


def test_sixteen_sessions_answer_their_own_dialogues_during_an_upload(load_server: tuple[str, Path]) -> None:
    url, upload = load_server
    report = load.run_load(url, CLIENTS, SECONDS, upload_path=upload, upload_after=SECONDS / 3)
    summary = report.summary()
    out = ROOT / "test-artifacts" / "load.json"
    out.parent.mkdir(exist_ok=True)
    out.write_text(json.dumps(summary, indent=2), encoding="utf-8")
    print(report.table())  # shown with -rP; the figures also land in test-artifacts/load.json

    assert not report.errors, "\n".join(f"client {r.client}, {r.question!r}: {r.problem}" for r in report.errors)
    per_client = {n: [r for r in report.results if r.client == n] for n in range(CLIENTS)}
    assert all(len(results) >= 2 for results in per_client.values()), {n: len(r) for n, r in per_client.items()}
    assert any("Where was" in r.question for r in report.results)  # follow-ups were checked, not only first turns
    assert report.upload is not None and report.upload.problem is None and report.upload.answer_problem is None
    assert report.during_upload, "no answer was in flight while the index was rewritten"
    assert 0 < summary["p50_s"] <= summary["p95_s"] <= summary["max_s"]
