"""The pure reconcile step: what to apply, what to delete, and what the status says."""

from __future__ import annotations

import copy
from datetime import UTC, datetime, timedelta

from modelrollout.api import conditions as C
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.reconcile.drift import is_subset
from modelrollout.reconcile.observed import Observed
from modelrollout.reconcile.plan import plan as plan_serving
from modelrollout.reconcile.status import Progress, _stable_message, deployment_progress, invalid_spec_status
from modelrollout.render import serving as R
from tests.support.samples import md

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)


def as_server_returns(manifest, *, ready: int | None = None, generation: int = 1):
    """What the API server would hand back: our fields plus defaults and status."""
    obj = copy.deepcopy(manifest)
    obj["metadata"].update(
        {
            "uid": "child",
            "resourceVersion": "7",
            "generation": generation,
            "managedFields": [{"manager": "modelrollout-operator"}],
        }
    )
    if obj["kind"] == "Deployment":
        obj["spec"]["revisionHistoryLimit"] = 10
        obj["spec"]["template"]["spec"]["containers"][0]["terminationMessagePath"] = "/dev/termination-log"
        want = obj["spec"].get("replicas", 1)
        have = want if ready is None else ready
        obj["status"] = {
            "observedGeneration": generation,
            "replicas": want,
            "updatedReplicas": want,
            "readyReplicas": have,
            "availableReplicas": have,
        }
    return obj


def observed_for(m, *, ready: int | None = None) -> Observed:
    return Observed.of(
        stable=as_server_returns(
            R.deployment(m, model=m.spec.model, track="stable", replicas=m.spec.serving.replicas), ready=ready
        ),
        service=as_server_returns(R.service(m)),
    )


def test_first_reconcile_creates_deployment_and_service_and_is_pending():
    plan = plan_serving(md(), Observed.of(), ModelDeploymentStatus(), NOW)
    assert [(m["kind"], m["metadata"]["name"]) for m in plan.apply] == [
        ("Deployment", "iris-stable"),
        ("Service", "iris"),
    ]
    assert plan.status.phase == "Pending"
    assert plan.status.observed_generation == 1
    ready = C.get_condition(plan.status.conditions, C.READY)
    assert ready.status == "False" and ready.reason == C.WAITING_FOR_PODS
    assert C.get_condition(plan.status.conditions, C.PROGRESSING).status == "True"
    assert C.get_condition(plan.status.conditions, C.DEGRADED).status == "False"
    assert {e.reason for e in plan.events} >= {"Created", "PhasePending"}


def test_nothing_to_apply_when_children_match():
    m = md()
    plan = plan_serving(m, observed_for(m), ModelDeploymentStatus(), NOW)
    assert plan.apply == [] and plan.delete == []
    assert plan.status.phase == "Ready"
    assert plan.status.stable_version == "1.0.0" and plan.status.ready_replicas == 2
    assert C.get_condition(plan.status.conditions, C.READY).reason == C.DEPLOYMENT_READY


def test_hand_edited_replicas_are_restored():
    m = md()
    observed = observed_for(m)
    observed["stable"]["spec"]["replicas"] = 5
    plan = plan_serving(m, observed, ModelDeploymentStatus(), NOW)
    (dep,) = plan.apply
    assert dep["kind"] == "Deployment" and dep["spec"]["replicas"] == 2
    assert any(e.reason == "Updated" for e in plan.events)
    assert plan.status.phase != "Ready"  # not ready for the spec until the repair is rolled out


def test_replica_change_in_spec_is_applied():
    m = md({"serving": {"replicas": 4}})
    old = md()
    plan = plan_serving(m, observed_for(old), ModelDeploymentStatus(), NOW)
    assert [d["spec"]["replicas"] for d in plan.apply if d["kind"] == "Deployment"] == [4]


def test_deleted_child_is_recreated():
    m = md()
    observed = observed_for(m)
    plan = plan_serving(m, Observed.of(stable=observed["stable"], service=None), ModelDeploymentStatus(), NOW)
    assert [d["kind"] for d in plan.apply] == ["Service"]


def test_hpa_added_and_removed_with_autoscaling():
    scaled = md({"serving": {"autoscaling": {"minReplicas": 1, "maxReplicas": 4}}})
    plan = plan_serving(scaled, observed_for(scaled), ModelDeploymentStatus(), NOW)
    assert "HorizontalPodAutoscaler" in [d["kind"] for d in plan.apply]
    plain = md()
    observed = Observed.of(
        stable=observed_for(plain)["stable"],
        service=observed_for(plain)["service"],
        hpa=as_server_returns(R.hpa(scaled)),
    )
    assert ("HorizontalPodAutoscaler", "iris-stable") in plan_serving(
        plain, observed, ModelDeploymentStatus(), NOW
    ).delete


def test_pod_monitor_only_when_served():
    m = md()
    assert "PodMonitor" not in [
        d["kind"] for d in plan_serving(m, Observed.of(), ModelDeploymentStatus(), NOW).apply
    ]
    served = plan_serving(m, Observed.of(pod_monitor_served=True), ModelDeploymentStatus(), NOW)
    assert "PodMonitor" in [d["kind"] for d in served.apply]


def test_rolling_pods_are_progressing_then_ready():
    m = md()
    progressing = plan_serving(m, observed_for(m, ready=1), ModelDeploymentStatus(), NOW)
    assert progressing.status.phase == "Progressing" and progressing.status.ready_replicas == 1
    assert progressing.status.stable_version is None
    ready = plan_serving(m, observed_for(m), progressing.status, NOW + timedelta(seconds=30))
    assert ready.status.phase == "Ready"
    assert any(e.reason == "PhaseReady" for e in ready.events)


def test_failed_deployment_is_degraded_with_its_message():
    m = md()
    observed = observed_for(m, ready=0)
    observed["stable"]["status"]["conditions"] = [
        {
            "type": "Progressing",
            "status": "False",
            "reason": "ProgressDeadlineExceeded",
            "message": 'ReplicaSet "iris-stable-1" has timed out progressing.',
        }
    ]
    plan = plan_serving(m, observed, ModelDeploymentStatus(), NOW)
    assert plan.status.phase == "Degraded"
    degraded = C.get_condition(plan.status.conditions, C.DEGRADED)
    assert degraded.status == "True" and "timed out" in degraded.message


def test_condition_transition_time_moves_only_on_flip():
    m = md()
    first = plan_serving(m, observed_for(m), ModelDeploymentStatus(), NOW).status
    later = plan_serving(m, observed_for(m), first, NOW + timedelta(minutes=5)).status
    assert C.get_condition(later.conditions, C.READY).last_transition_time == "2026-11-21T12:00:00Z"
    flipped = plan_serving(m, observed_for(m, ready=0), later, NOW + timedelta(minutes=6)).status
    assert C.get_condition(flipped.conditions, C.READY).last_transition_time == "2026-11-21T12:06:00Z"


def test_invalid_spec_keeps_what_was_serving():
    m = md()
    serving = plan_serving(m, observed_for(m), ModelDeploymentStatus(), NOW).status
    status = invalid_spec_status(serving, generation=2, message="spec.serving.replicas: bad", now=NOW)
    assert status.phase == "Degraded" and status.observed_generation == 2
    assert status.stable_version == "1.0.0"
    assert C.get_condition(status.conditions, C.DEGRADED).reason == C.INVALID_SPEC


def test_quantities_compare_canonically():
    assert is_subset({"cpu": "1000m"}, {"cpu": "1"})
    assert is_subset({"memory": "1Gi"}, {"memory": "1073741824"})
    assert not is_subset({"cpu": "500m"}, {"cpu": "1"})
    assert not is_subset({"name": "a"}, {"name": "b"})
    assert not is_subset([1, 2], [1, 2, 3])


def test_deployment_progress_counts_an_unobserved_generation_as_incomplete():
    m = md()
    dep = as_server_returns(R.deployment(m, model=m.spec.model, track="stable", replicas=2), generation=3)
    dep["status"]["observedGeneration"] = 2
    assert deployment_progress(dep).complete is False


def test_replicas_are_handed_over_before_an_hpa_takes_them():
    """Applied replicas released by SSA would reset to 1; they are written under another
    manager first, and only while the operator still owns them."""
    scaled = md({"serving": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}})
    observed = observed_for(md())
    observed["stable"]["spec"]["replicas"] = 5
    observed["stable"]["metadata"]["managedFields"] = [
        {"manager": "modelrollout-operator", "operation": "Apply", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    plan = plan_serving(scaled, observed, ModelDeploymentStatus(), NOW)
    assert plan.handoff == [("Deployment", "iris-stable", {"spec": {"replicas": 5}})]
    dep = next(d for d in plan.apply if d["kind"] == "Deployment")
    assert "replicas" not in dep["spec"]
    observed["stable"]["metadata"]["managedFields"] = [
        {"manager": "modelrollout-handoff", "operation": "Update", "fieldsV1": {"f:spec": {"f:replicas": {}}}}
    ]
    assert plan_serving(scaled, observed, ModelDeploymentStatus(), NOW).handoff == []
    assert plan_serving(md(), observed, ModelDeploymentStatus(), NOW).handoff == []


def children_to_observe(m, status):
    """The identities the next reconcile looks up (None: all of them, status predates the record)."""
    from modelrollout.reconcile.children import to_observe

    rows = to_observe(m, status)
    return None if status.children is None else {row.identity(m.name) for row in rows}


def test_status_records_children_so_steady_reconciles_look_up_only_those():
    m = md()
    assert children_to_observe(m, ModelDeploymentStatus()) is None  # never recorded: look at all
    status = plan_serving(m, observed_for(m), ModelDeploymentStatus(), NOW).status
    assert status.children == ["Deployment/iris-stable", "Service/iris"]
    assert children_to_observe(m, status) == {"Deployment/iris-stable", "Service/iris"}
    # what the spec may need now is looked up too, and what was managed before (to delete it)
    scaled = md(
        {
            "serving": {"autoscaling": {"maxReplicas": 3}},
            "mode": "hybrid",
            "batch": {"schedule": "@daily", "input": {"path": "/x", "keyColumns": ["id"]}},
        }
    )
    assert {"HorizontalPodAutoscaler/iris-stable", "CronJob/iris-batch"} <= children_to_observe(
        scaled, status
    )
    before = status.model_copy(update={"children": [*status.children, "HorizontalPodAutoscaler/iris-stable"]})
    assert "HorizontalPodAutoscaler/iris-stable" in children_to_observe(m, before)
    moving = md({"model": {"name": "iris", "version": "2.0.0", "image": "example.com/iris:2.0.0"}})
    assert "Deployment/iris-canary" in children_to_observe(
        moving, status.model_copy(update={"stable_version": "1.0.0"})
    )


def test_ready_false_while_the_stable_deployment_rolls_says_why():
    """During a promotion the stable Deployment rolls to the new version while its old pods still
    serve: Ready is False with '2/2 stable replicas ready' alone, a contradiction to an SRE."""
    rolling = _stable_message(Progress(replicas=2, ready=2, complete=False, failed_message=None))
    assert rolling.startswith("2/2 stable replicas ready; the stable Deployment is being updated")
    assert _stable_message(Progress(replicas=2, ready=2, complete=True, failed_message=None)) == (
        "2/2 stable replicas ready"
    )
    assert _stable_message(Progress(replicas=2, ready=1, complete=False, failed_message=None)) == (
        "1/2 stable replicas ready"
    )
