"""The prediction log's writer: a bounded queue on the request path, one thread writing batches.

A request only appends its rows to a queue (a lock and a list append): it never waits for the
store. The writer thread takes what has accumulated every ``flush_interval_s`` (100 ms), or as
soon as ``batch_rows`` (500) rows wait, and inserts it in one transaction on its own connection,
whose statements wait at most the store deadline (``open_log_store``). So:

- a full queue (``capacity`` rows, ``MODELROLLOUT_PREDICTION_LOG_QUEUE``) drops the new request's
  rows, counted (``reason="queue_full"``): never the request, never unbounded memory;
- a failed or timed-out batch is dropped, counted (``reason="store_error"``), and the writer waits
  ``retry_after_s`` before the next attempt (meanwhile the queue fills and drops);
- every ``prune_interval_s`` it deletes rows older than the retention, in bounded batches.

:meth:`PredictionLogWriter.flush` waits (bounded) until everything queued so far was written or
dropped: ``/feedback`` uses it before it calls a request id unknown, so a label sent right after
its prediction is not refused only because the row was still queued.
"""

from __future__ import annotations

import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from typing import Any

from ..logsafe import RateLimitedLog
from ..storecalls import is_store_fault
from .records import Record

log = logging.getLogger(__name__)


class PredictionLogWriter:
    """See the module docstring. ``store``: a store opened with ``open_log_store``."""

    def __init__(
        self, store: Any, *, capacity: int, retention_s: float, counters: Any, batch_rows: int = 500,
        flush_interval_s: float = 0.1, max_batch_rows: int = 5000, prune_interval_s: float | None = None,
        prune_batch_rows: int = 5000, retry_after_s: float = 1.0, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        if capacity < 1 or batch_rows < 1 or retention_s <= 0:
            raise ValueError("capacity and batch_rows must be >= 1 and retention_s > 0")
        self.store, self.capacity, self.retention_s = store, capacity, retention_s
        self.batch_rows, self.flush_interval_s = batch_rows, flush_interval_s
        self.max_batch_rows = max(max_batch_rows, batch_rows)
        self.prune_interval_s = prune_interval_s or min(60.0, max(1.0, retention_s / 10))
        self.prune_batch_rows, self.retry_after_s = prune_batch_rows, retry_after_s
        self.counters, self.clock = counters, clock
        self._queue: deque[Sequence[Record]] = deque()
        self._rows = 0
        self._enqueued = 0  # rows ever accepted into the queue
        self._handled = 0  # of those, rows written or dropped
        self._flush_wanted = 0
        self._stopping = False
        self._cond = threading.Condition()
        self._resume = threading.Event()
        self._next_prune = 0.0
        self._thread: threading.Thread | None = None
        self._failures = RateLimitedLog(log, rate=0.2)

    # --- the request path --------------------------------------------------------------------------
    def put(self, rows: Sequence[Record]) -> bool:
        """Queue one request's rows, all or none; False (and counted) when they do not fit."""
        n = len(rows)
        if n == 0:
            return True
        with self._cond:
            fits = not self._stopping and self._rows + n <= self.capacity
            if fits:
                self._queue.append(rows)
                self._rows += n
                self._enqueued += n
                if self._rows >= self.batch_rows:
                    self._cond.notify_all()
        if not fits:
            self.counters.dropped.labels("queue_full").inc(n)
        return fits

    @property
    def queued(self) -> int:
        """Rows waiting in the queue (not counting a batch being written)."""
        return self._rows

    @property
    def pending(self) -> int:
        """Rows accepted and not yet written or dropped (queued or being written)."""
        return self._enqueued - self._handled

    def flush(self, timeout_s: float) -> bool:
        """Wait until every row queued before this call is written or dropped; False on timeout."""
        deadline = time.monotonic() + timeout_s
        with self._cond:
            target = self._enqueued
            self._flush_wanted = max(self._flush_wanted, target)
            self._cond.notify_all()
            while self._handled < target:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or self._thread is None or not self._thread.is_alive():
                    return False
                self._cond.wait(remaining)
        return True

    # --- lifecycle ---------------------------------------------------------------------------------
    def start(self) -> PredictionLogWriter:
        self._thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (bounded by ``timeout_s``), then end the thread."""
        with self._cond:
            self._stopping = True
            self._cond.notify_all()
        self._resume.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    # --- the writer thread -------------------------------------------------------------------------
    def _run(self) -> None:
        try:
            while (batch := self._take()) is not None:
                if batch:
                    self._write(batch)
                self._maybe_prune()
        finally:
            self.store.release_thread()

    def _take(self) -> list[Record] | None:
        """The next batch (possibly empty after an idle interval); None once stopping and drained."""
        with self._cond:
            deadline = time.monotonic() + self.flush_interval_s
            while not self._stopping and self._rows < self.batch_rows:
                if self._queue and self._flush_wanted > self._handled:
                    break
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    break
                self._cond.wait(remaining)
            if self._stopping and not self._queue:
                return None
            batch: list[Record] = []
            while self._queue and len(batch) < self.max_batch_rows:
                batch.extend(self._queue.popleft())
            self._rows -= len(batch)
            return batch

    def _write(self, batch: list[Record]) -> None:
        failed = False
        try:
            written = self.store.log_predictions(batch)
            self.counters.written.inc(written)
        except Exception as exc:  # noqa: BLE001 - the writer must outlive any failure
            failed = True
            self.counters.dropped.labels("store_error").inc(len(batch))
            if is_store_fault(exc):
                self._failures.log(logging.WARNING, "prediction log: %d rows dropped, the store failed: %s",
                                   len(batch), _first_line(exc))  # fmt: skip
            else:
                log.exception("prediction log: %d rows dropped by an unexpected error", len(batch))
        finally:
            with self._cond:
                self._handled += len(batch)
                self._cond.notify_all()
        if failed and not self._stopping:
            self._resume.wait(self.retry_after_s)  # back off; the queue bounds what waits meanwhile

    def _maybe_prune(self) -> None:
        now = time.monotonic()
        if now < self._next_prune:
            return
        self._next_prune = now + self.prune_interval_s
        try:
            deleted = self.store.prune(
                cutoff=self.clock() - self.retention_s, batch_rows=self.prune_batch_rows
            )
        except Exception as exc:  # noqa: BLE001 - retried at the next interval
            self._failures.log(
                logging.WARNING, "prediction log: retention delete failed: %s", _first_line(exc)
            )
            return
        if deleted:
            log.info("prediction log: %d rows older than %g s deleted", deleted, self.retention_s)


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
