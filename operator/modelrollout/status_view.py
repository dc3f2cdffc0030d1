"""What the status says (pure): phase, conditions and versions from the stable Deployment and
the rollout decision."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelrollout import conditions as C
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.status import ModelDeploymentStatus, Phase
from modelrollout.render import labels as L
from modelrollout.rollout.machine import ACTIVE, Decision, identity


@dataclass(frozen=True)
class EventNote:
    type: str  # Normal | Warning
    reason: str
    message: str


@dataclass(frozen=True)
class Progress:
    """What a Deployment's status says about its own rollout."""

    replicas: int
    ready: int
    complete: bool
    failed_message: str | None


def deployment_progress(dep: dict[str, Any]) -> Progress:
    spec, status = dep.get("spec", {}), dep.get("status", {}) or {}
    want = int(spec.get("replicas", 1))
    gen, seen = dep.get("metadata", {}).get("generation", 0), status.get("observedGeneration", 0)
    updated, available = status.get("updatedReplicas", 0) or 0, status.get("availableReplicas", 0) or 0
    complete = (
        seen >= gen and updated >= want and available >= want and (status.get("replicas", 0) or 0) <= want
    )
    failed = None
    for cond in status.get("conditions", []) or []:
        if cond.get("type") == "Progressing" and cond.get("reason") == "ProgressDeadlineExceeded":
            failed = cond.get("message") or "progress deadline exceeded"
        if cond.get("type") == "ReplicaFailure" and cond.get("status") == "True":
            failed = cond.get("message") or "replica failure"
    return Progress(
        replicas=want,
        ready=int(status.get("readyReplicas", 0) or 0),
        complete=complete,
        failed_message=failed,
    )


def _stable_phase(progress: Progress | None) -> tuple[Phase, str, str, str]:
    """(phase, ready reason, degraded reason, message) for the stable track."""
    if progress is None:
        return "Pending", C.WAITING_FOR_PODS, C.AS_EXPECTED, "creating the stable Deployment"
    if progress.failed_message:
        return "Degraded", C.DEPLOYMENT_FAILED, C.DEPLOYMENT_FAILED, progress.failed_message
    if progress.complete:
        if progress.replicas == 0:
            return "Ready", C.SCALED_TO_ZERO, C.AS_EXPECTED, "scaled to zero replicas"
        return (
            "Ready",
            C.DEPLOYMENT_READY,
            C.AS_EXPECTED,
            f"{progress.ready}/{progress.replicas} replicas ready",
        )
    return (
        "Progressing",
        C.WAITING_FOR_PODS,
        C.AS_EXPECTED,
        f"{progress.ready}/{progress.replicas} replicas ready",
    )


def invalid_spec_status(
    previous: ModelDeploymentStatus, *, generation: int, message: str, now: datetime
) -> ModelDeploymentStatus:
    """Degraded with the parse error; what was serving keeps serving (children are untouched)."""
    conds = C.set_condition(
        previous.conditions,
        type=C.DEGRADED,
        status="True",
        reason=C.INVALID_SPEC,
        message=message,
        generation=generation,
        now=now,
    )
    conds = C.set_condition(
        conds,
        type=C.PROGRESSING,
        status="False",
        reason=C.INVALID_SPEC,
        message="the spec cannot be acted on; fix it and re-apply",
        generation=generation,
        now=now,
    )
    return previous.model_copy(
        update={
            "observed_generation": generation,
            "phase": "Degraded",
            "message": message[:4096],
            "conditions": conds,
        }
    )


def serving_status(
    md: ModelDeployment,
    previous: ModelDeploymentStatus,
    *,
    decision: Decision,
    stable: dict[str, Any] | None,
    stable_changing: bool,
    now: datetime,
) -> ModelDeploymentStatus:
    progress = deployment_progress(stable) if stable is not None else None
    if progress is not None and stable_changing:
        # A Deployment we are about to change is not yet ready for the new spec.
        progress = Progress(
            replicas=progress.replicas, ready=progress.ready, complete=False, failed_message=None
        )
    phase, ready_reason, degraded_reason, message = _stable_phase(progress)
    rollout = decision.rollout
    rejected_now = rollout is not None and decision.rejected_version == identity(md.spec.model)
    rolling = rollout is not None and rollout.phase in ACTIVE
    if phase != "Degraded" and (rolling or rejected_now):
        phase, message = rollout.phase, rollout.message
    gen = md.generation
    conds = C.set_condition(
        previous.conditions,
        type=C.READY,
        status="True"
        if progress is not None and progress.complete and ready_reason != C.DEPLOYMENT_FAILED
        else "False",
        reason=ready_reason,
        message=_stable_message(progress),
        generation=gen,
        now=now,
    )
    busy = phase in ("Pending", "Progressing", "Paused", "Promoting")
    conds = C.set_condition(
        conds,
        type=C.PROGRESSING,
        status="True" if busy else "False",
        reason=(C.ROLLOUT_IN_PROGRESS if rolling else C.DEPLOYMENT_PROGRESSING) if busy else C.RECONCILED,
        message=message if busy else "",
        generation=gen,
        now=now,
    )
    if degraded_reason == C.DEPLOYMENT_FAILED:
        degraded = ("True", C.DEPLOYMENT_FAILED, message)
    elif rejected_now:
        degraded = ("True", C.ROLLED_BACK, f"{rollout.canary_version} rejected: {rollout.message}")
    else:
        degraded = ("False", C.AS_EXPECTED, "")
    conds = C.set_condition(
        conds,
        type=C.DEGRADED,
        status=degraded[0],
        reason=degraded[1],
        message=degraded[2],
        generation=gen,
        now=now,
    )
    first_ready = previous.stable_version is None and progress is not None and progress.complete
    return previous.model_copy(
        update={
            "observed_generation": gen,
            "phase": phase,
            "message": message,
            "conditions": conds,
            **decision.status_fields(),
            # the first stable version is recorded once its pods are ready
            "stable_version": decision.stable_version if previous.stable_version or first_ready else None,
            "stable_image": decision.stable_image if previous.stable_version or first_ready else None,
            "canary_version": rollout.canary_version if rolling else None,
            "canary_weight": rollout.observed_weight if rolling else 0,
            "replicas": progress.replicas if progress else 0,
            "ready_replicas": progress.ready if progress else 0,
            "selector": L.selector_string(L.selector(md.name)),
        }
    )


def _stable_message(progress: Progress | None) -> str:
    if progress is None:
        return "no stable pods yet"
    return f"{progress.ready}/{progress.replicas} stable replicas ready"


def with_batch_status(
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    previous: ModelDeploymentStatus,
    observed: Any,
    now: datetime,
) -> tuple[ModelDeploymentStatus, list[EventNote]]:
    """Adds the batch runs' status and the BatchReady condition; an event per newly failed run."""
    from modelrollout.batch_view import batch_status
    from modelrollout.render.batch import table_name

    batch = batch_status(
        table=table_name(md),
        cronjob=observed.cronjob,
        jobs=list(observed.jobs),
        pods_by_job=observed.job_pods,
        previous=previous.batch,
    )
    last, before = batch.last_run, previous.batch.last_run if previous.batch else None
    events = []
    if (
        last is not None
        and last.phase != "Running"
        and (before is None or (before.job, before.phase) != (last.job, last.phase))
    ):
        failed = last.phase == "Failed"
        events.append(
            EventNote(
                "Warning" if failed else "Normal",
                "BatchRunFailed" if failed else "BatchRunSucceeded",
                f"run {last.run_id}: {last.message or last.status or last.phase}"
                + ("; the previous version keeps serving" if failed else ""),
            )
        )
    if last is not None and last.phase == "Failed":
        cond = (
            "False",
            last.reason or "RunFailed",
            f"run {last.run_id} failed: {last.message or ''}; "
            f"serving version {batch.published_version or 'none'}",
        )
    elif batch.published_version:
        cond = (
            "True",
            "Published",
            f"serving predictions of run {batch.published_version} ({batch.rows} rows)",
        )
    else:
        cond = ("False", "NoPublishedVersion", "no batch run has published predictions yet")
    conds = C.set_condition(
        status.conditions,
        type=C.BATCH_READY,
        status=cond[0],
        reason=cond[1],
        message=cond[2],
        generation=md.generation,
        now=now,
    )
    return status.model_copy(update={"batch": batch, "conditions": conds}), events
