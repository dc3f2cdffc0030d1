"""Prometheus metrics of the operator itself (served on MODELROLLOUT_METRICS_PORT)."""

from __future__ import annotations

from prometheus_client import Counter, Histogram

from modelrollout.api.status import CheckResult
from modelrollout.rollout.decision import Decision

ROLLOUTS_STARTED = Counter("modelrollout_rollouts_started_total", "Canary rollouts started")
ROLLOUTS_PROMOTED = Counter("modelrollout_rollouts_promoted_total", "Canary rollouts promoted")
ROLLOUTS_ROLLED_BACK = Counter(
    "modelrollout_rollouts_rolled_back_total", "Canary rollouts rolled back or failed"
)
VERDICTS = Counter("modelrollout_analysis_verdicts_total", "Analysis check verdicts", ["metric", "verdict"])
RECONCILE_SECONDS = Histogram(
    "modelrollout_reconcile_duration_seconds",
    "Time of one reconcile",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


def record_verdicts(results: list[CheckResult]) -> None:
    for result in results:
        VERDICTS.labels(metric=result.metric, verdict=result.verdict).inc()


def record(decision: Decision | None, *, seconds: float) -> None:
    RECONCILE_SECONDS.observe(seconds)
    if decision is None:
        return
    if decision.started:
        ROLLOUTS_STARTED.inc()
    if decision.promoted:
        ROLLOUTS_PROMOTED.inc()
    if decision.rolled_back:
        ROLLOUTS_ROLLED_BACK.inc()
