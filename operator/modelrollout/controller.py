"""One reconcile of one ModelDeployment: parse -> observe -> decide -> apply -> report.

Synchronous (the kubernetes client blocks): kopf handlers run it in a worker thread.
"""

from __future__ import annotations

import logging
from datetime import UTC, datetime
from typing import Any

from modelrollout import conditions as C
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.spec import SpecError
from modelrollout.api.status import ModelDeploymentStatus, parse_status
from modelrollout.kube import kinds as K
from modelrollout.kube.client import ApiError, KubeClient
from modelrollout.plan import EventNote, Observed, Plan, invalid_spec_status, plan_serving
from modelrollout.render import labels as L

log = logging.getLogger(__name__)


def observe(kube: KubeClient, md: ModelDeployment) -> Observed:
    ns, name = md.namespace, md.name
    monitor_served = kube.served(K.POD_MONITOR)
    return Observed(
        stable=kube.get(K.DEPLOYMENT, ns, L.track_name(name, "stable")),
        canary=kube.get(K.DEPLOYMENT, ns, L.track_name(name, "canary")),
        service=kube.get(K.SERVICE, ns, name),
        hpa=kube.get(K.HPA, ns, L.track_name(name, "stable")),
        pod_monitor=kube.get(K.POD_MONITOR, ns, name) if monitor_served else None,
        pod_monitor_served=monitor_served,
    )


def status_wire(status: ModelDeploymentStatus) -> dict[str, Any]:
    """Status for a merge patch: unset fields as null, so stale values are removed."""
    return status.model_dump(by_alias=True, mode="json")


def reconcile(kube: KubeClient, body: dict[str, Any], now: datetime | None = None) -> Plan | None:
    """Bring one ModelDeployment's children and status in line; returns what was decided."""
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    previous = parse_status(body.get("status"))
    try:
        md = ModelDeployment.from_body(body)
    except SpecError as exc:
        generation = int(meta.get("generation", 0) or 0)
        status = invalid_spec_status(previous, generation=generation, message=str(exc), now=now)
        events = [] if previous.message == status.message else [EventNote("Warning", C.INVALID_SPEC, str(exc))]
        carry_out(kube, body, Plan(status=status, events=events), previous)
        return None
    plan = plan_serving(md, observe(kube, md), previous, now)
    return carry_out(kube, body, plan, previous)


def carry_out(kube: KubeClient, body: dict[str, Any], plan: Plan, previous: ModelDeploymentStatus) -> Plan:
    """Apply, delete, then report. A failed apply becomes a Degraded condition, not a crash."""
    meta = body["metadata"]
    ns, name = meta.get("namespace", "default"), meta["name"]
    status = plan.status
    events = list(plan.events)
    try:
        for manifest in plan.apply:
            kube.apply(manifest)
        for kind, child in plan.delete:
            if kube.delete(K.BY_KIND[kind], ns, child):
                events.append(EventNote("Normal", "Deleted", f"deleted {kind} {child}"))
    except ApiError as exc:
        message = f"applying children failed: {exc}"
        log.warning("%s/%s: %s", ns, name, message)
        conds = C.set_condition(status.conditions, type=C.DEGRADED, status="True", reason=C.APPLY_FAILED,
                                message=message, generation=status.observed_generation or 0,
                                now=datetime.now(UTC))
        status = status.model_copy(update={"phase": "Degraded", "message": message[:4096], "conditions": conds})
        events.append(EventNote("Warning", C.APPLY_FAILED, message))
    if status_wire(status) != status_wire(previous):
        kube.patch_status(ns, name, status_wire(status))
    involved = {"apiVersion": body.get("apiVersion", K.MODEL_DEPLOYMENT.api_version),
                "kind": body.get("kind", "ModelDeployment"), "metadata": meta}
    for note in events:
        kube.event(involved, type=note.type, reason=note.reason, message=note.message, action="Reconcile")
    return Plan(apply=plan.apply, delete=plan.delete, status=status, events=events)
