"""The prediction log's writer: a bounded queue the request path never waits on, batches written
off the request path, drops counted, retention by time."""

from __future__ import annotations

import sqlite3
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.ground_truth.metrics import LOG_DROPPED, LOG_WRITTEN, log_counters
from modelrollout.runtime.ground_truth.records import Origin, records
from modelrollout.runtime.ground_truth.writer import PredictionLogWriter
from modelrollout.runtime.store.factory import open_log_store
from tests.support.waiting import wait_until

ORIGIN = Origin("iris", "v1", "stable")


def rows(request_id: str, n: int = 1, *, ts: float | None = None) -> list[tuple]:
    return records(request_id, ["setosa"] * n, origin=ORIGIN, ts=ts)


def sample(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


class FakeStore:
    """Records batches; can be made to fail or to block (a stuck store)."""

    def __init__(self) -> None:
        self.batches: list[list[tuple]] = []
        self.fail = False
        self.gate = threading.Event()
        self.gate.set()
        self.pruned: list[float] = []

    def log_predictions(self, batch):
        self.gate.wait(10)
        if self.fail:
            raise sqlite3.OperationalError("database is locked")
        self.batches.append(list(batch))
        return len(batch)

    def prune(self, *, cutoff, batch_rows):
        self.pruned.append(cutoff)
        return 0

    def release_thread(self):
        pass


@pytest.fixture
def registry():
    return CollectorRegistry()


def writer_for(store, registry, **kwargs) -> PredictionLogWriter:
    options = {"capacity": 100, "retention_s": 3600.0, "flush_interval_s": 0.02, "retry_after_s": 0.05}
    return PredictionLogWriter(store, counters=log_counters(registry), **{**options, **kwargs})


def test_rows_are_written_in_batches_and_counted(registry):
    store = FakeStore()
    writer = writer_for(store, registry).start()
    try:
        for i in range(10):
            assert writer.put(rows(f"r{i}", 3))
        assert writer.flush(5.0)
    finally:
        writer.stop()
    assert sum(len(b) for b in store.batches) == 30 and len(store.batches) < 10
    assert sample(registry, LOG_WRITTEN) == 30 and writer.pending == 0


def test_a_full_queue_drops_the_request_rows_and_counts_them_never_blocking(registry):
    store = FakeStore()
    store.gate.clear()  # the store hangs: nothing leaves the queue
    writer = writer_for(store, registry, capacity=10, batch_rows=1000).start()
    try:
        started = time.perf_counter()
        accepted = [writer.put(rows(f"r{i}", 4)) for i in range(5)]
        assert time.perf_counter() - started < 0.5  # the request path never waited on the store
        assert accepted.count(False) >= 2  # 10 rows of room: at most two requests of 4 (plus one taken)
        assert sample(registry, LOG_DROPPED, reason="queue_full") == 4 * accepted.count(False)
    finally:
        store.gate.set()
        writer.stop()


def test_a_request_is_logged_whole_or_not_at_all(registry):
    writer = writer_for(FakeStore(), registry, capacity=5)  # not started: the queue only fills
    assert writer.put(rows("a", 3))
    assert not writer.put(rows("b", 3))  # would not fit whole
    assert writer.put(rows("c", 2))
    assert writer.queued == 5


def test_a_failing_store_drops_the_batch_counts_it_and_the_writer_goes_on(registry):
    store = FakeStore()
    store.fail = True
    writer = writer_for(store, registry).start()
    try:
        writer.put(rows("lost", 2))
        assert writer.flush(5.0)
        assert sample(registry, LOG_DROPPED, reason="store_error") == 2
        store.fail = False
        writer.put(rows("kept", 1))
        assert writer.flush(5.0)
    finally:
        writer.stop()
    assert [b[0][0] for b in store.batches] == ["kept"] and sample(registry, LOG_WRITTEN) == 1


def test_stop_writes_what_is_still_queued(registry):
    store = FakeStore()
    writer = writer_for(store, registry, flush_interval_s=30.0, batch_rows=1000).start()
    writer.put(rows("late", 2))
    writer.stop(timeout_s=5.0)
    assert sum(len(b) for b in store.batches) == 2
    assert not writer.put(rows("after-stop"))


def test_retention_deletes_by_time_never_by_count(registry, tmp_path):
    """Old rows go; a flood of recent rows evicts nothing."""
    now = [1_000_000.0]
    store = open_log_store(f"sqlite:///{tmp_path}/log.sqlite", wait_timeout_s=1.0)
    writer = writer_for(store, registry, capacity=100_000, retention_s=3600.0, prune_interval_s=0.05,
                        clock=lambda: now[0]).start()  # fmt: skip
    try:
        writer.put(rows("old", 1, ts=now[0] - 7200))
        writer.put(rows("kept", 1, ts=now[0] - 60))
        for i in range(20):
            writer.put(rows(f"flood-{i}", 1000, ts=now[0]))
        assert writer.flush(10.0)
        wait_until(lambda: store.find_prediction("old", 0) is None, timeout=10, what="the old row deleted")
    finally:
        writer.stop()
    assert store.find_prediction("kept", 0) is not None
    assert store.count_predictions(model="iris", version="v1", since=0) == 20_001


def test_the_writer_writes_into_a_real_sqlite_log_first_write_wins(registry, tmp_path):
    store = open_log_store(f"sqlite:///{tmp_path}/log.sqlite", wait_timeout_s=1.0)
    writer = writer_for(store, registry).start()
    try:
        writer.put(records("same-id", ["setosa"], origin=ORIGIN))
        writer.put(records("same-id", ["virginica"], origin=Origin("iris", "v2", "canary")))
        assert writer.flush(5.0)
    finally:
        writer.stop()
    assert store.find_prediction("same-id", 0).prediction == "setosa"
    assert sample(registry, LOG_WRITTEN) == 1
