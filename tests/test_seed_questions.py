"""The seed question set: answerable questions answered, unanswerable ones abstained."""

from __future__ import annotations

import json
import statistics

from qa import Assistant

from .conftest import DATA, assert_citations_exact

PASS_RATE_FLOOR = 0.85


def test_seed_question_set_pass_rate(assistant: Assistant) -> None:
    rows = [json.loads(line) for line in (DATA / "seed_questions.jsonl").read_text().splitlines() if line.strip()]
    assert len(rows) >= 15 and sum(not r["answers"] for r in rows) >= 3
    passed, failures, latencies = 0, [], []
    for row in rows:
        answer = assistant.ask(row["question"])
        latencies.append(answer.timings["total"])
        assert_citations_exact(assistant, answer)
        if row["answers"]:
            ok = not answer.abstained and any(g.lower() in answer.text.lower() for g in row["answers"])
        else:
            ok = answer.abstained
        passed += ok
        if not ok:
            failures.append(f"{row['id']}: {row['question']} -> {answer.text[:120]}")
    rate = passed / len(rows)
    print(f"seed set: {passed}/{len(rows)} passed, median ask {statistics.median(latencies) * 1000:.0f} ms")
    assert rate >= PASS_RATE_FLOOR, f"pass rate {rate:.2f} below {PASS_RATE_FLOOR}:\n" + "\n".join(failures)
