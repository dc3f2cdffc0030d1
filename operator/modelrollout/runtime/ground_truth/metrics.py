"""The ground-truth metrics a serving pod exports, by name.

Counters (summed across workers by themselves):

``modelrollout_prediction_log_written_total``  rows written to the shared prediction log
``modelrollout_prediction_log_dropped_total{reason}``  rows not logged: ``queue_full`` (the queue
    was at ``MODELROLLOUT_PREDICTION_LOG_QUEUE``) or ``store_error`` (the batch's write failed or
    timed out); the request was answered either way
``modelrollout_labels_total{outcome}``  labels received through ``/feedback``: ``accepted``,
    ``duplicate``, ``unknown_request``, ``invalid``, ``unauthorized`` (also ``/feedback`` disabled),
    ``unavailable`` (the store could not be asked; the client may retry)

Gauges (the figures of this pod's model version over its predictions within retention, computed
from the shared store; no version label: the scrape's target labels say whose they are). They
are created on the first computation, so a pod that never reached the store exports none (no
data: inconclusive) rather than zeros. ``multiprocess_mode="max"``: BentoML runs prometheus_client
in multiprocess mode, where every worker writes its own value; all compute the same numbers.

``modelrollout_ground_truth_{predictions,labelled,correct,numeric,abs_error_sum,squared_error_sum}``,
``..._{true,false}_{positives,negatives}`` (only with ``MODELROLLOUT_POSITIVE_CLASS``) and
``modelrollout_ground_truth_updated_timestamp_seconds``.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass, field
from typing import Any

from ..registries import once_per_registry
from .records import OUTCOMES

LOG_WRITTEN = "modelrollout_prediction_log_written_total"
LOG_DROPPED = "modelrollout_prediction_log_dropped_total"
LABELS_TOTAL = "modelrollout_labels_total"
DROP_REASONS = ("queue_full", "store_error")
PREFIX = "modelrollout_ground_truth_"
FIGURES = ("predictions", "labelled", "correct", "numeric", "abs_error_sum", "squared_error_sum")
CONFUSION = ("true_positives", "false_positives", "false_negatives", "true_negatives")
UPDATED = "updated_timestamp_seconds"
_HELP = {
    "predictions": "Predictions of this model version in the shared log (within retention).",
    "labelled": "Of those, predictions with a ground-truth label.",
    "correct": "Labelled predictions equal to their label (string equality).",
    "numeric": "Labelled predictions where prediction and label both parse as numbers.",
    "abs_error_sum": "Sum of |label - prediction| over the numeric labelled predictions.",
    "squared_error_sum": "Sum of (label - prediction)^2 over the numeric labelled predictions.",
    "true_positives": "Labelled predictions: predicted the positive class, and it was.",
    "false_positives": "Labelled predictions: predicted the positive class, and it was not.",
    "false_negatives": "Labelled predictions: predicted another class, and it was the positive one.",
    "true_negatives": "Labelled predictions: predicted another class, and it was not the positive one.",
    UPDATED: "When the figures were last computed (Unix time).",
}


@dataclass(frozen=True)
class LogCounters:
    written: Any
    dropped: Any  # labelled by reason
    labels: Any  # labelled by outcome

    def count_label(self, outcome: str) -> None:
        if outcome not in OUTCOMES:
            raise ValueError(f"unknown label outcome {outcome!r}; expected one of {OUTCOMES}")
        self.labels.labels(outcome).inc()


def log_counters(registry: Any = None) -> LogCounters:
    """The counters, registered once per registry (default: the process's), zero series created."""
    return once_per_registry("prediction-log", registry, _create)


def _create(registry: Any) -> LogCounters:
    from prometheus_client import Counter

    counters = LogCounters(
        written=Counter(LOG_WRITTEN, "Rows written to the shared prediction log.", registry=registry),
        dropped=Counter(LOG_DROPPED, "Prediction-log rows dropped (the request was answered anyway), by reason.",
                        ["reason"], registry=registry),
        labels=Counter(LABELS_TOTAL, "Ground-truth labels received through /feedback, by outcome.",
                       ["outcome"], registry=registry),
    )  # fmt: skip
    for reason in DROP_REASONS:
        counters.dropped.labels(reason)
    for outcome in OUTCOMES:
        counters.labels.labels(outcome)
    return counters


@dataclass
class FigureGauges:
    """The figure gauges, each created the first time it is set (see the module docstring)."""

    registry: Any = None
    _gauges: dict[str, Any] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def set(self, name: str, value: float) -> None:
        if name not in _HELP:
            raise ValueError(f"unknown ground-truth figure {name!r}")
        with self._lock:
            gauge = self._gauges.get(name)
            if gauge is None:
                from prometheus_client import REGISTRY, Gauge

                gauge = Gauge(PREFIX + name, _HELP[name], multiprocess_mode="max",
                              registry=REGISTRY if self.registry is None else self.registry)  # fmt: skip
                self._gauges[name] = gauge
        gauge.set(value)
