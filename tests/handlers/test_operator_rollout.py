"""The real operator (`modelrollout.handlers` in kopf) against the fake API: canary rollouts.

A change of `spec.model` starts a rollout. The fake runs no controllers, so the
`deployment_controller` fixture plays the Deployment controller (every Deployment whose spec
changed is reported rolled out, unless held); Prometheus is a small HTTP server on 127.0.0.1
that answers the analysis' queries with scripted values, or with errors. What is asserted is
what a user sees: children, status, events, and the API requests the operator made.
"""

from __future__ import annotations

import contextlib
import json
import time
from collections.abc import Callable
from typing import Any

import pytest

from tests.handlers import samples
from tests.handlers.fake_prometheus import FakePrometheus, closed_port_url
from tests.handlers.fakeapi import FakeCluster, wait_for
from tests.handlers.test_operator_online import condition, create_md, events_about, status_of, wait_for_child

NS = "default"
MD = "ModelDeployment"
QUIET_WINDOW = 2.5  # seconds: more than two resync ticks (MODELROLLOUT_RESYNC_SECONDS=1)
VERSION_LABEL = "modelrollout.io/model-version"
V2 = samples.model_ref("2.0.0")
V2_ID = f"{V2['version']}@{V2['image']}"
ABORT, RETRY, PROMOTE = "modelrollout.io/abort", "modelrollout.io/retry", "modelrollout.io/promote"

# One step at 50%: with 2 stable pods the replica router runs 2 canary pods (50% achieved).
QUICK = {"steps": [{"setWeight": 50, "pause": "2s"}], "scaleDownDelay": "1s"}
HELD = {"steps": [{"setWeight": 50, "pause": "1h"}], "scaleDownDelay": "1s"}
GATEWAY = {"router": "gatewayAPI", "gateway": {"parentRefs": [{"name": "public", "namespace": "gateways"}]}}


# --- helpers --------------------------------------------------------------------------------------


def slow_canary(query: str) -> float:
    """Plenty of canary requests; p99 latency 0.9 s on the canary, 0.05 s on stable."""
    if "increase(" in query:
        return 120.0
    return 0.9 if 'track="canary"' in query else 0.05


def analysis(address: str, **overrides: Any) -> dict[str, Any]:
    return {
        "prometheus": {"address": address},
        "interval": "1s",
        "minSamples": 20,
        "failureLimit": 0,
        "metrics": [{"name": "latency-p99", "template": "latency-p99", "max": 0.5}],
        **overrides,
    }


def wait_status(
    api: FakeCluster, check: Callable[[dict[str, Any]], Any], message: str, **kwargs: Any
) -> dict:
    return wait_for(lambda: (s := status_of(api, "iris")) and check(s) and s, message=message, **kwargs)


def rollout_of(status: dict[str, Any]) -> dict[str, Any]:
    return status.get("rollout") or {}


def version_of(dep: dict[str, Any]) -> str:
    return dep["spec"]["template"]["metadata"]["labels"][VERSION_LABEL]


def applies(api: FakeCluster, kind: str, name: str) -> list[tuple[int, dict[str, Any]]]:
    """(position in the request log, applied body) of every server-side apply of one child."""
    out = []
    for index, request in enumerate(api.requests()):
        if (
            request.method.value == "PATCH"
            and request.name == name
            and request.subresource is None
            and request.resource is not None
            and request.resource.plural == api.table.lookup(kind).plural
            and request.headers.get("Content-Type") == "application/apply-patch+yaml"
        ):
            out.append((index, json.loads(request.body)))
    return out


def serving_v1(api: FakeCluster, rollout: dict[str, Any]) -> None:
    """v1 created and Ready (the stable version is known, so the next version is a rollout)."""
    create_md(api, samples.model_deployment(rollout=rollout))
    wait_status(api, lambda s: s.get("phase") == "Ready" and s.get("stableVersion") == "1.0.0", "v1 Ready")


def canary_at_weight(api: FakeCluster, weight: int) -> dict[str, Any]:
    """Start v2 and wait until its step holds `weight` percent on ready canary pods."""
    api.patch(MD, NS, "iris", {"spec": {"model": V2}})
    return wait_status(
        api,
        lambda s: s.get("canaryWeight") == weight and rollout_of(s).get("stepStartedAt"),
        f"the canary to take {weight}%",
    )


def annotate(api: FakeCluster, key: str, value: str | None) -> None:
    api.patch(MD, NS, "iris", {"metadata": {"annotations": {key: value}}})


def reasons(api: FakeCluster, reason: str) -> list[dict[str, Any]]:
    return events_about(api, "iris", reason)


def posted(api: FakeCluster, reason: str) -> list[dict[str, Any]]:
    """Events with `reason`, once there is one (they are posted just after the status write)."""
    return wait_for(lambda: reasons(api, reason), timeout=5, message=f"a {reason} event")


def replicas(api: FakeCluster, name: str) -> int | None:
    dep = api.get("Deployment", NS, name)
    return None if dep is None else dep["spec"].get("replicas")


# --- replica router, no analysis ------------------------------------------------------------------


def test_new_version_runs_as_a_canary_beside_stable_then_is_promoted(
    operator, fake_api, deployment_controller
):
    serving_v1(fake_api, QUICK)
    fake_api.patch(MD, NS, "iris", {"spec": {"model": V2}})

    canary = wait_for_child(fake_api, "Deployment", "iris-canary")
    labels = canary["metadata"]["labels"]
    assert (labels[VERSION_LABEL], labels["modelrollout.io/track"]) == ("2.0.0", "canary")
    assert canary["spec"]["template"]["spec"]["containers"][0]["image"] == V2["image"]
    assert canary["metadata"]["ownerReferences"][0]["controller"] is True
    assert version_of(fake_api.get("Deployment", NS, "iris-stable")) == "1.0.0"

    status = wait_status(fake_api, lambda s: s.get("canaryWeight", 0) > 0, "traffic on the ready canary")
    assert status["phase"] == "Progressing" and status["canaryVersion"] == "2.0.0"
    assert status["stableVersion"] == "1.0.0"
    assert status["canaryWeight"] == 50  # 2 ready canary pods beside 2 stable pods
    main = fake_api.get("Service", NS, "iris")  # this router weighs by pods behind one Service
    assert selects(main, fake_api.get("Deployment", NS, "iris-stable")) and selects(main, canary)
    assert replicas(fake_api, "iris-canary") == 2
    assert version_of(fake_api.get("Deployment", NS, "iris-stable")) == "1.0.0"  # stable serves on, untouched

    status = wait_status(
        fake_api, lambda s: rollout_of(s).get("phase") == "Succeeded", "promotion", timeout=15
    )
    assert status["stableVersion"] == "2.0.0" and status["stableImage"] == V2["image"]
    assert status["phase"] == "Ready" and status.get("canaryVersion") is None and status["canaryWeight"] == 0
    stable = fake_api.get("Deployment", NS, "iris-stable")
    assert (
        version_of(stable) == "2.0.0"
        and stable["spec"]["template"]["spec"]["containers"][0]["image"] == V2["image"]
    )
    wait_for(lambda: replicas(fake_api, "iris-canary") == 0, message="the canary scaled to zero")

    # No capacity lost on the way: the canary pods go only after stable was moved to 2.0.0.
    stable_moved = min(
        i for i, body in applies(fake_api, "Deployment", "iris-stable") if version_of(body) == "2.0.0"
    )
    canary_gone = min(
        i for i, body in applies(fake_api, "Deployment", "iris-canary") if body["spec"]["replicas"] == 0
    )
    assert stable_moved < canary_gone
    for reason in ("RolloutStarted", "StepStarted", "Promoting", "Promoted"):
        assert len(posted(fake_api, reason)) == 1, reason
    assert "2.0.0" in reasons(fake_api, "Promoted")[0]["note"]


# --- analysis -------------------------------------------------------------------------------------


def test_failing_analysis_rolls_back_and_the_stable_track_never_moves(
    operator, fake_api, deployment_controller
):
    with FakePrometheus(slow_canary) as prometheus:
        serving_v1(fake_api, {**QUICK, "analysis": analysis(prometheus.url)})
        canary_at_weight(fake_api, 50)
        status = wait_status(fake_api, lambda s: s.get("phase") == "RolledBack", "the rollback")

    rollout = rollout_of(status)
    assert rollout["phase"] == "RolledBack" and rollout["desiredWeight"] == 0
    assert status["rejectedVersion"] == V2_ID and status["stableVersion"] == "1.0.0"
    degraded = condition(status, "Degraded")
    assert (degraded["status"], degraded["reason"]) == ("True", "RolledBack")
    assert "0.9" in degraded["message"] and "0.5" in degraded["message"]
    (check,) = rollout["checks"]
    assert check["metric"] == "latency-p99" and check["verdict"] == "fail"
    assert check["value"] == 0.9 and check["threshold"] == "<= 0.5"
    assert check["samples"] == 120.0 and 'track="canary"' in check["query"]
    (event,) = posted(fake_api, "AnalysisFailed")
    assert event["type"] == "Warning" and "0.9" in event["note"]

    # The queries were rendered for this object and this track.
    assert any(
        'namespace="default", modelrollout_deployment="iris", track="canary"' in q for q in prometheus.queries
    )
    wait_for(lambda: replicas(fake_api, "iris-canary") == 0, message="the canary scaled to zero")
    assert any(body["spec"]["replicas"] == 0 for _, body in applies(fake_api, "Deployment", "iris-canary"))
    assert {version_of(body) for _, body in applies(fake_api, "Deployment", "iris-stable")} == {"1.0.0"}

    time.sleep(QUIET_WINDOW)  # the rejected version is not tried again by itself
    assert status_of(fake_api, "iris")["phase"] == "RolledBack"
    assert len(reasons(fake_api, "RolloutStarted")) == 1 and not reasons(fake_api, "Promoted")
    assert replicas(fake_api, "iris-canary") == 0


@pytest.mark.parametrize("prometheus_fails", ["http-500", "closed-port"])
def test_analysis_errors_never_promote_and_fail_the_rollout_after_the_error_limit(
    operator, fake_api, deployment_controller, prometheus_fails
):
    with contextlib.ExitStack() as stack:
        if prometheus_fails == "http-500":
            address = stack.enter_context(FakePrometheus(lambda query: 500)).url
        else:
            address = closed_port_url()
        serving_v1(fake_api, {**QUICK, "analysis": analysis(address, errorLimit=1)})
        canary_at_weight(fake_api, 50)
        status = wait_status(fake_api, lambda s: s.get("phase") == "Failed", "phase Failed", timeout=15)

    rollout = rollout_of(status)
    assert (
        rollout["phase"] == "Failed" and rollout["counts"]["errors"] == 2 and rollout["counts"]["passes"] == 0
    )
    (check,) = rollout["checks"]
    assert check["verdict"] == "error"
    assert ("HTTP Status Code 500" if prometheus_fails == "http-500" else "unreachable") in check["message"]
    assert len(reasons(fake_api, "CheckError")) == 1  # the one error tolerated by errorLimit 1
    (event,) = posted(fake_api, "AnalysisErrors")
    assert event["type"] == "Warning" and "2 analysis errors (limit 1)" in event["note"]
    assert status["rejectedVersion"] == V2_ID and condition(status, "Degraded")["status"] == "True"
    assert not reasons(fake_api, "Promoting") and not reasons(fake_api, "Promoted")
    assert {version_of(body) for _, body in applies(fake_api, "Deployment", "iris-stable")} == {"1.0.0"}
    wait_for(lambda: replicas(fake_api, "iris-canary") == 0, message="the canary scaled to zero")


def test_a_pass_followed_by_no_canary_data_never_promotes(operator, fake_api, deployment_controller):
    """Issue 12 through the operator: one early pass does not carry the step past its pause;
    the step's verdict and the stall are kept in status, and the deadline ends the rollout."""
    samples = iter([120.0])  # the first analysis has its samples; then no request series at all

    def pass_then_no_traffic(query: str) -> float | None:
        return next(samples, None) if "increase(" in query else 0.1

    with FakePrometheus(pass_then_no_traffic) as prometheus:
        serving_v1(fake_api, {**QUICK, "progressDeadline": "5s", "analysis": analysis(prometheus.url)})
        canary_at_weight(fake_api, 50)
        waiting = wait_status(
            fake_api,
            lambda s: (
                rollout_of(s).get("stepVerdict") == "inconclusive" and rollout_of(s).get("stalledSince")
            ),
            "an inconclusive analysis after the pass",
        )
        assert rollout_of(waiting)["counts"]["passes"] == 1
        status = wait_status(fake_api, lambda s: s.get("phase") == "Failed", "the deadline", timeout=15)

    rollout = rollout_of(status)
    assert "no progress for 5s" in rollout["message"] and "0 samples < minSamples 20" in rollout["message"]
    assert rollout["checks"][0]["verdict"] == "inconclusive"
    assert posted(fake_api, "ProgressDeadlineExceeded")
    assert not reasons(fake_api, "Promoting") and not reasons(fake_api, "Promoted")
    assert {version_of(body) for _, body in applies(fake_api, "Deployment", "iris-stable")} == {"1.0.0"}


# --- manual requests and pausing ------------------------------------------------------------------


def test_abort_request_rolls_back_once_and_retry_rolls_the_version_out_again(
    operator, fake_api, deployment_controller
):
    serving_v1(fake_api, HELD)
    canary_at_weight(fake_api, 50)

    annotate(fake_api, ABORT, "abort-1")
    status = wait_status(fake_api, lambda s: s.get("phase") == "RolledBack", "the abort")
    assert status["handledRequests"]["abort"] == "abort-1" and status["rejectedVersion"] == V2_ID
    assert (
        condition(status, "Degraded")["reason"] == "RolledBack" and "aborted by request" in status["message"]
    )
    wait_for(lambda: replicas(fake_api, "iris-canary") == 0, message="the canary scaled to zero")

    # The same request written again (removed, then put back) is not a new request.
    annotate(fake_api, ABORT, None)
    annotate(fake_api, ABORT, "abort-1")
    time.sleep(QUIET_WINDOW)
    assert len(reasons(fake_api, "Aborted")) == 1 and len(reasons(fake_api, "PhaseRolledBack")) == 1
    assert status_of(fake_api, "iris")["handledRequests"]["abort"] == "abort-1"

    annotate(fake_api, RETRY, "retry-1")
    status = wait_status(
        fake_api, lambda s: s.get("phase") == "Progressing" and s.get("rejectedVersion") is None, "the retry"
    )
    assert status["handledRequests"]["retry"] == "retry-1" and status["canaryVersion"] == "2.0.0"
    assert len(posted(fake_api, "RetryRequested")) == 1
    wait_for(lambda: len(reasons(fake_api, "RolloutStarted")) == 2, message="a second RolloutStarted event")
    wait_for(lambda: replicas(fake_api, "iris-canary") == 2, message="the canary back at its size")
    wait_status(fake_api, lambda s: s.get("canaryWeight") == 50, "traffic on the canary again")
    assert len(reasons(fake_api, "Aborted")) == 1  # the old abort token did not strike again


def test_paused_rollout_holds_its_weight_and_a_promote_request_finishes_it(
    operator, fake_api, deployment_controller
):
    serving_v1(fake_api, HELD)
    canary_at_weight(fake_api, 50)

    fake_api.patch(MD, NS, "iris", {"spec": {"rollout": {"paused": True}}})
    status = wait_status(fake_api, lambda s: s.get("phase") == "Paused", "phase Paused")
    assert rollout_of(status)["phase"] == "Paused" and condition(status, "Progressing")["status"] == "True"
    writes_before = len(applies(fake_api, "Deployment", "iris-canary"))
    time.sleep(QUIET_WINDOW)
    status = status_of(fake_api, "iris")
    assert (
        status["phase"] == "Paused"
        and status["canaryWeight"] == 50
        and rollout_of(status)["desiredWeight"] == 50
    )
    assert (
        replicas(fake_api, "iris-canary") == 2
        and len(applies(fake_api, "Deployment", "iris-canary")) == writes_before
    )
    assert len(posted(fake_api, "RolloutPaused")) == 1

    fake_api.patch(MD, NS, "iris", {"spec": {"rollout": {"paused": False}}})
    wait_status(fake_api, lambda s: s.get("phase") == "Progressing", "resumed")
    assert len(posted(fake_api, "RolloutResumed")) == 1

    annotate(fake_api, PROMOTE, "promote-1")
    status = wait_status(
        fake_api, lambda s: rollout_of(s).get("phase") == "Succeeded", "promotion", timeout=15
    )
    assert status["stableVersion"] == "2.0.0" and status["handledRequests"]["promote"] == "promote-1"
    assert version_of(fake_api.get("Deployment", NS, "iris-stable")) == "2.0.0"
    assert len(posted(fake_api, "PromoteRequested")) == 1 and len(posted(fake_api, "Promoted")) == 1


def test_pausing_while_the_canary_pods_start_keeps_them_and_resuming_goes_on(
    operator, fake_api, deployment_controller
):
    serving_v1(fake_api, HELD)
    deployment_controller.hold("iris-canary")  # its pods are still starting
    fake_api.patch(MD, NS, "iris", {"spec": {"model": V2}})
    wait_for_child(fake_api, "Deployment", "iris-canary", lambda d: d["spec"]["replicas"] == 2)

    fake_api.patch(MD, NS, "iris", {"spec": {"rollout": {"paused": True}}})
    wait_status(fake_api, lambda s: s.get("phase") == "Paused", "phase Paused")
    time.sleep(QUIET_WINDOW)
    assert replicas(fake_api, "iris-canary") == 2  # held where it was, not torn down
    assert status_of(fake_api, "iris")["canaryWeight"] == 0

    deployment_controller.release("iris-canary")
    fake_api.patch(MD, NS, "iris", {"spec": {"rollout": {"paused": False}}})
    canary = wait_status(
        fake_api, lambda s: s.get("canaryWeight") == 50, "traffic on the canary after resuming"
    )
    assert canary["phase"] == "Progressing" and len(posted(fake_api, "RolloutResumed")) == 1


# --- Gateway API router ---------------------------------------------------------------------------


def selects(service: dict[str, Any], deployment: dict[str, Any]) -> bool:
    """Whether the Service's selector matches the Deployment's pods."""
    pod_labels = deployment["spec"]["template"]["metadata"]["labels"]
    return service["spec"]["selector"].items() <= pod_labels.items()


def backend_weights(route: dict[str, Any]) -> dict[str, int]:
    (rule,) = route["spec"]["rules"]
    return {ref["name"]: ref["weight"] for ref in rule["backendRefs"]}


@pytest.mark.fake_api(http_routes=True)
def test_gateway_router_moves_traffic_with_http_route_weights(operator, fake_api, deployment_controller):
    serving_v1(fake_api, {**HELD, **GATEWAY, "scaleDownDelay": "3s"})
    route = wait_for_child(fake_api, "HTTPRoute", "iris")
    assert backend_weights(route) == {"iris-stable": 100, "iris-canary": 0}
    assert route["spec"]["parentRefs"] == [{"name": "public", "namespace": "gateways"}]
    assert route["metadata"]["ownerReferences"][0]["controller"] is True
    for track in ("stable", "canary"):
        svc = fake_api.get("Service", NS, f"iris-{track}")
        assert svc["spec"]["selector"]["modelrollout.io/track"] == track

    deployment_controller.hold("iris-canary")  # its pods start but are not ready yet
    fake_api.patch(MD, NS, "iris", {"spec": {"model": V2}})
    wait_status(
        fake_api, lambda s: "waiting for the canary pods" in s.get("message", ""), "the canary to start"
    )
    assert replicas(fake_api, "iris-canary") == 2  # full size: the route, not the pod count, sets traffic
    assert backend_weights(fake_api.get("HTTPRoute", NS, "iris")) == {"iris-stable": 100, "iris-canary": 0}
    # Only the route sends traffic to the canary: in-cluster callers of Service `iris` stay on stable.
    main = fake_api.get("Service", NS, "iris")
    assert selects(main, fake_api.get("Deployment", NS, "iris-stable"))
    assert not selects(main, fake_api.get("Deployment", NS, "iris-canary"))

    deployment_controller.release("iris-canary")
    status = wait_status(
        fake_api,
        lambda s: s.get("canaryWeight") == 50 and rollout_of(s).get("stepStartedAt"),
        "the canary to take 50%",
    )
    assert backend_weights(fake_api.get("HTTPRoute", NS, "iris")) == {"iris-stable": 50, "iris-canary": 50}
    assert status["canaryVersion"] == "2.0.0" and replicas(fake_api, "iris-canary") == 2

    annotate(fake_api, ABORT, "abort-1")
    wait_status(fake_api, lambda s: s.get("phase") == "RolledBack", "the rollback")
    route = fake_api.get("HTTPRoute", NS, "iris")
    assert backend_weights(route) == {"iris-stable": 100, "iris-canary": 0}
    assert status_of(fake_api, "iris")["canaryWeight"] == 0
    # This router can hold the canary pods at weight 0: they go after scaleDownDelay (3s).
    assert replicas(fake_api, "iris-canary") == 2
    wait_for(lambda: replicas(fake_api, "iris-canary") == 0, timeout=8, message="the canary scaled down")

    route_writes = [body for _, body in applies(fake_api, "HTTPRoute", "iris")]
    assert len(route_writes) >= 3  # 100/0, 50/50, 100/0
    assert all(sum(backend_weights(body).values()) == 100 for body in route_writes)
