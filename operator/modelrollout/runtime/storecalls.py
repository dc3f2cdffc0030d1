"""Prediction-store calls kept away from everything else a serving process does.

A store that hangs (a lock held by a stuck writer, a stalled network volume, a database that
does not answer) must cost the requests that need it a bounded wait and nothing more. So every
store call here:

- runs on its own small thread pool (never the event loop's default executor, where the model
  calls of ``/predict`` run: a stuck store would otherwise fill it and stall every prediction);
- has a deadline (``MODELROLLOUT_STORE_TIMEOUT_S``), after which the request stops waiting and
  answers without the store (hybrid: from the model; batch: 503) while the thread finishes on its
  own, bounded by the driver's own timeout, which is half the deadline;
- is refused at once when ``threads`` calls are already running and as many are queued, so a
  flood of lookups against a dead store neither grows a queue nor waits for one.

Each outcome of a call the store got feeds :class:`StoreHealth`, which says how long the store has
been failing; readiness of a lookup-only pod is judged from it (see :meth:`StoreCalls.ready`). A
call refused because the pool is full says nothing about the store (it is this pod's load, which
clients control), so it never makes a pod unready.

Metric: ``modelrollout_store_errors_total{reason="timeout"|"error"|"busy"}`` per failed call.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sqlite3
import threading
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, Literal, TypeVar

from .registries import once_per_registry
from .store.naming import StoreError

T = TypeVar("T")
Reason = Literal["timeout", "error", "busy"]
REASONS: tuple[Reason, ...] = ("timeout", "error", "busy")
STORE_ERRORS = "modelrollout_store_errors_total"
PROBE_INTERVAL_S = 1.0
log = logging.getLogger(__name__)


class StoreUnavailable(Exception):
    """The store did not answer in time, failed, or too many calls were already waiting on it."""

    def __init__(self, reason: Reason, message: str) -> None:
        super().__init__(message)
        self.reason = reason


def is_store_fault(exc: BaseException) -> bool:
    """True for errors of the store (driver, file system, lock, refused operation), False for bugs.

    Bugs stay 500s; store faults become 503s (batch) or a model answer (hybrid).
    """
    return isinstance(exc, (StoreError, sqlite3.Error, OSError)) or type(exc).__module__.startswith("psycopg")


@dataclass
class StoreHealth:
    """Since when the store has been failing (pure; the caller passes the time)."""

    failing_since: float | None = None
    last_error: str | None = None

    def success(self) -> None:
        self.failing_since, self.last_error = None, None

    def failure(self, now: float, message: str) -> None:
        if self.failing_since is None:
            self.failing_since = now
        self.last_error = message

    def failing_for(self, now: float) -> float:
        return 0.0 if self.failing_since is None else max(0.0, now - self.failing_since)


class StoreCalls:
    """Run blocking store functions on a bounded pool with a deadline; see the module docstring."""

    def __init__(
        self, *, threads: int, deadline_s: float, registry: Any = None,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        self.deadline_s = deadline_s
        self.max_pending = 2 * threads
        self.health = StoreHealth()
        self._clock = clock
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="store")
        self._pending = 0
        self._lock = threading.Lock()
        self._probe: Future | None = None
        self._probed_at: float | None = None
        self._errors = store_error_counter(registry)

    @property
    def pending(self) -> int:
        """Calls submitted and not finished (running or queued), including abandoned ones."""
        return self._pending

    def _submit(self, fn: Callable[..., T], *args: Any) -> Future:
        with self._lock:
            if self._pending >= self.max_pending:
                raise self._failed("busy", f"{self._pending} store calls are still running or queued")
            self._pending += 1
        future = self._pool.submit(fn, *args)
        future.add_done_callback(self._finished)
        return future

    def _finished(self, _: Future) -> None:
        with self._lock:
            self._pending -= 1

    def _failed(self, reason: Reason, detail: str) -> StoreUnavailable:
        """Count the failure; only the store's own (error, timeout) make it unhealthy: a full pool
        (busy) is this process's load, and a client's flood must not take a pod out of rotation."""
        self._errors.labels(reason).inc()
        if reason != "busy":
            self.health.failure(self._clock(), detail)
        return StoreUnavailable(reason, f"prediction store unavailable ({reason}): {detail}")

    def _outcome(self, future: Future) -> Any:
        """The finished call's result; store faults become StoreUnavailable, bugs propagate."""
        exc = future.exception()
        if exc is None:
            self.health.success()
            return future.result()
        if is_store_fault(exc):
            text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise self._failed("error", text) from exc
        raise exc

    async def run(self, fn: Callable[..., T], *args: Any) -> T:
        """``fn(*args)`` on the store pool; StoreUnavailable after the deadline or on a store fault."""
        future = self._submit(fn, *args)
        # Judged from the future itself below. At the deadline, a call still queued is cancelled
        # (it frees its slot); one already running cannot be and finishes on its own thread.
        with contextlib.suppress(Exception):
            async with asyncio.timeout(self.deadline_s):
                await asyncio.wrap_future(future)
        return self._judge(future)

    def call(self, fn: Callable[..., T], *args: Any) -> T:
        """The blocking twin of :meth:`run`, for threads (waits at most the deadline)."""
        future = self._submit(fn, *args)
        with contextlib.suppress(Exception):  # judged from the future itself below
            future.result(timeout=self.deadline_s)
        return self._judge(future)

    def _judge(self, future: Future) -> Any:
        if not future.done() or future.cancelled():  # abandoned: left to its own (driver) timeout
            raise self._failed("timeout", f"no answer within {self.deadline_s:g} s")
        return self._outcome(future)

    def probe(self, fn: Callable[[], Any]) -> None:
        """Start ``fn`` in the background (at most one at a time, at most every PROBE_INTERVAL_S),
        never waiting for it: readiness asks the store without ever blocking on it."""
        now = self._clock()
        if self._probe is not None and not self._probe.done():
            return
        if self._probed_at is not None and now - self._probed_at < PROBE_INTERVAL_S:
            return
        self._probed_at = now
        try:
            self._probe = self._submit(fn)
        except StoreUnavailable:
            return
        self._probe.add_done_callback(self._probe_done)

    def _probe_done(self, future: Future) -> None:
        try:
            self._outcome(future)
        except StoreUnavailable:
            pass
        except Exception:  # noqa: BLE001 - a bug in the probe must not break readiness
            log.exception("store probe failed")

    def ready(self, *, unready_after_s: float) -> bool:
        """False once the store has been failing for ``unready_after_s`` (0: always True)."""
        if unready_after_s <= 0:
            return True
        return self.health.failing_for(self._clock()) < unready_after_s

    def close(self) -> None:
        self._pool.shutdown(wait=False, cancel_futures=True)


def store_error_counter(registry: Any = None) -> Any:
    """``modelrollout_store_errors_total{reason}``, registered once per registry, zero series created."""

    def create(reg: Any) -> Any:
        import prometheus_client

        counter = prometheus_client.Counter(
            STORE_ERRORS, "Prediction-store calls that failed, timed out or were refused (busy).",
            ["reason"], registry=reg,
        )  # fmt: skip
        for reason in REASONS:
            counter.labels(reason)
        return counter

    return once_per_registry("store-errors", registry, create)
