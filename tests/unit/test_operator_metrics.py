"""The operator's own metrics, per ModelDeployment: phase and check verdicts as 0/1 series,
weight and step, release info, rolled back and failed counted apart; every series of an object
removed when it is deleted."""

from __future__ import annotations

import uuid

from prometheus_client import REGISTRY

from modelrollout.api.serving import ModelRef
from modelrollout.api.status import CheckResult, HandledRequests, ModelDeploymentStatus, RolloutStatus
from modelrollout.reconcile import operator_metrics as M
from modelrollout.rollout.decision import Decision

MODEL = ModelRef(name="iris", version="2", image="x:2")


def value(metric: str, **labels: str) -> float | None:
    return REGISTRY.get_sample_value(metric, labels)


def rollout(phase: str, *, step: int = 0, checks=()) -> RolloutStatus:
    return RolloutStatus(
        phase=phase, canary_version="2", canary_image="x:2", step=step, started_at="t", checks=list(checks)
    )


def decision(r: RolloutStatus | None, **flags) -> Decision:
    return Decision(
        stable_model=MODEL,
        canary_model=None,
        weight=0,
        rollout=r,
        stable_version="1",
        stable_image="x:1",
        rejected_version=None,
        handled=HandledRequests(),
        **flags,
    )


def check(name: str, verdict: str) -> CheckResult:
    return CheckResult(metric=name, query="q", verdict=verdict, time="t")


def test_per_object_state_series():
    ns, name = "ml", f"iris-{uuid.uuid4().hex[:6]}"
    r = rollout("Progressing", step=1, checks=[check("p99", "pass"), check("errors", "fail")])
    status = ModelDeploymentStatus(
        phase="Progressing", stable_version="1", canary_version="2", canary_weight=50, rollout=r
    )
    M.record(ns, name, status, decision(r, started=True), mode="online", seconds=0.01)
    obj = {"namespace": ns, "name": name}
    assert value("modelrollout_phase", **obj, phase="Progressing") == 1
    assert value("modelrollout_phase", **obj, phase="Ready") == 0
    assert value("modelrollout_canary_weight", **obj) == 50
    assert value("modelrollout_rollout_step", **obj) == 2
    info = {**obj, "mode": "online", "stable_version": "1", "canary_version": "2"}
    assert value("modelrollout_info", **info) == 1
    assert value("modelrollout_analysis_check_verdict", **obj, check="errors", verdict="fail") == 1
    assert value("modelrollout_analysis_check_verdict", **obj, check="errors", verdict="pass") == 0
    assert value("modelrollout_analysis_check_verdict", **obj, check="p99", verdict="pass") == 1
    assert value("modelrollout_rollouts_started_total", **obj) == 1

    # promoted: the info series moves to the new versions, the old one is gone; no step, no checks
    done = ModelDeploymentStatus(
        phase="Ready", stable_version="2", canary_weight=0, rollout=rollout("Succeeded")
    )
    M.record(ns, name, done, decision(done.rollout, promoted=True), mode="online", seconds=0.01)
    assert value("modelrollout_info", **info) is None
    assert value("modelrollout_info", **obj, mode="online", stable_version="2", canary_version="") == 1
    assert value("modelrollout_rollout_step", **obj) == 0
    assert value("modelrollout_analysis_check_verdict", **obj, check="errors", verdict="fail") is None
    assert value("modelrollout_rollouts_promoted_total", **obj) == 1


def test_rolled_back_and_failed_are_counted_apart():
    ns, name = "ml", f"iris-{uuid.uuid4().hex[:6]}"
    obj = {"namespace": ns, "name": name}
    status = ModelDeploymentStatus(phase="RolledBack")
    M.record(ns, name, status, decision(rollout("RolledBack"), rolled_back=True), seconds=0.01)
    M.record(ns, name, status, decision(rollout("Failed"), rolled_back=True), seconds=0.01)
    M.record(ns, name, status, decision(rollout("Failed"), rolled_back=True), seconds=0.01)
    assert value("modelrollout_rollouts_rolled_back_total", **obj) == 1
    assert value("modelrollout_rollouts_failed_total", **obj) == 2


def test_a_deleted_object_leaves_no_series():
    ns, name = "ml", f"iris-{uuid.uuid4().hex[:6]}"
    r = rollout("Progressing", checks=[check("p99", "pass")])
    status = ModelDeploymentStatus(phase="Progressing", stable_version="1", canary_version="2", rollout=r)
    M.record(ns, name, status, decision(r, started=True), mode="online", seconds=0.01)
    M.record_verdicts(ns, name, [check("p99", "pass")])
    M.forget(ns, name)
    leftovers = [
        sample
        for family in REGISTRY.collect()
        for sample in family.samples
        if sample.labels.get("namespace") == ns and sample.labels.get("name") == name
    ]
    assert leftovers == []


def test_objects_are_told_apart_by_namespace_and_name():
    a, b = f"a-{uuid.uuid4().hex[:6]}", f"b-{uuid.uuid4().hex[:6]}"
    M.record("ml", a, ModelDeploymentStatus(phase="Ready"), None, seconds=0.01)
    M.record("ml", b, ModelDeploymentStatus(phase="Degraded"), None, seconds=0.01)
    assert value("modelrollout_phase", namespace="ml", name=a, phase="Ready") == 1
    assert value("modelrollout_phase", namespace="ml", name=b, phase="Degraded") == 1
    M.forget("ml", a)
    assert value("modelrollout_phase", namespace="ml", name=a, phase="Ready") is None
    assert value("modelrollout_phase", namespace="ml", name=b, phase="Degraded") == 1
