"""Store calls on their own bounded pool with a deadline; health and readiness from their outcomes."""

from __future__ import annotations

import asyncio
import sqlite3
import threading
import time

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.store.naming import StoreError
from modelrollout.runtime.storecalls import StoreCalls, StoreHealth, StoreUnavailable, is_store_fault


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def errors(registry: CollectorRegistry, reason: str) -> float:
    return registry.get_sample_value("modelrollout_store_errors_total", {"reason": reason}) or 0.0


@pytest.fixture
def gate():
    """A store function that blocks until the test opens the gate (always opened at the end)."""
    event = threading.Event()
    yield event
    event.set()


def make(threads: int = 2, deadline_s: float = 0.2, clock=time.monotonic):
    registry = CollectorRegistry()
    return StoreCalls(threads=threads, deadline_s=deadline_s, registry=registry, clock=clock), registry


def test_an_answer_within_the_deadline_is_returned_and_counts_as_healthy():
    calls, registry = make()
    assert asyncio.run(calls.run(lambda x: x * 2, 21)) == 42
    assert calls.call(lambda: "sync") == "sync"
    assert calls.health.failing_since is None and errors(registry, "timeout") == 0


def test_a_call_past_the_deadline_gives_up_without_waiting_for_it(gate):
    calls, registry = make(deadline_s=0.1)
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as failure:
        asyncio.run(calls.run(gate.wait, 30))
    assert time.perf_counter() - started < 1.0
    assert failure.value.reason == "timeout" and "no answer within 0.1 s" in str(failure.value)
    assert errors(registry, "timeout") == 1 and calls.pending == 1  # still running on its thread
    gate.set()
    deadline = time.monotonic() + 5
    while calls.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.pending == 0


def test_calls_beyond_the_bound_are_refused_at_once(gate):
    calls, registry = make(threads=1, deadline_s=0.05)
    for _ in range(2):  # one running, one queued: 2 * threads
        with pytest.raises(StoreUnavailable):
            calls.call(gate.wait, 30)
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as refused:
        asyncio.run(calls.run(lambda: "never"))
    assert refused.value.reason == "busy" and time.perf_counter() - started < 0.05
    assert errors(registry, "busy") == 1


def test_a_full_pool_does_not_make_the_store_unhealthy(gate):
    """Busy is this process's load, not the store failing: a flood must not flip readiness."""
    clock = Clock()
    calls, _ = make(threads=1, deadline_s=5, clock=clock)
    calls._submit(gate.wait, 30)
    calls._submit(gate.wait, 30)
    with pytest.raises(StoreUnavailable):
        calls.call(lambda: None)
    clock.now += 3600
    assert calls.health.failing_since is None and calls.ready(unready_after_s=1)


def test_a_store_fault_is_unavailable_and_a_bug_propagates():
    calls, registry = make()

    def locked():
        raise sqlite3.OperationalError("database is locked")

    with pytest.raises(StoreUnavailable) as failure:
        asyncio.run(calls.run(locked))
    assert failure.value.reason == "error" and "database is locked" in str(failure.value)
    assert errors(registry, "error") == 1

    def bug():
        raise KeyError("a bug, not an outage")

    with pytest.raises(KeyError):
        asyncio.run(calls.run(bug))


def test_a_timeout_raised_by_the_store_itself_is_an_error_not_the_deadline():
    calls, _ = make(deadline_s=5)

    def socket_timeout():
        raise TimeoutError("read timed out")

    with pytest.raises(StoreUnavailable) as failure:
        calls.call(socket_timeout)
    assert failure.value.reason == "error"


@pytest.mark.parametrize(
    ("exc", "fault"),
    [(sqlite3.OperationalError("x"), True), (OSError("x"), True), (StoreError("x"), True),
     (ValueError("x"), False), (KeyError("x"), False)],
)  # fmt: skip
def test_store_faults_are_told_from_bugs(exc, fault):
    assert is_store_fault(exc) is fault


def test_health_counts_from_the_first_failure_until_a_success():
    health = StoreHealth()
    assert health.failing_for(10.0) == 0
    health.failure(10.0, "a")
    health.failure(12.0, "b")
    assert health.failing_for(15.0) == 5.0 and health.last_error == "b"
    health.success()
    assert health.failing_for(20.0) == 0


def test_readiness_turns_false_after_the_threshold_and_zero_never_does():
    clock = Clock()
    calls, _ = make(clock=clock)
    calls.health.failure(clock.now, "down")
    clock.now += 2.9
    assert calls.ready(unready_after_s=3.0)
    clock.now += 0.1
    assert not calls.ready(unready_after_s=3.0)
    assert calls.ready(unready_after_s=0)


def test_a_probe_runs_in_the_background_at_most_every_second(gate):
    clock = Clock()
    calls, _ = make(clock=clock, deadline_s=5)
    runs: list[float] = []
    done = threading.Event()

    def probe():
        runs.append(clock.now)
        done.set()

    calls.probe(probe)
    assert done.wait(5)
    calls.probe(probe)  # too soon
    clock.now += 1.0
    done.clear()
    calls.probe(probe)
    assert done.wait(5) and runs == [100.0, 101.0]


def test_a_failing_probe_marks_the_store_failing_and_a_good_one_heals_it():
    clock = Clock()
    calls, _ = make(clock=clock, deadline_s=5)

    def down():
        raise sqlite3.OperationalError("unable to open database file")

    calls.probe(down)
    deadline = time.monotonic() + 5
    while calls.health.failing_since is None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.health.failing_since == 100.0
    clock.now += 1.0
    calls.probe(lambda: None)
    while calls.health.failing_since is not None and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.health.failing_since is None


def test_a_call_still_queued_at_its_deadline_is_dropped_from_the_queue(gate):
    calls, _ = make(threads=1, deadline_s=0.1)
    ran: list[int] = []

    async def both():
        running = asyncio.ensure_future(calls.run(gate.wait, 30))
        queued = asyncio.ensure_future(calls.run(ran.append, 1))
        return await asyncio.gather(running, queued, return_exceptions=True)

    results = asyncio.run(both())
    assert [r.reason for r in results] == ["timeout", "timeout"]
    gate.set()
    deadline = time.monotonic() + 5
    while calls.pending and time.monotonic() < deadline:
        time.sleep(0.01)
    assert calls.pending == 0 and ran == []  # the queued call never ran
