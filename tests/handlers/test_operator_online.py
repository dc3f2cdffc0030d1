"""The real operator (`modelrollout.handlers` in kopf) against the fake API: online serving.

The fake runs no controllers: where a Deployment controller would report progress, the test
writes the Deployment's status itself. There is no garbage collector either: what happens to
children on deletion is what the operator itself does (real garbage collection by owner
references is covered by the e2e tests on a real cluster).
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.handlers import samples
from tests.handlers.fakeapi import FakeCluster, wait_for

NS = "default"
QUIET_WINDOW = 2.5  # seconds: more than two resync ticks (MODELROLLOUT_RESYNC_SECONDS=1)
MD = "ModelDeployment"
FIELD_MANAGER = "modelrollout-operator"
EVENTS = "events.k8s.io/v1/events"


# --- helpers --------------------------------------------------------------------------------------


def status_of(api: FakeCluster, name: str) -> dict[str, Any]:
    return (api.get(MD, NS, name) or {}).get("status") or {}


def condition(status: dict[str, Any], type_: str) -> dict[str, Any]:
    return next((c for c in status.get("conditions", []) if c["type"] == type_), {})


def wait_for_child(
    api: FakeCluster, kind: str, name: str, check=lambda obj: True, **kwargs: Any
) -> dict[str, Any]:
    return wait_for(
        lambda: (obj := api.get(kind, NS, name)) is not None and check(obj) and obj,
        message=f"{kind} {name}",
        **kwargs,
    )


def create_md(api: FakeCluster, body: dict[str, Any]) -> dict[str, Any]:
    created = api.create(body)
    name = created["metadata"]["name"]
    wait_for(
        lambda: status_of(api, name).get("observedGeneration") == created["metadata"]["generation"],
        message=f"the operator to observe {name}",
    )
    return api.get(MD, NS, name)


def act_as_deployment_controller(api: FakeCluster, name: str) -> None:
    """Report every replica of the Deployment's current generation as updated and available."""
    dep = api.get("Deployment", NS, name)
    want = dep["spec"].get("replicas", 1)
    api.set_status(
        "Deployment",
        NS,
        name,
        {
            "observedGeneration": dep["metadata"]["generation"],
            "replicas": want,
            "updatedReplicas": want,
            "readyReplicas": want,
            "availableReplicas": want,
            "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
        },
    )


def events_about(api: FakeCluster, name: str, reason: str) -> list[dict[str, Any]]:
    return [e for e in api.list(EVENTS, NS) if e["regarding"]["name"] == name and e["reason"] == reason]


# --- tests ----------------------------------------------------------------------------------------


def test_create_makes_the_stable_deployment_and_service(operator, fake_api):
    md = create_md(fake_api, samples.model_deployment())
    uid = md["metadata"]["uid"]

    dep = fake_api.get("Deployment", NS, "iris-stable")
    svc = fake_api.get("Service", NS, "iris")
    for child in (dep, svc):
        (owner,) = child["metadata"]["ownerReferences"]
        assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (MD, "iris", uid, True)
        assert child["metadata"]["labels"]["modelrollout.io/deployment"] == "iris"
    labels = dep["metadata"]["labels"]
    assert labels["modelrollout.io/track"] == "stable"
    assert labels["modelrollout.io/model-version"] == "1.0.0"
    assert dep["spec"]["replicas"] == 2
    pod = dep["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["image"] == "example.com/iris:1.0.0"
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    assert container["securityContext"]["capabilities"] == {"drop": ["ALL"]}
    assert set(svc["spec"]["selector"].items()) <= set(dep["spec"]["template"]["metadata"]["labels"].items())
    assert fake_api.get("HorizontalPodAutoscaler", NS, "iris-stable") is None

    status = status_of(fake_api, "iris")
    assert status["observedGeneration"] == 1
    assert status["phase"] in ("Pending", "Progressing")
    for type_, expected in (("Ready", "False"), ("Progressing", "True"), ("Degraded", "False")):
        cond = condition(status, type_)
        assert cond["status"] == expected and cond["reason"] and cond["observedGeneration"] == 1


def test_children_are_server_side_applied_and_status_goes_through_the_subresource(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    wait_for_child(fake_api, "Service", "iris")

    child_writes = [r for kind in ("Deployment", "Service") for r in fake_api.requests("PATCH", kind)]
    assert child_writes
    for request in child_writes:
        assert request.headers["Content-Type"] == "application/apply-patch+yaml"
        assert request.params == {"fieldManager": FIELD_MANAGER, "force": "true"}
    assert not fake_api.requests("POST", "Deployment") and not fake_api.requests("PUT", "Deployment")
    managers = {
        (m["manager"], m["operation"])
        for m in fake_api.get("Deployment", NS, "iris-stable")["metadata"]["managedFields"]
    }
    assert managers == {(FIELD_MANAGER, "Apply")}

    status_writes = fake_api.requests("PATCH", MD, subresource="status")
    assert status_writes
    assert {r.headers["Content-Type"] for r in status_writes} == {"application/merge-patch+json"}
    main_writes = fake_api.requests("PATCH", MD, subresource=None)
    assert all("status" not in (r.data or {}) for r in main_writes if isinstance(r.data, dict))


def test_autoscaling_adds_an_hpa_and_leaves_replicas_to_it(operator, fake_api):
    body = samples.model_deployment(serving={"autoscaling": {"minReplicas": 2, "maxReplicas": 5}})
    create_md(fake_api, body)
    hpa = wait_for_child(fake_api, "HorizontalPodAutoscaler", "iris-stable")
    assert hpa["spec"]["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "iris-stable",
    }
    assert (hpa["spec"]["minReplicas"], hpa["spec"]["maxReplicas"]) == (2, 5)
    assert hpa["metadata"]["ownerReferences"][0]["controller"] is True
    assert "replicas" not in fake_api.get("Deployment", NS, "iris-stable")["spec"]

    fake_api.patch(MD, NS, "iris", {"spec": {"serving": {"autoscaling": None}}})
    wait_for(
        lambda: fake_api.get("HorizontalPodAutoscaler", NS, "iris-stable") is None, message="HPA removal"
    )
    wait_for_child(fake_api, "Deployment", "iris-stable", lambda d: d["spec"].get("replicas") == 2)


def test_replica_change_is_applied_to_the_deployment(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    fake_api.patch(MD, NS, "iris", {"spec": {"serving": {"replicas": 3}}})
    wait_for_child(fake_api, "Deployment", "iris-stable", lambda d: d["spec"]["replicas"] == 3)
    wait_for(
        lambda: status_of(fake_api, "iris").get("observedGeneration") == 2, message="observedGeneration 2"
    )


def test_drift_is_repaired_by_the_resync_timer(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    first = wait_for_child(fake_api, "Deployment", "iris-stable")

    fake_api.delete("Deployment", NS, "iris-stable")
    again = wait_for_child(fake_api, "Deployment", "iris-stable", timeout=10)
    assert again["metadata"]["uid"] != first["metadata"]["uid"]

    fake_api.patch("Deployment", NS, "iris-stable", {"spec": {"replicas": 7}}, manager="kubectl-edit")
    wait_for_child(fake_api, "Deployment", "iris-stable", lambda d: d["spec"]["replicas"] == 2, timeout=10)


def test_ready_deployment_makes_the_model_deployment_ready(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    wait_for_child(fake_api, "Deployment", "iris-stable")
    act_as_deployment_controller(fake_api, "iris-stable")

    status = wait_for(
        lambda: (s := status_of(fake_api, "iris")).get("phase") == "Ready" and s, message="phase Ready"
    )
    assert condition(status, "Ready")["status"] == "True"
    assert condition(status, "Ready")["reason"] == "DeploymentReady"
    assert condition(status, "Progressing")["status"] == "False"
    assert condition(status, "Degraded")["status"] == "False"
    assert status["stableVersion"] == "1.0.0"
    assert status["readyReplicas"] == 2


def test_a_settled_model_deployment_causes_no_writes(operator, fake_api):
    """Level-based but quiet: resync ticks that find nothing to change write nothing."""
    create_md(fake_api, samples.model_deployment())
    wait_for_child(fake_api, "Deployment", "iris-stable")
    act_as_deployment_controller(fake_api, "iris-stable")
    wait_for(lambda: status_of(fake_api, "iris").get("phase") == "Ready", message="phase Ready")
    time.sleep(0.5)  # let the reconcile that saw the ready Deployment finish its writes

    before = len(fake_api.requests())
    time.sleep(QUIET_WINDOW)
    window = fake_api.requests()[before:]
    assert [r for r in window if r.resource is not None and r.resource.plural == "deployments"]  # it did look
    writes = [f"{r.method.value} {r.url.path}" for r in window if r.method.value != "GET"]
    assert writes == []


def test_invalid_spec_degrades_with_an_event_and_others_still_reconcile(operator, fake_api):
    bad = samples.model_deployment(
        "bad", serving={"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}
    )
    status = create_md(fake_api, bad)["status"]

    degraded = condition(status, "Degraded")
    assert (status["phase"], degraded["status"], degraded["reason"]) == ("Degraded", "True", "InvalidSpec")
    assert "cpu" in degraded["message"] and "exceeds its limit" in degraded["message"]
    event = wait_for(lambda: events_about(fake_api, "bad", "InvalidSpec"), message="an InvalidSpec event")[0]
    assert event["type"] == "Warning" and "exceeds its limit" in event["note"]
    assert fake_api.get("Deployment", NS, "bad-stable") is None

    create_md(fake_api, samples.model_deployment("good"))
    wait_for_child(fake_api, "Deployment", "good-stable")
    assert operator.future.done() is False  # still running

    fake_api.patch(MD, NS, "bad", {"spec": {"serving": {"resources": {"limits": {"cpu": "4"}}}}})
    wait_for_child(fake_api, "Deployment", "bad-stable")
    wait_for(
        lambda: condition(status_of(fake_api, "bad"), "Degraded").get("status") == "False",
        message="Degraded cleared after the fix",
    )


def test_apply_failures_degrade_then_recover(operator, fake_api):
    """An API server that rejects the Deployment: Degraded with the reason, an event, no crash;
    once it accepts again, the next reconcile heals it."""
    with fake_api.failing("PATCH", "Deployment", status=500, message="admission webhook timed out"):
        fake_api.create(samples.model_deployment())
        status = wait_for(
            lambda: (
                (s := status_of(fake_api, "iris")) and condition(s, "Degraded").get("status") == "True" and s
            ),
            message="Degraded",
        )
        assert condition(status, "Degraded")["reason"] == "ApplyFailed"
        assert "admission webhook timed out" in condition(status, "Degraded")["message"]
        wait_for(lambda: events_about(fake_api, "iris", "ApplyFailed"), message="an ApplyFailed event")
    wait_for_child(fake_api, "Deployment", "iris-stable", timeout=15)
    wait_for(
        lambda: condition(status_of(fake_api, "iris"), "Degraded").get("status") == "False",
        timeout=15,
        message="Degraded cleared",
    )


@pytest.mark.fake_api(watch_latency=0.2)
def test_each_reconcile_starts_from_the_status_the_last_one_wrote(operator, fake_api):
    """A reconcile must not act on a body older than its own last status write.

    Made deterministic with a slow status subresource and lagging watch events (both normal
    on a loaded API server): kopf's finalizer patch is seen while the first reconcile is still
    writing status, which wakes a second reconcile on the pre-status body. Symptom of the bug
    this guards against: the same invalid spec reported twice (and any status-driven decision
    taken twice).
    """
    fake_api.slow_down("PATCH", subresource="status", seconds=0.5)
    bad = samples.model_deployment(
        "bad", serving={"resources": {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}}
    )
    fake_api.create(bad)
    wait_for(lambda: events_about(fake_api, "bad", "InvalidSpec"), message="an InvalidSpec event")
    time.sleep(QUIET_WINDOW)
    notes = [e["note"] for e in events_about(fake_api, "bad", "InvalidSpec")]
    assert len(notes) == 1, f"{len(notes)} InvalidSpec events for one invalid spec: {notes}"
    assert len(fake_api.requests("PATCH", MD, subresource="status")) == 1


def test_deleting_the_model_deployment_removes_its_children(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    wait_for_child(fake_api, "Service", "iris")
    assert fake_api.get(MD, NS, "iris")["metadata"]["finalizers"]  # so deletion waits for cleanup

    fake_api.delete(MD, NS, "iris")
    wait_for(lambda: fake_api.get(MD, NS, "iris") is None, message="the finalizer to be released")
    # No garbage collector here: the operator deleted them itself.
    assert fake_api.get("Deployment", NS, "iris-stable") is None
    assert fake_api.get("Service", NS, "iris") is None
    deleted = {(r.resource.plural, r.name) for r in fake_api.requests("DELETE")}
    assert {("deployments", "iris-stable"), ("services", "iris")} <= deleted


def test_a_reconcile_in_flight_at_deletion_does_not_recreate_children(operator, fake_api):
    """Deletion while a resync is mid-way (made likely with slow reads): nothing is left behind."""
    create_md(fake_api, samples.model_deployment())
    wait_for_child(fake_api, "Service", "iris")
    fake_api.slow_down("GET", seconds=0.3)
    reads = len(fake_api.requests("GET", "Deployment"))
    wait_for(lambda: len(fake_api.requests("GET", "Deployment")) > reads, message="a resync in flight")

    fake_api.delete(MD, NS, "iris")
    wait_for(lambda: fake_api.get(MD, NS, "iris") is None, timeout=15, message="the ModelDeployment to go")
    fake_api.wait_until_quiet(quiet=1.0, timeout=15)  # the resync that was in flight has finished
    left = [
        (kind, obj["metadata"]["name"])
        for kind in ("Deployment", "Service")
        for obj in fake_api.list(kind, NS)
    ]
    assert left == []


@pytest.mark.fake_api(pod_monitors=True)
def test_pod_monitor_is_applied_when_the_api_is_served(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    monitor = wait_for_child(fake_api, "PodMonitor", "iris")
    assert monitor["spec"]["selector"]["matchLabels"]["modelrollout.io/deployment"] == "iris"
    assert monitor["metadata"]["ownerReferences"][0]["controller"] is True


def test_no_pod_monitor_is_attempted_when_the_api_is_not_served(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    wait_for_child(fake_api, "Service", "iris")
    assert not [
        r for r in fake_api.requests() if r.resource is not None and r.resource.plural == "podmonitors"
    ]
