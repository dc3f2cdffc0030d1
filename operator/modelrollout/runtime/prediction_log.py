"""A bounded memory of recent predictions, so delayed ground truth can be joined to them.

Labels arrive minutes to days after the prediction (a user clicks, a fraud case closes). The
feedback endpoint looks the request id up here, compares the true label with what the model said
and counts the outcome; that counter is how a canary's accuracy becomes a Prometheus metric.

Bounded by *predictions* (rows), not requests, so one client sending huge batches cannot grow
memory past the limit; the oldest requests are forgotten first and feedback for them is then
reported as ``unknown_request``. The log is per process: run one worker per pod, and note that a
feedback call must reach the pod that served the prediction (or a shared store must back the
:class:`PredictionLog` protocol).
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

# `duplicate` exists so a retried feedback call cannot count the same prediction twice.
Outcome = Literal["correct", "incorrect", "unknown_request", "duplicate"]
OUTCOMES: tuple[Outcome, ...] = ("correct", "incorrect", "unknown_request", "duplicate")


@dataclass(frozen=True, slots=True)
class Origin:
    """Which model answered; feedback is counted against this, not against whoever receives it."""

    model: str
    version: str
    track: str


@dataclass(frozen=True, slots=True)
class FeedbackVerdict:
    """The result of joining one true label to the log."""

    outcome: Outcome
    predicted: str | None = None
    origin: Origin | None = None


class PredictionLog(Protocol):
    """What the feedback join needs; the in-memory log below is the default implementation."""

    def record(self, request_id: str, labels: Sequence[str], *, origin: Origin) -> None: ...

    def judge(self, request_id: str, *, row: int, actual: str) -> FeedbackVerdict: ...


def compare(predicted: str, actual: str) -> Outcome:
    """``correct`` when the true label equals the predicted one (exact string match)."""
    return "correct" if predicted == actual else "incorrect"


@dataclass(slots=True)
class _Entry:
    labels: tuple[str, ...]
    origin: Origin
    judged_rows: int = 0  # bit i set once row i received feedback


class InMemoryPredictionLog:
    """Thread-safe FIFO of ``request_id -> predicted labels``, holding at most ``capacity`` rows."""

    def __init__(self, *, capacity: int) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be at least 1 prediction, got {capacity}")
        self.capacity = capacity
        self._entries: OrderedDict[str, _Entry] = OrderedDict()
        self._rows = 0
        self._lock = threading.Lock()

    def __len__(self) -> int:
        """Number of requests remembered."""
        return len(self._entries)

    @property
    def rows(self) -> int:
        """Number of predictions (rows) remembered."""
        return self._rows

    def record(self, request_id: str, labels: Sequence[str], *, origin: Origin) -> None:
        """Remember the labels predicted for ``request_id`` (a reused id replaces the older entry).

        A request with more rows than the whole capacity is not remembered at all: keeping part of
        it would make feedback for the rest look like unknown requests for no visible reason.
        """
        entry = _Entry(labels=tuple(labels), origin=origin)
        with self._lock:
            old = self._entries.pop(request_id, None)
            if old is not None:
                self._rows -= len(old.labels)
            if len(entry.labels) > self.capacity:
                return
            self._entries[request_id] = entry
            self._rows += len(entry.labels)
            while self._rows > self.capacity:
                _, evicted = self._entries.popitem(last=False)
                self._rows -= len(evicted.labels)

    def judge(self, request_id: str, *, row: int, actual: str) -> FeedbackVerdict:
        """Compare ``actual`` with the prediction for ``(request_id, row)``; each row is judged once."""
        with self._lock:
            entry = self._entries.get(request_id)
            if entry is None or not 0 <= row < len(entry.labels):
                return FeedbackVerdict(outcome="unknown_request")
            predicted = entry.labels[row]
            bit = 1 << row
            if entry.judged_rows & bit:
                return FeedbackVerdict(outcome="duplicate", predicted=predicted, origin=entry.origin)
            entry.judged_rows |= bit
        return FeedbackVerdict(outcome=compare(predicted, actual), predicted=predicted, origin=entry.origin)
