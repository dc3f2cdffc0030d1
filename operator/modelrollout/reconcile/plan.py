"""The pure reconcile step: (ModelDeployment, observed children, status, now) -> Plan.

No I/O here: `loop.py` observes, calls `plan`, and carries the plan out. The rollout machine
decides which model each track runs and the canary weight; every child of the table in
`children.py` is rendered from that decision; what differs from what the server has is
applied, what must not exist is deleted, and `status.py` assembles the status.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelrollout import FIELD_MANAGER
from modelrollout.api import conditions as C
from modelrollout.api.events import Event
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.serving import ModelRef
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.kube import kinds as K
from modelrollout.reconcile.children import CHILDREN, Desire
from modelrollout.reconcile.drift import needs_apply, owns_field
from modelrollout.reconcile.observed import Manifest, Observed
from modelrollout.reconcile.status import assemble, deployment_progress
from modelrollout.render import labels as L
from modelrollout.rollout.decision import ACTIVE, Analyze, Cluster, Decision, Requests, identity
from modelrollout.rollout.machine import decide
from modelrollout.rollout.template_refs import Resolved, with_analysis
from modelrollout.routing import router_for
from modelrollout.routing.base import Router, TrackPods

POLL_SECONDS = 2.0
BUSY_PHASES = ("Pending", "Progressing", "Promoting")


@dataclass(frozen=True)
class Plan:
    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None
    decision: Decision | None = None
    # (kind, name, fields) applied under HANDOFF_MANAGER before the operator's applies: a field
    # the operator stops applying is handed over first, so the API server does not reset it.
    handoff: list[tuple[str, str, dict[str, Any]]] = field(default_factory=list)


def plan(
    md: ModelDeployment,
    observed: Observed,
    previous: ModelDeploymentStatus,
    now: datetime,
    *,
    requests: Requests | None = None,
    analyze: Analyze = lambda **_: [],
    analyze_bake: Analyze = lambda **_: [],
    resolved: Resolved | None = None,
    analysis_problem: str | None = None,
) -> Plan:
    """`resolved`: the effective analysis (templates merged); `analysis_problem`: why it cannot
    be built (the rollout waits, the status says Degraded)."""
    router = router_for(md.spec.rollout.router)
    decision = decide(
        with_analysis(md.spec, resolved.analysis) if resolved is not None else md.spec,
        previous,
        cluster_view(md, observed, previous, router),
        requests=requests or Requests(),
        analyze=analyze,
        analyze_bake=analyze_bake,
        now=now,
        analysis_blocked=analysis_problem,
    )
    desired = render_children(desire_for(md, decision, router, observed))
    apply, delete, handoff = changes(md, desired, observed)
    events = [_apply_event(manifest, observed) for manifest in apply] + list(decision.events)
    status, status_events = assemble(
        md,
        previous,
        decision=decision,
        observed=observed,
        children=sorted(_identity(m) for m in desired.values() if m is not None),
        stable_changing=any(_identity(m) == _identity(desired["stable"]) for m in apply),
        now=now,
        analysis_problem=analysis_problem,
    )
    requeue = decision.requeue_after
    if status.phase in BUSY_PHASES or apply:
        requeue = min(requeue or POLL_SECONDS, POLL_SECONDS)
    return Plan(
        apply=apply,
        delete=delete,
        status=status,
        events=events + status_events,
        requeue_after=requeue,
        decision=decision,
        handoff=handoff,
    )


# --- what the rollout machine sees --------------------------------------------------------------


def track_pods(dep: Manifest | None) -> TrackPods:
    if dep is None:
        return TrackPods()
    progress = deployment_progress(dep)
    return TrackPods(desired=progress.replicas, ready=progress.ready, complete=progress.complete)


def running_model(dep: Manifest | None, name: str) -> ModelRef | None:
    """The model a Deployment's pods run, from its template (label and image)."""
    if dep is None:
        return None
    template = dep.get("spec", {}).get("template", {})
    version = template.get("metadata", {}).get("labels", {}).get(L.VERSION_LABEL)
    containers = template.get("spec", {}).get("containers", [])
    if not version or not containers:
        return None
    return ModelRef(name=name, version=version, image=containers[0].get("image", "unknown"))


def cluster_view(
    md: ModelDeployment, observed: Observed, previous: ModelDeploymentStatus, router: Router
) -> Cluster:
    stable, canary = track_pods(observed["stable"]), track_pods(observed["canary"])
    asked = previous.rollout.desired_weight if previous.rollout and previous.rollout.phase in ACTIVE else 0
    achieved = router.achieved(
        weight=asked, stable=stable, canary=canary, observed={K.HTTP_ROUTE.kind: observed["http_route"]}
    )
    canary_model = running_model(observed["canary"], md.spec.model.name)
    stable_model = running_model(observed["stable"], md.spec.model.name)
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


# --- what the children should be ----------------------------------------------------------------


def stable_replicas(md: ModelDeployment, observed: Observed) -> int:
    """The stable track's size: the spec's, or with an HPA what the HPA chose."""
    scaling = md.spec.serving.autoscaling
    if scaling is None:
        return md.spec.serving.replicas
    current = (observed["stable"] or {}).get("spec", {}).get("replicas")
    return int(current) if current is not None else scaling.min_replicas


def desire_for(md: ModelDeployment, decision: Decision, router: Router, observed: Observed) -> Desire:
    return Desire(
        md=md,
        decision=decision,
        router=router,
        stable_replicas=stable_replicas(md, observed),
        running_canary=running_model(observed["canary"], md.spec.model.name),
        served=observed.served,
        routed={(m["kind"], m["metadata"]["name"]): m for m in router.manifests(md, weight=decision.weight)},
    )


def render_children(desire: Desire) -> dict[str, Manifest | None]:
    """Every row of the table rendered for this reconcile, by key (None: must not exist)."""
    return {child.key: child.render(desire, child.name(desire.md.name)) for child in CHILDREN}


def changes(
    md: ModelDeployment, desired: dict[str, Manifest | None], observed: Observed
) -> tuple[list[Manifest], list[tuple[str, str]], list[tuple[str, str, dict[str, Any]]]]:
    """(apply, delete, handoff): what differs from the server, what must go, what to hand over."""
    apply = [m for key, m in desired.items() if m is not None and needs_apply(m, observed[key])]
    delete = [
        (child.kind.kind, child.name(md.name))
        for child in CHILDREN
        if child.deletable and desired[child.key] is None and observed[child.key] is not None
    ]
    handoff = replicas_handoff(md, observed)
    stable = desired["stable"]
    if handoff and stable is not None and all(_identity(m) != _identity(stable) for m in apply):
        apply.insert(0, stable)  # re-applied without replicas so the operator's ownership ends now
    return apply, delete, handoff


def replicas_handoff(md: ModelDeployment, observed: Observed) -> list[tuple[str, str, dict[str, Any]]]:
    """With an HPA the operator stops applying the stable track's replicas. Released by
    server-side apply, the field would fall back to its default (1) until the HPA acts; applied
    first by another manager, it keeps the current count (the documented SSA hand-over)."""
    stable = observed["stable"]
    if md.spec.serving.autoscaling is None or not owns_field(stable, FIELD_MANAGER, ("spec", "replicas")):
        return []
    current = (stable or {}).get("spec", {}).get("replicas")
    if current is None:
        return []
    return [(K.DEPLOYMENT.kind, L.track_name(md.name, "stable"), {"spec": {"replicas": current}})]


def _identity(manifest: Manifest) -> str:
    return f"{manifest['kind']}/{manifest['metadata']['name']}"


def _apply_event(manifest: Manifest, observed: Observed) -> Event:
    identity = _identity(manifest)
    existed = any(m is not None and _identity(m) == identity for m in observed.children.values())
    return Event(
        "Normal", C.UPDATED if existed else C.CREATED, f"{manifest['kind']} {manifest['metadata']['name']}"
    )
