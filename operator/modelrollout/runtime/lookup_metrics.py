"""The lookup service's Prometheus metrics (names in :mod:`.lookup`'s docstring).

Registered once per registry (the default is ``prometheus_client``'s global one, which BentoML
exposes on ``/metrics``). ``prometheus_client`` is imported late: BentoML sets its multiprocess
directory before the first import in a worker. The gauges aggregate as ``livemax`` across a
pod's worker processes (no ``pid`` label), which is what the live advisor's ``max(...)`` reads.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .registries import once_per_registry

BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
FALLBACK_REASONS = ("timeout", "error", "busy")


@dataclass(frozen=True)
class LookupMetrics:
    total: Any  # counter {result}
    duration: Any  # histogram {path}
    fallback: Any  # counter {reason}
    table_keys: Any  # gauge {table}
    table_info: Any  # gauge {table, run_id, model_version}


def lookup_metrics(registry: Any = None) -> LookupMetrics:
    """The lookup metrics on ``registry`` (created on first use, with their zero series)."""

    def create(reg: Any) -> LookupMetrics:
        import prometheus_client as pc

        return _create(pc, reg)

    return once_per_registry("lookup", registry, create)


def _create(pc: Any, registry: Any) -> LookupMetrics:
    metrics = LookupMetrics(
        total=pc.Counter("modelrollout_lookup_total", "Keys answered from the prediction table (hit) or not (miss).",
                         ["result"], registry=registry),
        duration=pc.Histogram("modelrollout_lookup_duration_seconds", "Seconds per call of each answer path.",
                              ["path"], buckets=BUCKETS, registry=registry),
        fallback=pc.Counter("modelrollout_lookup_fallback_total",
                            "Keys the model answered because the prediction store could not be asked.",
                            ["reason"], registry=registry),
        table_keys=pc.Gauge("modelrollout_lookup_table_keys", "Rows (keys) of the prediction table version served.",
                            ["table"], registry=registry, multiprocess_mode="livemax"),
        table_info=pc.Gauge("modelrollout_lookup_table_info",
                            "1 for the prediction table version served now, 0 for versions served before.",
                            ["table", "run_id", "model_version"], registry=registry, multiprocess_mode="livemax"),
    )  # fmt: skip
    for result in ("hit", "miss"):
        metrics.total.labels(result)
    for path in ("lookup", "model"):
        metrics.duration.labels(path)
    for reason in FALLBACK_REASONS:
        metrics.fallback.labels(reason)
    return metrics
