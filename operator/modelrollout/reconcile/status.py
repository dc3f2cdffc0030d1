"""The one place status is assembled (pure): phase, conditions and versions from the stable
Deployment and the rollout decision, the children, the batch runs, the phase-change event;
and the two statuses written without a plan (a spec that cannot be parsed, a failed apply)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from modelrollout.api import conditions as C
from modelrollout.api.events import Event
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.status import Condition, ModelDeploymentStatus, Phase
from modelrollout.reconcile.batch_status import batch_status
from modelrollout.reconcile.observed import Observed
from modelrollout.render import labels as L
from modelrollout.render.store import table_name
from modelrollout.rollout.decision import ACTIVE, Decision, identity

WARNING_PHASES = ("Degraded", "Failed", "RolledBack")


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


def degraded(
    status: ModelDeploymentStatus, *, reason: str, message: str, generation: int, now: datetime
) -> ModelDeploymentStatus:
    """Phase Degraded with the Degraded condition saying why (the children are left as they are)."""
    conds = C.set_condition(
        status.conditions,
        type=C.DEGRADED,
        status="True",
        reason=reason,
        message=message,
        generation=generation,
        now=now,
    )
    return status.model_copy(update={"phase": "Degraded", "message": message[:4096], "conditions": conds})


def invalid_spec_status(
    previous: ModelDeploymentStatus, *, generation: int, message: str, now: datetime
) -> ModelDeploymentStatus:
    """Degraded with the parse error; what was serving keeps serving (children are untouched)."""
    status = degraded(previous, reason=C.INVALID_SPEC, message=message, generation=generation, now=now)
    conds = C.set_condition(
        status.conditions,
        type=C.PROGRESSING,
        status="False",
        reason=C.INVALID_SPEC,
        message="the spec cannot be acted on; fix it and re-apply",
        generation=generation,
        now=now,
    )
    return status.model_copy(update={"observed_generation": generation, "conditions": conds})


@dataclass(frozen=True)
class Serving:
    """What the status says about serving: the phase and the three conditions' inputs."""

    progress: Progress | None
    phase: Phase
    message: str
    ready_reason: str
    degraded: tuple[str, str, str]  # (status, reason, message) of the Degraded condition
    rolling: bool


def serving_view(
    md: ModelDeployment, decision: Decision, stable: dict[str, Any] | None, stable_changing: bool
) -> Serving:
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
    if phase != "Degraded" and (
        rolling or rejected_now or (rollout is not None and rollout.phase == "Baking")
    ):
        phase, message = rollout.phase, rollout.message
    if degraded_reason == C.DEPLOYMENT_FAILED:
        degraded = ("True", C.DEPLOYMENT_FAILED, message)
    elif rejected_now:
        degraded = ("True", C.ROLLED_BACK, f"{rollout.canary_version} rejected: {rollout.message}")
    else:
        degraded = ("False", C.AS_EXPECTED, "")
    return Serving(progress, phase, message, ready_reason, degraded, rolling)


def serving_conditions(
    view: Serving, previous: list[Condition], *, generation: int, now: datetime
) -> list[Condition]:
    """Ready, Progressing and Degraded, per the API conventions."""
    progress = view.progress
    ready = progress is not None and progress.complete and view.ready_reason != C.DEPLOYMENT_FAILED
    busy = view.phase in ("Pending", "Progressing", "Paused", "Promoting")
    progressing_reason = (
        (C.ROLLOUT_IN_PROGRESS if view.rolling else C.DEPLOYMENT_PROGRESSING) if busy else C.RECONCILED
    )
    wanted = [
        (C.READY, "True" if ready else "False", view.ready_reason, _stable_message(progress)),
        (C.PROGRESSING, "True" if busy else "False", progressing_reason, view.message if busy else ""),
        (C.DEGRADED, *view.degraded),
    ]
    conds = previous
    for type_, status, reason, message in wanted:
        conds = C.set_condition(
            conds, type=type_, status=status, reason=reason, message=message, generation=generation, now=now
        )
    return conds


def serving_status(
    md: ModelDeployment,
    previous: ModelDeploymentStatus,
    *,
    decision: Decision,
    stable: dict[str, Any] | None,
    stable_changing: bool,
    now: datetime,
) -> ModelDeploymentStatus:
    view = serving_view(md, decision, stable, stable_changing)
    progress, rollout = view.progress, decision.rollout
    # the first stable version is recorded once its pods are ready
    known_stable = previous.stable_version is not None or (progress is not None and progress.complete)
    return previous.model_copy(
        update={
            "observed_generation": md.generation,
            "phase": view.phase,
            "message": view.message,
            "conditions": serving_conditions(view, previous.conditions, generation=md.generation, now=now),
            **decision.status_fields(),
            "stable_version": decision.stable_version if known_stable else None,
            "stable_image": decision.stable_image if known_stable else None,
            "canary_version": rollout.canary_version if view.rolling else None,
            "canary_weight": rollout.observed_weight if view.rolling else 0,
            "replicas": progress.replicas if progress else 0,
            "ready_replicas": progress.ready if progress else 0,
            "selector": L.selector_string(L.selector(md.name)),
        }
    )


def _stable_message(progress: Progress | None) -> str:
    if progress is None:
        return "no stable pods yet"
    message = f"{progress.ready}/{progress.replicas} stable replicas ready"
    if not progress.complete and not progress.failed_message and progress.ready >= progress.replicas:
        # Ready is False until the stable Deployment has rolled to the spec (e.g. a promotion):
        # its old pods still serve; say so, or "False ... 2/2 ready" reads as a contradiction
        message += "; the stable Deployment is being updated (Ready once its new pods are)"
    return message


def with_batch_status(
    md: ModelDeployment,
    status: ModelDeploymentStatus,
    previous: ModelDeploymentStatus,
    *,
    cronjob: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    job_pods: dict[str, list[dict[str, Any]]],
    now: datetime,
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Adds the batch runs' status and the BatchReady condition; an event per newly failed run."""
    batch = batch_status(
        table=table_name(md), cronjob=cronjob, jobs=jobs, pods_by_job=job_pods, previous=previous.batch
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
            Event(
                "Warning" if failed else "Normal",
                C.BATCH_RUN_FAILED if failed else C.BATCH_RUN_SUCCEEDED,
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
            C.BATCH_PUBLISHED,
            f"serving predictions of run {batch.published_version} ({batch.rows} rows)",
        )
    else:
        cond = ("False", C.BATCH_NO_PUBLISHED_VERSION, "no batch run has published predictions yet")
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


def assemble(
    md: ModelDeployment,
    previous: ModelDeploymentStatus,
    *,
    decision: Decision,
    observed: Observed,
    children: list[str],
    stable_changing: bool,
    now: datetime,
    analysis_problem: str | None = None,
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """The status after one planned reconcile, and the events its changes deserve."""
    status = serving_status(
        md, previous, decision=decision, stable=observed["stable"], stable_changing=stable_changing, now=now
    )
    status = status.model_copy(update={"children": children})
    events: list[Event] = []
    if analysis_problem is not None:
        status, events = analysis_invalid(
            status, previous, analysis_problem, generation=md.generation, now=now
        )
    if md.spec.mode != "online":
        status, batch_events = with_batch_status(
            md,
            status,
            previous,
            cronjob=observed["cronjob"],
            jobs=list(observed.jobs),
            job_pods=observed.job_pods,
            now=now,
        )
        events += batch_events
    elif status.batch is not None or C.get_condition(status.conditions, C.BATCH_READY) is not None:
        # back to online: no batch runs to report on any more
        status = status.model_copy(
            update={"batch": None, "conditions": [c for c in status.conditions if c.type != C.BATCH_READY]}
        )
    if previous.phase != status.phase:
        kind = "Warning" if status.phase in WARNING_PHASES else "Normal"
        events.append(Event(kind, C.phase_reason(status.phase or ""), status.message or ""))
    return status, events


def analysis_invalid(
    status: ModelDeploymentStatus,
    previous: ModelDeploymentStatus,
    problem: str,
    *,
    generation: int,
    now: datetime,
) -> tuple[ModelDeploymentStatus, list[Event]]:
    """Degraded (AnalysisTemplateInvalid) naming what is wrong, and a Warning event when that
    changes; serving goes on, a rollout waits at its step (never a silent pass)."""
    message = f"analysis: {problem}"
    conds = C.set_condition(
        status.conditions,
        type=C.DEGRADED,
        status="True",
        reason=C.ANALYSIS_TEMPLATE_INVALID,
        message=message,
        generation=generation,
        now=now,
    )
    before = C.get_condition(previous.conditions, C.DEGRADED)
    fresh = before is None or (before.reason, before.message) != (C.ANALYSIS_TEMPLATE_INVALID, message)
    events = [Event("Warning", C.ANALYSIS_TEMPLATE_INVALID, message)] if fresh else []
    updated = status.model_copy(update={"phase": "Degraded", "message": message[:4096], "conditions": conds})
    return updated, events


def apply_failed_status(
    status: ModelDeploymentStatus, *, message: str, now: datetime
) -> ModelDeploymentStatus:
    """Degraded with the API server's answer; nothing crashes, the next reconcile tries again."""
    generation = status.observed_generation or 0
    return degraded(status, reason=C.APPLY_FAILED, message=message, generation=generation, now=now)
