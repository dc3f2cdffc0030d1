"""The runtime's prediction counter, as the canary analysis and the advisor query it.

``modelrollout_predictions_total{model,version,track,path}``
    Rows answered; ``path`` is ``model`` (computed now) or ``lookup`` (served from a precomputed
    table by the hybrid path). Failed requests are not counted here; BentoML's
    ``bentoml_service_request_total{http_response_code=...}`` counts them.

Ground truth (the prediction log, labels and the accuracy-type figures) has its own metrics:
:mod:`.ground_truth.metrics`.

A counter: BentoML runs prometheus_client in multiprocess mode, where gauges get a ``pid``
label and need per-mode aggregation; counters sum across workers by themselves.

``prometheus_client`` is imported lazily, inside :func:`runtime_metrics`: BentoML sets
``PROMETHEUS_MULTIPROC_DIR`` in the worker, and a ``prometheus_client`` imported before that stays
in single-process mode, so its counters would never reach the bento's ``/metrics``.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from .ground_truth.records import Origin

PREDICTIONS_METRIC = "modelrollout_predictions_total"
PATHS = ("model", "lookup")

_default: RuntimeMetrics | None = None
_default_lock = threading.Lock()


@dataclass(frozen=True)
class RuntimeMetrics:
    """The counter; create through :func:`runtime_metrics`."""

    predictions: Any

    def count_predictions(self, origin: Origin, *, path: str, rows: int) -> None:
        if path not in PATHS:
            raise ValueError(f"unknown prediction path {path!r}; expected one of {PATHS}")
        if rows > 0:
            self.predictions.labels(origin.model, origin.version, origin.track, path).inc(rows)

    def initialise(self, origin: Origin, *, paths: Iterable[str] = ("model",)) -> None:
        """Create the zero-valued series up front.

        A counter series that first appears at 1 loses that first increment to ``rate()`` and
        ``increase()``; a canary judged on its first few requests needs every one of them.
        """
        for path in paths:
            self.predictions.labels(origin.model, origin.version, origin.track, path)


def runtime_metrics(registry: Any = None) -> RuntimeMetrics:
    """The process-wide counter (registered once), or a fresh one on an explicit ``registry``."""
    global _default
    if registry is not None:
        return _create(registry)
    with _default_lock:
        if _default is None:
            import prometheus_client

            _default = _create(prometheus_client.REGISTRY)
        return _default


def _create(registry: Any) -> RuntimeMetrics:
    from prometheus_client import Counter

    return RuntimeMetrics(
        predictions=Counter(
            PREDICTIONS_METRIC,
            "Predictions (rows) answered, by model version, rollout track and serving path.",
            labelnames=("model", "version", "track", "path"),
            registry=registry,
        ),
    )
