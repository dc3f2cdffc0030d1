"""Prometheus metrics of the operator itself (served on MODELROLLOUT_METRICS_PORT), per
ModelDeployment (`namespace`, `name` labels), so an alert can say which model rolled back.

State gauges follow kube-state-metrics: one series per possible value, 1 for the current one
and 0 for the others (`modelrollout_phase{phase="RolledBack"} == 1`), and an info gauge whose
labels carry the versions (`modelrollout_info{stable_version, canary_version}`, always 1).
Every series of an object is removed when the object is deleted (`forget`), so a deleted
model does not alert forever.
"""

from __future__ import annotations

import threading
from collections import defaultdict
from typing import get_args

from prometheus_client import Counter, Gauge, Histogram

from modelrollout.api.status import CheckResult, ModelDeploymentStatus, Phase, Verdict
from modelrollout.rollout.decision import ACTIVE, Decision

PHASES = get_args(Phase)
VERDICT_VALUES = get_args(Verdict)
OBJECT = ["namespace", "name"]

PHASE = Gauge(
    "modelrollout_phase", "1 for the ModelDeployment's current phase, 0 for the others", [*OBJECT, "phase"]
)
CANARY_WEIGHT = Gauge("modelrollout_canary_weight", "Percent of traffic on the canary track", OBJECT)
STEP = Gauge("modelrollout_rollout_step", "Step (1-based) of the rollout in progress; 0 without one", OBJECT)
CHECK_VERDICT = Gauge(
    "modelrollout_analysis_check_verdict",
    "Latest verdict of each analysis check: 1 for its verdict, 0 for the others",
    [*OBJECT, "check", "verdict"],
)
INFO = Gauge(
    "modelrollout_info",
    "Release information of a ModelDeployment (always 1)",
    [*OBJECT, "mode", "stable_version", "canary_version"],
)
ROLLOUTS_STARTED = Counter("modelrollout_rollouts_started_total", "Canary rollouts started", OBJECT)
ROLLOUTS_PROMOTED = Counter("modelrollout_rollouts_promoted_total", "Canary rollouts promoted", OBJECT)
ROLLOUTS_ROLLED_BACK = Counter(
    "modelrollout_rollouts_rolled_back_total",
    "Canary rollouts rolled back (phase RolledBack: a failed check, an abort, a reverted spec)",
    OBJECT,
)
ROLLOUTS_FAILED = Counter(
    "modelrollout_rollouts_failed_total",
    "Canary rollouts failed (phase Failed: progress deadline, analysis errors, onInconclusive: rollback)",
    OBJECT,
)
VERDICTS = Counter(
    "modelrollout_analysis_verdicts_total", "Analysis check verdicts", [*OBJECT, "metric", "verdict"]
)
RECONCILE_SECONDS = Histogram(
    "modelrollout_reconcile_duration_seconds",
    "Time of one reconcile",
    buckets=(0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)
PER_OBJECT = (
    PHASE,
    CANARY_WEIGHT,
    STEP,
    CHECK_VERDICT,
    INFO,
    ROLLOUTS_STARTED,
    ROLLOUTS_PROMOTED,
    ROLLOUTS_ROLLED_BACK,
    ROLLOUTS_FAILED,
    VERDICTS,
)

# The label sets written per object, so that `forget` removes exactly those.
_series: dict[tuple[str, str], dict[int, set[tuple[str, ...]]]] = defaultdict(lambda: defaultdict(set))
_lock = threading.Lock()


def _labels(metric, namespace: str, name: str, *rest: str):
    values = (namespace, name, *rest)
    with _lock:
        _series[(namespace, name)][id(metric)].add(values)
    return metric.labels(*values)


def _drop(metric, namespace: str, name: str, keep: set[tuple[str, ...]]) -> None:
    """Remove the object's series of `metric` whose labels are not in `keep`."""
    with _lock:
        known = _series[(namespace, name)][id(metric)]
        stale = known - keep
        known -= stale
    for values in stale:
        metric.remove(*values)


def record_verdicts(namespace: str, name: str, results: list[CheckResult]) -> None:
    for result in results:
        _labels(VERDICTS, namespace, name, result.metric, result.verdict).inc()


def record(
    namespace: str,
    name: str,
    status: ModelDeploymentStatus,
    decision: Decision | None,
    *,
    mode: str = "",
    seconds: float,
) -> None:
    """The object's state after one reconcile, and what its decision did."""
    RECONCILE_SECONDS.observe(seconds)
    for phase in PHASES:
        _labels(PHASE, namespace, name, phase).set(1 if status.phase == phase else 0)
    _labels(CANARY_WEIGHT, namespace, name).set(status.canary_weight or 0)
    r = status.rollout
    _labels(STEP, namespace, name).set(r.step + 1 if r is not None and r.phase in ACTIVE else 0)
    info = (namespace, name, mode, status.stable_version or "", status.canary_version or "")
    _drop(INFO, namespace, name, keep={info})
    _labels(INFO, *info).set(1)
    checks = r.checks if r is not None else []
    wanted = {(namespace, name, c.metric, v) for c in checks for v in VERDICT_VALUES}
    _drop(CHECK_VERDICT, namespace, name, keep=wanted)
    for check in checks:
        for verdict in VERDICT_VALUES:
            _labels(CHECK_VERDICT, namespace, name, check.metric, verdict).set(
                1 if check.verdict == verdict else 0
            )
    if decision is not None:
        _count(namespace, name, decision)


def _count(namespace: str, name: str, decision: Decision) -> None:
    if decision.started:
        _labels(ROLLOUTS_STARTED, namespace, name).inc()
    if decision.promoted:
        _labels(ROLLOUTS_PROMOTED, namespace, name).inc()
    if decision.rolled_back:
        failed = decision.rollout is not None and decision.rollout.phase == "Failed"
        _labels(ROLLOUTS_FAILED if failed else ROLLOUTS_ROLLED_BACK, namespace, name).inc()


def forget(namespace: str, name: str) -> None:
    """Remove every series of a deleted ModelDeployment."""
    with _lock:
        series = _series.pop((namespace, name), {})
    for metric in PER_OBJECT:
        for values in series.get(id(metric), ()):
            metric.remove(*values)
