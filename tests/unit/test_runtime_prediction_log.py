"""The prediction log joins delayed labels to predictions, judges each row once and stays bounded."""

from __future__ import annotations

import threading

import pytest

from modelrollout.runtime.prediction_log import InMemoryPredictionLog, Origin, compare

STABLE = Origin(model="iris", version="v1", track="stable")


def test_compare_is_exact_string_equality():
    assert compare("setosa", "setosa") == "correct"
    assert compare("setosa", "Setosa") == "incorrect"


def test_feedback_is_joined_by_request_id_and_row():
    log = InMemoryPredictionLog(capacity=10)
    log.record("r1", ["setosa", "virginica"], origin=STABLE)
    first = log.judge("r1", row=0, actual="setosa")
    second = log.judge("r1", row=1, actual="setosa")
    assert (first.outcome, first.predicted, first.origin) == ("correct", "setosa", STABLE)
    assert (second.outcome, second.predicted) == ("incorrect", "virginica")


@pytest.mark.parametrize(("request_id", "row"), [("never-seen", 0), ("r1", 1), ("r1", -1)])
def test_unknown_request_or_row_is_reported_as_unknown(request_id, row):
    log = InMemoryPredictionLog(capacity=10)
    log.record("r1", ["setosa"], origin=STABLE)
    verdict = log.judge(request_id, row=row, actual="setosa")
    assert verdict.outcome == "unknown_request"
    assert verdict.predicted is None and verdict.origin is None


def test_a_row_is_judged_only_once_so_retries_do_not_double_count():
    log = InMemoryPredictionLog(capacity=10)
    log.record("r1", ["setosa"], origin=STABLE)
    assert log.judge("r1", row=0, actual="versicolor").outcome == "incorrect"
    again = log.judge("r1", row=0, actual="setosa")
    assert (again.outcome, again.predicted) == ("duplicate", "setosa")


def test_oldest_requests_are_evicted_when_rows_exceed_capacity():
    log = InMemoryPredictionLog(capacity=5)
    log.record("a", ["x", "x"], origin=STABLE)
    log.record("b", ["y", "y"], origin=STABLE)
    log.record("c", ["z", "z"], origin=STABLE)  # 6 rows > 5: "a" goes
    assert log.rows == 4 and len(log) == 2
    assert log.judge("a", row=0, actual="x").outcome == "unknown_request"
    assert log.judge("b", row=0, actual="y").outcome == "correct"
    assert log.judge("c", row=1, actual="z").outcome == "correct"


def test_memory_stays_bounded_under_many_requests():
    log = InMemoryPredictionLog(capacity=1000)
    for i in range(10_000):
        log.record(f"r{i}", ["a", "b", "c"], origin=STABLE)
        assert log.rows <= 1000
    assert log.judge("r9999", row=2, actual="c").outcome == "correct"
    assert log.judge("r0", row=0, actual="a").outcome == "unknown_request"


def test_a_request_larger_than_the_whole_log_is_not_remembered():
    log = InMemoryPredictionLog(capacity=3)
    log.record("small", ["a"], origin=STABLE)
    log.record("huge", ["a"] * 4, origin=STABLE)
    assert log.judge("huge", row=0, actual="a").outcome == "unknown_request"
    assert log.judge("small", row=0, actual="a").outcome == "correct"


def test_a_reused_request_id_replaces_the_older_prediction():
    log = InMemoryPredictionLog(capacity=10)
    log.record("r1", ["a", "b", "c"], origin=STABLE)
    log.record("r1", ["z"], origin=Origin(model="iris", version="v2", track="canary"))
    assert log.rows == 1
    verdict = log.judge("r1", row=0, actual="z")
    assert verdict.outcome == "correct" and verdict.origin.version == "v2"


def test_capacity_must_be_positive():
    with pytest.raises(ValueError, match="at least 1"):
        InMemoryPredictionLog(capacity=0)


def test_concurrent_feedback_counts_each_row_exactly_once():
    log = InMemoryPredictionLog(capacity=100)
    log.record("r1", ["a"] * 50, origin=STABLE)
    outcomes: list[str] = []
    lock = threading.Lock()

    def send_all():
        for row in range(50):
            outcome = log.judge("r1", row=row, actual="a").outcome
            with lock:
                outcomes.append(outcome)

    threads = [threading.Thread(target=send_all) for _ in range(4)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=10)
    assert outcomes.count("correct") == 50
    assert outcomes.count("duplicate") == 150
