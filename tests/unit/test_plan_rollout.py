"""The reconcile plan during a canary rollout: Deployments per track, routers, status."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelrollout.api import conditions as C
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.cli.status_view import render_status
from modelrollout.reconcile.observed import Observed
from modelrollout.reconcile.plan import plan
from modelrollout.render import labels as L
from modelrollout.render import serving as R
from modelrollout.routing.gateway import http_route, route_weight
from modelrollout.routing.replicas import ReplicaRouter
from tests.support.samples import md
from tests.unit.test_plan import as_server_returns

NOW = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ANALYSIS = {
    "prometheus": {"address": "http://127.0.0.1:9090"},
    "interval": "30s",
    "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
}
GATEWAY = {"router": "gatewayAPI", "gateway": {"parentRefs": [{"name": "public"}]}}


def v2(**rollout):
    return md(
        {
            "model": {"name": "iris", "version": "2.0.0", "image": "example.com/iris:2.0.0"},
            "rollout": {"steps": [{"setWeight": 25}, {"setWeight": 50}], "analysis": ANALYSIS, **rollout},
        }
    )


def v1_serving() -> tuple[Observed, ModelDeploymentStatus]:
    old = md()
    observed = Observed.of(
        stable=as_server_returns(R.deployment(old, model=old.spec.model, track="stable", replicas=2)),
        service=as_server_returns(R.service(old)),
    )
    status = ModelDeploymentStatus(
        stable_version="1.0.0", stable_image="example.com/iris:1.0.0", phase="Ready"
    )
    return observed, status


def kinds(p):
    return {(d["kind"], d["metadata"]["name"]): d for d in p.apply}


def test_version_change_starts_a_canary_beside_the_untouched_stable():
    observed, status = v1_serving()
    p = plan(v2(), observed, status, NOW)
    applied = kinds(p)
    canary = applied[("Deployment", "iris-canary")]
    assert canary["spec"]["template"]["metadata"]["labels"][L.VERSION_LABEL] == "2.0.0"
    assert canary["spec"]["replicas"] == 1  # sized for the first step (25% of 2 stable pods)
    assert ("Deployment", "iris-stable") not in applied  # stable keeps serving 1.0.0 unchanged
    assert p.status.phase == "Progressing" and p.status.canary_version == "2.0.0"
    assert p.status.stable_version == "1.0.0" and p.status.canary_weight == 0
    assert C.get_condition(p.status.conditions, C.PROGRESSING).reason == C.ROLLOUT_IN_PROGRESS
    assert any(e.reason == "RolloutStarted" for e in p.events)


def ready_canary(m, replicas):
    return as_server_returns(R.deployment(m, model=m.spec.model, track="canary", replicas=replicas))


def test_replica_ratio_is_reported_as_achieved():
    observed, status = v1_serving()
    m = v2()
    first = plan(m, observed, status, NOW)
    observed = Observed.of(stable=observed["stable"], service=observed["service"], canary=ready_canary(m, 1))
    second = plan(m, observed, first.status, NOW + timedelta(seconds=2))
    assert second.status.rollout.desired_weight == 25
    third = plan(m, observed, second.status, NOW + timedelta(seconds=4))
    assert third.status.canary_weight == 33  # 1 canary pod beside 2 stable pods
    assert third.status.rollout.step_started_at is not None


def test_replica_router_sizes():
    router = ReplicaRouter()
    assert [router.canary_replicas(weight=w, stable_replicas=4) for w in (0, 10, 20, 50, 100)] == [
        0,
        1,
        1,
        4,
        4,
    ]
    assert router.canary_replicas(weight=10, stable_replicas=0) == 1


def test_rollback_scales_the_replica_canary_to_zero_and_reports_why():
    observed, status = v1_serving()
    m = v2()
    observed = Observed.of(stable=observed["stable"], service=observed["service"], canary=ready_canary(m, 1))
    s = status
    for i in range(3):  # start, settle, step starts
        s = plan(m, observed, s, NOW + timedelta(seconds=i)).status
    failing = CheckResult(
        metric="p99",
        query="histogram_quantile(0.99, ...)",
        value=0.9,
        threshold="<= 0.5",
        verdict="fail",
        message="p99 = 0.9, needs <= 0.5 (<= 0.5)",
        time="t",
    )
    p = plan(m, observed, s, NOW + timedelta(seconds=40), analyze=lambda: [failing])
    canary = kinds(p)[("Deployment", "iris-canary")]
    assert canary["spec"]["replicas"] == 0
    assert p.status.phase == "RolledBack" and p.status.rejected_version == "2.0.0@example.com/iris:2.0.0"
    degraded = C.get_condition(p.status.conditions, C.DEGRADED)
    assert degraded.status == "True" and degraded.reason == C.ROLLED_BACK and "0.9" in degraded.message
    assert any(e.reason == "AnalysisFailed" and e.type == "Warning" for e in p.events)
    text = render_status(
        {
            "metadata": {"name": "iris", "namespace": "default"},
            "spec": {},
            "status": p.status.model_dump(by_alias=True, mode="json"),
        }
    )
    assert "RolledBack" in text and "p99" in text and "fail" in text and "0.9" in text


def test_gateway_router_weights_the_http_route():
    observed, status = v1_serving()
    m = v2(**GATEWAY)
    first = plan(m, observed, status, NOW)
    applied = kinds(first)
    route = applied[("HTTPRoute", "iris")]
    assert route_weight(route) == 0  # canary not ready: no traffic
    assert ("Service", "iris-stable") in applied and ("Service", "iris-canary") in applied
    assert (
        applied[("Deployment", "iris-canary")]["spec"]["replicas"] == 2
    )  # full size; the route sets traffic
    observed = Observed.of(
        stable=observed["stable"],
        service=observed["service"],
        canary=ready_canary(m, 2),
        http_route=as_server_returns(route),
    )
    second = plan(m, observed, first.status, NOW + timedelta(seconds=2))
    route = kinds(second)[("HTTPRoute", "iris")]
    assert [b["weight"] for b in route["spec"]["rules"][0]["backendRefs"]] == [75, 25]
    observed = Observed.of(
        stable=observed["stable"],
        service=observed["service"],
        canary=observed["canary"],
        http_route=as_server_returns(route),
    )
    third = plan(m, observed, second.status, NOW + timedelta(seconds=4))
    assert third.status.canary_weight == 25 and third.status.rollout.step_started_at is not None


def test_route_not_accepted_reports_no_traffic():
    m = v2(**GATEWAY)
    route = as_server_returns(http_route(m, weight=25))
    route["status"] = {"parents": [{"conditions": [{"type": "Accepted", "status": "False"}]}]}
    from modelrollout.routing.base import TrackPods
    from modelrollout.routing.gateway import GatewayRouter

    achieved = GatewayRouter().achieved(
        weight=25, stable=TrackPods(2, 2, True), canary=TrackPods(2, 2, True), observed={"HTTPRoute": route}
    )
    assert achieved.weight == 0 and not achieved.settled


def test_switching_back_to_the_replica_router_removes_gateway_objects():
    observed, status = v1_serving()
    m = md()
    gw = v2(**GATEWAY)
    observed = Observed.of(
        stable=observed["stable"],
        service=observed["service"],
        http_route=as_server_returns(http_route(gw, weight=0)),
        stable_service=as_server_returns(R.service(gw, track="stable")),
    )
    p = plan(m, observed, status, NOW)
    assert ("HTTPRoute", "iris") in p.delete and ("Service", "iris-stable") in p.delete


def test_promotion_moves_the_stable_track_to_the_candidate():
    observed, status = v1_serving()
    m = v2()
    observed = Observed.of(stable=observed["stable"], service=observed["service"], canary=ready_canary(m, 1))
    s = plan(m, observed, status, NOW, requests=None).status
    from modelrollout.rollout.machine import Requests

    p = plan(m, observed, s, NOW + timedelta(seconds=1), requests=Requests(promote="t1"))
    stable = kinds(p)[("Deployment", "iris-stable")]
    assert stable["spec"]["template"]["metadata"]["labels"][L.VERSION_LABEL] == "2.0.0"
    assert p.status.phase == "Promoting" and p.status.stable_version == "1.0.0"
    assert p.status.handled_requests.promote == "t1"
    promoted = Observed.of(
        stable=as_server_returns(stable), service=observed["service"], canary=observed["canary"]
    )
    done = plan(m, promoted, p.status, NOW + timedelta(seconds=5))
    assert done.status.stable_version == "2.0.0" and done.status.rollout.phase == "Succeeded"
    assert done.status.phase == "Ready" and done.status.canary_version is None
