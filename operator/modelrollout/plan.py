"""The pure reconcile step: (ModelDeployment, observed children, status, now) -> Plan.

No I/O here: `controller.py` observes, calls `plan`, and carries the plan out. The rollout
machine decides which model each track runs and the canary weight; the router turns the
weight into objects; this module assembles the desired children and the status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelrollout.api.resource import ModelDeployment
from modelrollout.api.serving import ModelRef
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.conditions import BATCH_READY, get_condition
from modelrollout.drift import needs_apply, owns_field
from modelrollout.render import batch as B
from modelrollout.render import labels as L
from modelrollout.render import serving as R
from modelrollout.render.labels import FIELD_MANAGER
from modelrollout.rollout.machine import ACTIVE, Analyze, Cluster, Decision, Requests, decide, identity
from modelrollout.routing import router_for
from modelrollout.routing.base import Router, TrackPods
from modelrollout.status_view import EventNote, deployment_progress, serving_status, with_batch_status

POLL_SECONDS = 2.0


@dataclass(frozen=True)
class Observed:
    """The children as the API server returned them (None: absent)."""

    stable: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    hpa: dict[str, Any] | None = None
    pod_monitor: dict[str, Any] | None = None
    pod_monitor_served: bool = False
    stable_service: dict[str, Any] | None = None
    canary_service: dict[str, Any] | None = None
    http_route: dict[str, Any] | None = None
    cronjob: dict[str, Any] | None = None
    jobs: tuple[dict[str, Any], ...] = ()
    job_pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)

    def current(self, kind: str, name: str, md_name: str) -> dict[str, Any] | None:
        observed = (self.stable, self.canary, self.service, self.stable_service, self.canary_service,
                    self.hpa, self.pod_monitor, self.http_route, self.cronjob)  # fmt: skip
        return dict(zip(possible_children(md_name), observed, strict=True)).get((kind, name))


def possible_children(name: str) -> list[tuple[str, str]]:
    """Every (kind, name) the operator may create for the ModelDeployment `name`."""
    stable, canary = L.track_name(name, "stable"), L.track_name(name, "canary")
    return [
        ("Deployment", stable),
        ("Deployment", canary),
        ("Service", name),
        ("Service", stable),
        ("Service", canary),
        ("HorizontalPodAutoscaler", stable),
        ("PodMonitor", name),
        ("HTTPRoute", name),
        ("CronJob", L.batch_name(name)),
    ]


@dataclass(frozen=True)
class Plan:
    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    events: list[EventNote] = field(default_factory=list)
    requeue_after: float | None = None
    decision: Decision | None = None
    # (kind, name, merge patch) written under HANDOFF_MANAGER before the applies: a field the
    # operator stops applying is handed over first, so the API server does not reset it.
    handoff: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def child_key(kind: str, name: str) -> str:
    return f"{kind}/{name}"


def children_to_observe(md: ModelDeployment, previous: ModelDeploymentStatus) -> set[str] | None:
    """Which children the next reconcile must GET: those the last one managed plus those the spec
    may need now. None (status from before this was recorded): look at every possible child.
    Keeps a steady reconcile at a few GETs, which is what 1,000 objects per operator needs."""
    if previous.children is None:
        return None
    name, spec = md.name, md.spec
    wanted = {child_key("Deployment", L.track_name(name, "stable")), child_key("Service", name)}
    if previous.rollout is not None or (previous.stable_version or spec.model.version) != spec.model.version:
        wanted.add(child_key("Deployment", L.track_name(name, "canary")))
    if spec.serving.autoscaling is not None:
        wanted.add(child_key("HorizontalPodAutoscaler", L.track_name(name, "stable")))
    if spec.rollout.router == "gatewayAPI":
        wanted |= {child_key("Service", L.track_name(name, t)) for t in ("stable", "canary")}
        wanted.add(child_key("HTTPRoute", name))
    if spec.mode != "online":
        wanted.add(child_key("CronJob", L.batch_name(name)))
    return wanted | set(previous.children)


def track_pods(dep: dict[str, Any] | None) -> TrackPods:
    if dep is None:
        return TrackPods()
    progress = deployment_progress(dep)
    return TrackPods(desired=progress.replicas, ready=progress.ready, complete=progress.complete)


def running_model(dep: dict[str, Any] | None, name: str) -> ModelRef | None:
    """The model a Deployment's pods run, from its template (label and image)."""
    if dep is None:
        return None
    template = dep.get("spec", {}).get("template", {})
    version = template.get("metadata", {}).get("labels", {}).get(L.VERSION_LABEL)
    containers = template.get("spec", {}).get("containers", [])
    if not version or not containers:
        return None
    return ModelRef(name=name, version=version, image=containers[0].get("image", "unknown"))


def stable_replicas(md: ModelDeployment, observed: Observed) -> int:
    """The stable track's size: the spec's, or with an HPA what the HPA chose."""
    scaling = md.spec.serving.autoscaling
    if scaling is None:
        return md.spec.serving.replicas
    current = (observed.stable or {}).get("spec", {}).get("replicas")
    return int(current) if current is not None else scaling.min_replicas


def cluster_view(
    md: ModelDeployment, observed: Observed, previous: ModelDeploymentStatus, router: Router
) -> Cluster:
    stable, canary = track_pods(observed.stable), track_pods(observed.canary)
    asked = previous.rollout.desired_weight if previous.rollout and previous.rollout.phase in ACTIVE else 0
    achieved = router.achieved(
        weight=asked, stable=stable, canary=canary, observed={"HTTPRoute": observed.http_route}
    )
    canary_model = running_model(observed.canary, md.spec.model.name)
    stable_model = running_model(observed.stable, md.spec.model.name)
    return Cluster(
        canary_ready=(
            canary_model is not None
            and identity(canary_model) == identity(md.spec.model)
            and canary.complete
            and canary.desired > 0
        ),
        stable_ready=stable.complete,
        stable_version=stable_model.version if stable_model else None,
        weight_settled=achieved.settled,
        observed_weight=achieved.weight,
    )


def _canary_deployment(
    md: ModelDeployment, decision: Decision, observed: Observed, router: Router, size: int
) -> dict[str, Any] | None:
    """The canary Deployment at its size, or scaled to zero (kept for inspection)."""
    if decision.canary_model is not None:
        if decision.size_weight > 0:
            replicas = router.canary_replicas(weight=decision.size_weight, stable_replicas=size)
        else:
            replicas = max(size, 1) if router.holds_pods_at_zero else 0
        return R.deployment(md, model=decision.canary_model, track="canary", replicas=replicas)
    previous = running_model(observed.canary, md.spec.model.name)
    if previous is None:
        return None
    return R.deployment(md, model=previous, track="canary", replicas=0)


def plan(
    md: ModelDeployment,
    observed: Observed,
    previous: ModelDeploymentStatus,
    now: datetime,
    *,
    requests: Requests | None = None,
    analyze: Analyze = lambda: [],
) -> Plan:
    """Online (and hybrid) serving with canary rollouts."""
    spec = md.spec
    requests = requests or Requests()
    router = router_for(spec.rollout.router)
    decision = decide(
        spec,
        previous,
        cluster_view(md, observed, previous, router),
        requests=requests,
        analyze=analyze,
        now=now,
    )
    size = stable_replicas(md, observed)
    desired = [
        R.deployment(
            md,
            model=decision.stable_model,
            track="stable",
            replicas=None if spec.serving.autoscaling else size,
        ),
        R.service(md, stable_only=router.name == "gatewayAPI"),
    ]
    canary = _canary_deployment(md, decision, observed, router, size)
    if canary is not None:
        desired.append(canary)
    desired += router.manifests(md, weight=decision.weight)
    delete = _stale_routing(md, observed, router)
    hpa = R.hpa(md)
    if hpa is not None:
        desired.append(hpa)
    elif observed.hpa is not None:
        delete.append(("HorizontalPodAutoscaler", L.track_name(md.name, "stable")))
    if observed.pod_monitor_served:
        desired.append(R.pod_monitor(md))
    cronjob = B.cronjob(md) if spec.mode != "online" else None
    if cronjob is not None:
        desired.append(cronjob)
    elif observed.cronjob is not None:
        delete.append(("CronJob", L.batch_name(md.name)))

    apply = [
        d for d in desired if needs_apply(d, observed.current(d["kind"], d["metadata"]["name"], md.name))
    ]
    handoff = replicas_handoff(md, observed)
    if handoff and not any(
        d["kind"] == "Deployment" and d["metadata"]["name"] == handoff[0][1] for d in apply
    ):
        apply.insert(0, desired[0])  # re-apply without replicas so the operator's ownership ends now
    events = [
        EventNote(
            "Normal",
            "Created" if observed.current(d["kind"], d["metadata"]["name"], md.name) is None else "Updated",
            f"{d['kind']} {d['metadata']['name']}",
        )
        for d in apply
    ]
    events += [EventNote(e.type, e.reason, e.message) for e in decision.events]
    status = serving_status(
        md,
        previous,
        decision=decision,
        stable=observed.stable,
        stable_changing=any(
            d["kind"] == "Deployment" and d["metadata"]["name"].endswith("-stable") for d in apply
        ),
        now=now,
    )
    status = status.model_copy(
        update={
            "children": sorted(
                {child_key(d["kind"], d["metadata"]["name"]) for d in desired}
                - {child_key(k, n) for k, n in delete}
            )
        }
    )
    if spec.mode != "online":
        status, batch_events = with_batch_status(md, status, previous, observed, now)
        events += batch_events
    elif status.batch is not None or get_condition(status.conditions, BATCH_READY) is not None:
        # back to online: no batch runs to report on any more
        status = status.model_copy(
            update={"batch": None, "conditions": [c for c in status.conditions if c.type != BATCH_READY]}
        )
    if previous.phase != status.phase:
        events.append(
            EventNote(
                "Warning" if status.phase in ("Degraded", "Failed", "RolledBack") else "Normal",
                f"Phase{status.phase}",
                status.message or "",
            )
        )
    requeue = decision.requeue_after
    if status.phase in ("Pending", "Progressing", "Promoting") or apply:
        requeue = min(requeue or POLL_SECONDS, POLL_SECONDS)
    return Plan(
        apply=apply,
        delete=delete,
        status=status,
        events=events,
        requeue_after=requeue,
        decision=decision,
        handoff=handoff,
    )


def replicas_handoff(md: ModelDeployment, observed: Observed) -> list[tuple[str, str, dict[str, Any]]]:
    """With an HPA the operator stops applying the stable track's replicas. Released by
    server-side apply, the field would fall back to its default (1) until the HPA acts; written
    first under another manager, it keeps the current count (the documented SSA handover)."""
    if md.spec.serving.autoscaling is None or not owns_field(
        observed.stable, FIELD_MANAGER, ("spec", "replicas")
    ):
        return []
    current = (observed.stable or {}).get("spec", {}).get("replicas")
    if current is None:
        return []
    return [("Deployment", L.track_name(md.name, "stable"), {"spec": {"replicas": current}})]


def _stale_routing(md: ModelDeployment, observed: Observed, router: Router) -> list[tuple[str, str]]:
    """Objects of the other router, left over after `spec.rollout.router` changed."""
    if router.name == "gatewayAPI":
        return []
    stale = []
    if observed.http_route is not None:
        stale.append(("HTTPRoute", md.name))
    for track, obj in (("stable", observed.stable_service), ("canary", observed.canary_service)):
        if obj is not None:
            stale.append(("Service", L.track_name(md.name, track)))
    return stale
