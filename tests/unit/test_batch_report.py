"""The run report: fits the termination log, keeps what the operator needs, maps exit codes."""

from __future__ import annotations

import json

from modelrollout.runtime.batch import report
from modelrollout.runtime.batch.runner import RunConfig, RunResult
from modelrollout.runtime.store.base import FinalizeOutcome


def _big_report() -> dict:
    checks = [
        {"name": f"c{i}", "value": 0.1, "threshold": 0.2, "verdict": "pass", "detail": "x" * 300}
        for i in range(8)
    ]
    outcome = FinalizeOutcome("rejected", verification={"passed": False, "checks": checks})
    config = RunConfig(table="scores", run_id="r1", key_columns=("id",), model_version="v1")
    result = RunResult("rejected", rows_in=10, rows_written=10, outcome=outcome, timings={"read_s": 1.0})
    return report.build(
        config=config, result=result, status="rejected", error="E" * 5000, input_description="p" * 900
    )


def test_a_large_report_is_shrunk_to_the_termination_log_limit_keeping_verdicts():
    text = report.render(_big_report())
    assert len(text.encode()) <= report.TERMINATION_LOG_LIMIT
    data = json.loads(text)
    assert data["status"] == "rejected" and data["rows_in"] == 10
    assert [c["verdict"] for c in data["verification"]["checks"]] == ["pass"] * 8
    assert data["error"].endswith("...")


def test_a_small_report_is_rendered_whole():
    small = report.build(config=None, result=None, status="failed", error="boom")
    assert json.loads(report.render(small)) == json.loads(json.dumps(small))


def test_exit_codes_tell_success_bad_input_rejection_and_failure_apart():
    assert [report.exit_code(s) for s in ("published", "already_published", "waiting")] == [0, 0, 0]
    assert report.exit_code("invalid_input") == 2
    assert report.exit_code("rejected") == 3
    assert report.exit_code("failed") == 1 and report.exit_code("anything-else") == 1
