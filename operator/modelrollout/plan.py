"""The pure reconcile step: (ModelDeployment, observed children, status, now) -> Plan.

No I/O here: `controller.py` observes, calls `plan`, and carries the plan out. Everything is
decided from its arguments, so every behaviour is tested without a cluster.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from modelrollout import conditions as C
from modelrollout.api.base import parse_quantity
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.status import ModelDeploymentStatus, Phase
from modelrollout.render import labels as L
from modelrollout.render import serving as R


@dataclass(frozen=True)
class Observed:
    """The children as the API server returned them (None: absent)."""

    stable: dict[str, Any] | None = None
    canary: dict[str, Any] | None = None
    service: dict[str, Any] | None = None
    hpa: dict[str, Any] | None = None
    pod_monitor: dict[str, Any] | None = None
    pod_monitor_served: bool = False


@dataclass(frozen=True)
class EventNote:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Plan:
    apply: list[dict[str, Any]] = field(default_factory=list)
    delete: list[tuple[str, str]] = field(default_factory=list)  # (kind, name)
    status: ModelDeploymentStatus = field(default_factory=ModelDeploymentStatus)
    events: list[EventNote] = field(default_factory=list)


# --- drift ---------------------------------------------------------------------------------------

def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str | int) and isinstance(have, str | int) and not isinstance(want, bool):
        try:  # the API server canonicalises quantities ("1000m" -> "1")
            return parse_quantity(want) == parse_quantity(have)
        except ValueError:
            return False
    return False


def is_subset(want: Any, have: Any) -> bool:
    """True when every field we set is present with the same value in what the server has.

    Fields the server added (defaults, status, managedFields) do not count as drift."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (isinstance(have, list) and len(want) == len(have)
                and all(is_subset(w, h) for w, h in zip(want, have, strict=True)))
    return _same_scalar(want, have)


def needs_apply(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    return observed is None or not is_subset(desired, observed)


# --- serving status ------------------------------------------------------------------------------

@dataclass(frozen=True)
class Rollout:
    """What a Deployment's status says about its rollout."""

    replicas: int
    ready: int
    complete: bool
    failed_message: str | None


def deployment_progress(dep: dict[str, Any]) -> Rollout:
    spec, status = dep.get("spec", {}), dep.get("status", {}) or {}
    want = int(spec.get("replicas", 1))
    gen, seen = dep.get("metadata", {}).get("generation", 0), status.get("observedGeneration", 0)
    updated, available = status.get("updatedReplicas", 0), status.get("availableReplicas", 0)
    complete = seen >= gen and updated >= want and available >= want and status.get("replicas", 0) <= want
    failed = None
    for cond in status.get("conditions", []) or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            failed = cond.get("message") or "progress deadline exceeded"
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            failed = cond.get("message") or "replica failure"
    return Rollout(replicas=want, ready=int(status.get("readyReplicas", 0) or 0), complete=complete,
                   failed_message=failed)


def _serving_phase(progress: Rollout | None) -> tuple[Phase, str, str, str]:
    """(phase, ready reason, degraded reason, message) for the stable track."""
    if progress is None:
        return "Pending", C.WAITING_FOR_PODS, C.AS_EXPECTED, "creating the stable Deployment"
    if progress.failed_message:
        return "Degraded", C.DEPLOYMENT_FAILED, C.DEPLOYMENT_FAILED, progress.failed_message
    if progress.complete:
        if progress.replicas == 0:
            return "Ready", C.SCALED_TO_ZERO, C.AS_EXPECTED, "scaled to zero replicas"
        return "Ready", C.DEPLOYMENT_READY, C.AS_EXPECTED, f"{progress.ready}/{progress.replicas} replicas ready"
    return ("Progressing", C.WAITING_FOR_PODS, C.AS_EXPECTED,
            f"{progress.ready}/{progress.replicas} replicas ready")


def invalid_spec_status(previous: ModelDeploymentStatus, *, generation: int, message: str,
                        now: datetime) -> ModelDeploymentStatus:
    """Degraded with the parse error; what was serving keeps serving (children are untouched)."""
    conds = C.set_condition(previous.conditions, type=C.DEGRADED, status="True", reason=C.INVALID_SPEC,
                            message=message, generation=generation, now=now)
    conds = C.set_condition(conds, type=C.PROGRESSING, status="False", reason=C.INVALID_SPEC,
                            message="the spec cannot be acted on; fix it and re-apply",
                            generation=generation, now=now)
    return previous.model_copy(update={"observed_generation": generation, "phase": "Degraded",
                                       "message": message[:4096], "conditions": conds})


# --- the plan ------------------------------------------------------------------------------------

def plan_serving(md: ModelDeployment, observed: Observed, previous: ModelDeploymentStatus,
                 now: datetime) -> Plan:
    """Online serving: one stable track running `spec.model`, its Service, HPA, PodMonitor."""
    spec = md.spec
    replicas = None if spec.serving.autoscaling else spec.serving.replicas
    desired = [R.deployment(md, model=spec.model, track="stable", replicas=replicas), R.service(md)]
    delete: list[tuple[str, str]] = []
    hpa = R.hpa(md)
    if hpa is not None:
        desired.append(hpa)
    elif observed.hpa is not None:
        delete.append(("HorizontalPodAutoscaler", L.track_name(md.name, "stable")))
    if observed.pod_monitor_served:
        desired.append(R.pod_monitor(md))
    if observed.canary is not None:
        delete.append(("Deployment", L.track_name(md.name, "canary")))

    current = {"Deployment": observed.stable, "Service": observed.service,
               "HorizontalPodAutoscaler": observed.hpa, "PodMonitor": observed.pod_monitor}
    apply = [d for d in desired if needs_apply(d, current[d["kind"]])]
    events = [EventNote("Normal", "Applied" if current[d["kind"]] is None else "Repaired",
                        f"{'created' if current[d['kind']] is None else 'updated'} {d['kind']} {d['metadata']['name']}")
              for d in apply]

    stable_progress = deployment_progress(observed.stable) if observed.stable is not None else None
    # A Deployment we are about to change is not yet ready for the new spec.
    if any(d["kind"] == "Deployment" for d in apply):
        stable_progress = None if observed.stable is None else Rollout(
            replicas=stable_progress.replicas, ready=stable_progress.ready, complete=False,
            failed_message=None)
    phase, ready_reason, degraded_reason, message = _serving_phase(stable_progress)
    status = _serving_status(md, previous, phase=phase, ready_reason=ready_reason,
                             degraded_reason=degraded_reason, message=message, progress=stable_progress,
                             now=now)
    if previous.phase != status.phase:
        events.append(EventNote("Warning" if phase == "Degraded" else "Normal", f"Phase{phase}", message))
    if spec.gates is not None and previous.observed_generation != md.generation:
        events.append(EventNote("Warning", C.GATES_NOT_ENFORCED,
                                "spec.gates is accepted but not enforced by this operator version"))
    return Plan(apply=apply, delete=delete, status=status, events=events)


def _serving_status(md: ModelDeployment, previous: ModelDeploymentStatus, *, phase: Phase, ready_reason: str,
                    degraded_reason: str, message: str, progress: Rollout | None,
                    now: datetime) -> ModelDeploymentStatus:
    gen = md.generation
    ready = phase == "Ready"
    conds = C.set_condition(previous.conditions, type=C.READY, status="True" if ready else "False",
                            reason=ready_reason, message=message, generation=gen, now=now)
    conds = C.set_condition(conds, type=C.PROGRESSING, status="True" if phase in ("Pending", "Progressing") else "False",
                            reason=C.DEPLOYMENT_PROGRESSING if phase in ("Pending", "Progressing") else C.RECONCILED,
                            message=message, generation=gen, now=now)
    conds = C.set_condition(conds, type=C.DEGRADED, status="True" if phase == "Degraded" else "False",
                            reason=degraded_reason, message=message if phase == "Degraded" else "",
                            generation=gen, now=now)
    stable_version = md.spec.model.version if ready else previous.stable_version
    stable_image = md.spec.model.image if ready else previous.stable_image
    return previous.model_copy(update={
        "observed_generation": gen,
        "phase": phase,
        "message": message,
        "conditions": conds,
        "stable_version": stable_version,
        "stable_image": stable_image,
        "canary_version": None,
        "canary_weight": 0,
        "replicas": progress.replicas if progress else 0,
        "ready_replicas": progress.ready if progress else 0,
        "selector": L.selector_string(L.selector(md.name)),
    })
