"""The rollout state machine (pure, injected clock).

Given the spec, the previous status, what the cluster shows (readiness, achieved weight) and
`now`, it decides the next rollout status, which model each track runs, the canary weight,
and the events. All state is in the status, so a restarted operator resumes exactly where it
was: a step is never repeated (its start time is stored) and the weight is re-derived from
the stored step, so traffic does not flap.

Analysis is asked for through a callback only when it is due, so the decision stays pure
given the callback's answers (tests script them; the operator queries Prometheus).

Two rules keep a canary from being promoted on stale, missing or impossible evidence:
- current evidence: a step moves on (the last one promotes) only when its pause is over and
  the latest analysis of the step (`step_verdict`, reset when a step starts or resumes) is a
  pass; see `judge` for what each verdict does;
- the deadline bounds stalls, not holds: `stalled_since` opens when the rollout waits on pods
  or the weight, or its evidence is not a pass, and closes when it holds on purpose again (the
  first interval of a step, a pause with passing evidence); `paused` stops the clock.
"""

from __future__ import annotations

from dataclasses import replace
from datetime import datetime, timedelta

from modelrollout.api import conditions as R
from modelrollout.api.base import parse_duration
from modelrollout.api.serving import ModelRef
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import AnalysisCounts, ModelDeploymentStatus, RolloutStatus
from modelrollout.rollout import bake
from modelrollout.rollout import requests as Q
from modelrollout.rollout.cadence import next_due
from modelrollout.rollout.context import Ctx, leftover_canary, rollback
from modelrollout.rollout.decision import ACTIVE, Analyze, Cluster, Decision, Requests, identity
from modelrollout.rollout.judge import analyse
from modelrollout.rollout.steps import Step, effective_steps
from modelrollout.rollout.timing import POLL_SECONDS, elapsed, ts

__all__ = ["ACTIVE", "Cluster", "Decision", "Requests", "decide"]


def decide(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    cluster: Cluster,
    *,
    requests: Requests,
    analyze: Analyze,
    now: datetime,
    analyze_bake: Analyze = lambda: [],
    analysis_blocked: str | None = None,
) -> Decision:
    """The next rollout state. `analyze` runs the canary analysis, `analyze_bake` the bake's
    checks against the promoted version; each is called only when its analysis is due.
    `analysis_blocked`: why the analysis cannot run (a bad template reference); the rollout
    then waits at its step, outside the deadline (see `_blocked`)."""
    ctx = Ctx(spec, status, requests, now)
    ctx.blocked = analysis_blocked
    if status.stable_version is None:
        # First deployment: nothing to compare against; the candidate is the stable track.
        return ctx.decision(canary=None, weight=0, stable=spec.model)
    _retry(ctx)
    candidate_id = identity(spec.model)
    if ctx.rollout is not None and ctx.rollout.phase == "Baking":
        if candidate_id == identity(ctx.stable):
            return bake.step(ctx, analyze_bake)
        bake.supersede(ctx)
    if candidate_id == identity(ctx.stable):
        return _settle(ctx, superseded=True)
    if candidate_id == ctx.rejected:
        return _settle(ctx, superseded=False)
    r = ctx.rollout
    active_before = _rolling(r, candidate_id, spec.model.name)
    if not active_before:
        if r is not None and r.phase in ACTIVE:
            ctx.event(
                "Normal",
                R.ROLLOUT_SUPERSEDED,
                f"rollout of {r.canary_version} superseded by {spec.model.version}; analysis restarts",
            )
        _start(ctx)
    if _take(ctx, "abort", active_before=active_before):
        return rollback(ctx, phase="RolledBack", reason=R.ABORTED, message="rollout aborted by request")
    promote = _take(ctx, "promote", active_before=active_before)
    if promote is not None and not promote.full:
        return _promote_step(ctx)
    if promote is not None:
        ctx.update(phase="Promoting", message="promotion requested: skipping the remaining steps")
        ctx.event("Normal", R.PROMOTE_REQUESTED, f"promoting {spec.model.version} by request")
    if ctx.rollout.phase == "Promoting":
        return _promote(ctx, cluster)
    return _progress(ctx, cluster, analyze)


def _rolling(r: RolloutStatus | None, candidate_id: str, model_name: str) -> bool:
    """A rollout of this candidate is in progress."""
    if r is None or r.phase not in ACTIVE:
        return False
    return identity(ModelRef(name=model_name, version=r.canary_version, image=r.canary_image)) == candidate_id


def _retry(ctx: Ctx) -> None:
    """A retry acts when the spec names the version that was rolled back, or continues a rollout
    of it that onInconclusive: pause holds; otherwise it is refused."""
    request = ctx.pending.pop("retry", None)
    if request is None:
        return
    candidate = identity(ctx.candidate)
    r = ctx.rollout
    held = _rolling(r, candidate, ctx.candidate.name) and r.analysis_hold
    if ctx.rejected != candidate and not held:
        why = f"nothing to retry: {ctx.candidate.version} was not rolled back"
    elif request.target is not None and request.target != ctx.candidate.version:
        why = f"retry was for {request.target}; the version to retry is {ctx.candidate.version}"
    else:
        why = None
    if ctx.answer(request, refused=why, accepted=f"retrying {candidate}"):
        ctx.rejected = None if ctx.rejected == candidate else ctx.rejected
        ctx.retried = True  # also continues a rollout held by onInconclusive: pause
        ctx.event("Normal", R.RETRY_REQUESTED, f"retrying {candidate}")


def _take(ctx: Ctx, kind: str, *, active_before: bool) -> Q.Request | None:
    """The pending promote/abort if it acts on the rollout in progress (else it is refused)."""
    request = ctx.pending.pop(kind, None)
    if request is None:
        return None
    r = ctx.rollout
    why = Q.refusal(
        request, active_version=r.canary_version, active_before=active_before, phase=r.phase, step=r.step
    )
    if why is None and kind == "promote" and r.phase == "Promoting":
        why = f"{r.canary_version} is already being promoted"
    what = f"{kind} of {r.canary_version}" + (
        ", every remaining step skipped (full)" if request.full else f" from step {r.step + 1}"
    )
    return request if ctx.answer(request, refused=why, accepted=what) else None


def _promote_step(ctx: Ctx) -> Decision:
    """Promote one step (Argo's plain `promote`): the step's remaining pause and analysis are
    skipped and the next step starts (the last step promotes). A hold by onInconclusive: pause
    ends with it; `paused: true` keeps holding, at the next step."""
    r = ctx.rollout
    if r.phase == "Paused" and not ctx.spec.rollout.paused:
        ctx.update(phase="Progressing", analysis_hold=False)
    ctx.event(
        "Normal", R.PROMOTE_REQUESTED, f"promoting {r.canary_version} one step (from step {r.step + 1})"
    )
    return _next_step(ctx, effective_steps(ctx.spec.rollout), how="promoted by request")


def _start(ctx: Ctx) -> None:
    now = ts(ctx.now)
    ctx.rollout = RolloutStatus(
        phase="Progressing",
        canary_version=ctx.candidate.version,
        canary_image=ctx.candidate.image,
        from_version=ctx.stable.version,
        from_image=ctx.stable.image,
        step=0,
        started_at=now,
        last_progress_at=now,
        counts=AnalysisCounts(),
        checks=[],
        message=f"starting canary {ctx.candidate.version}",
    )
    ctx.flags["started"] = True
    ctx.event(
        "Normal",
        R.ROLLOUT_STARTED,
        f"canary rollout of {ctx.candidate.version} (stable {ctx.stable.version}) started",
    )


def _settle(ctx: Ctx, *, superseded: bool) -> Decision:
    """No rollout to run: the spec names the stable version, or the rejected one."""
    r = ctx.rollout
    if r is not None and r.phase in ACTIVE:
        if superseded:
            rollback(
                ctx,
                phase="RolledBack",
                reason=R.SPEC_REVERTED,
                message=f"spec returned to stable {ctx.stable.version}; canary {r.canary_version} withdrawn",
            )
        r = ctx.rollout
    canary, requeue = leftover_canary(ctx)
    return ctx.decision(canary=canary, weight=0, requeue=requeue)


def _promote(ctx: Ctx, cluster: Cluster) -> Decision:
    """The stable track takes the candidate; once it is rolled out, the canary steps aside."""
    r = ctx.rollout
    if cluster.stable_ready and cluster.stable_version == ctx.candidate.version:
        delay = parse_duration(ctx.spec.rollout.scale_down_delay)
        ctx.update(
            phase="Succeeded",
            desired_weight=0,
            observed_weight=0,  # a finished rollout sends the canary nothing
            finished_at=ts(ctx.now),
            scale_down_at=ts(ctx.now + timedelta(seconds=delay)),
            message=f"{ctx.candidate.version} promoted to stable",
        )
        ctx.stable = ctx.candidate
        ctx.flags["promoted"] = True
        ctx.event("Normal", R.PROMOTED, f"{ctx.candidate.version} promoted (was {r.from_version})")
        if ctx.spec.rollout.bake is not None:
            bake.start(ctx)
        return ctx.decision(
            canary=ctx.candidate if delay > 0 else None, weight=0, requeue=delay if delay > 0 else None
        )
    return ctx.decision(
        canary=ctx.candidate, weight=r.desired_weight, stable=ctx.candidate, requeue=POLL_SECONDS
    )


def _progress(ctx: Ctx, cluster: Cluster, analyze: Analyze) -> Decision:
    spec, now = ctx.spec.rollout, ctx.now
    steps = effective_steps(spec)
    held = _pause_or_resume(ctx, steps) or _blocked(ctx, steps)
    if held is not None:
        return held
    r = ctx.rollout
    if r.stalled_since is not None and elapsed(r.stalled_since, now) > parse_duration(spec.progress_deadline):
        return rollback(
            ctx,
            phase="Failed",
            reason=R.PROGRESS_DEADLINE_EXCEEDED,
            message=f"no progress for {spec.progress_deadline} ({_waiting_on(r, cluster)})",
        )
    step = steps[r.step]
    settled = _settled(r, cluster, step)
    _track_stall(ctx, holding=settled and _evidence_holds(r, spec.analysis is not None))
    if not cluster.canary_ready:
        ctx.update(
            desired_weight=0,
            observed_weight=cluster.observed_weight,
            message=f"waiting for the canary pods of {r.canary_version}",
        )
        return ctx.decision(canary=ctx.candidate, weight=0, size_weight=step.weight, requeue=POLL_SECONDS)
    r = ctx.update(desired_weight=step.weight, observed_weight=cluster.observed_weight)
    if not settled:
        ctx.update(message=f"setting canary weight {step.weight}% (observed {cluster.observed_weight}%)")
        return ctx.decision(canary=ctx.candidate, weight=step.weight, requeue=POLL_SECONDS)
    if r.step_started_at is None:
        r = ctx.update(
            step_started_at=ts(now),
            last_progress_at=ts(now),
            stalled_since=None,
            step_verdict=None,
            message=f"step {r.step + 1}/{len(steps)}: {cluster.observed_weight}% on the canary",
        )
        ctx.event("Normal", R.STEP_STARTED, ctx.rollout.message)
    analysis = spec.analysis
    if analysis is not None:
        outcome = analyse(ctx, analyze)
        if outcome is not None:
            return outcome
        r = ctx.rollout
    if elapsed(r.step_started_at, now) >= step.pause_seconds and (
        analysis is None or r.step_verdict == "pass"
    ):
        return _next_step(ctx, steps)
    return ctx.decision(
        canary=ctx.candidate, weight=step.weight, requeue=next_due(r, step.pause_seconds, spec.analysis, now)
    )


def _settled(r: RolloutStatus, cluster: Cluster, step: Step) -> bool:
    """The step's weight is live on ready canary pods (as well as the router can realise it).

    `weight_settled` describes the weight asked for last time; a new weight is not settled yet."""
    return (
        cluster.canary_ready
        and cluster.weight_settled
        and r.desired_weight == step.weight
        and (cluster.observed_weight > 0 or step.weight == 0)
    )


def _evidence_holds(r: RolloutStatus, analysed: bool) -> bool:
    """The step is holding on purpose: its clock runs and its evidence is not bad. Before the
    first analysis of a step (one interval of data) and while the latest analysis passed, time
    is a deliberate hold; after an inconclusive, error or failed analysis it is a stall."""
    return r.step_started_at is not None and (not analysed or r.step_verdict in (None, "pass"))


def _track_stall(ctx: Ctx, *, holding: bool) -> None:
    """Open a stall when the rollout stops holding on purpose; close it when it holds again.

    Only the transitions are written (not every tick), so a hold does not rewrite the status."""
    r = ctx.rollout
    if holding and r.stalled_since is not None:
        ctx.update(stalled_since=None)
    elif not holding and r.stalled_since is None:
        ctx.update(stalled_since=ts(ctx.now))


def _pause_or_resume(ctx: Ctx, steps: list[Step]) -> Decision | None:
    """`paused: true`, or a hold by onInconclusive: pause, keeps the rollout as it is (weight,
    and the canary pods sized for the step) outside the deadline; None when it progresses."""
    r = ctx.rollout
    if ctx.spec.rollout.paused:
        if r.phase != "Paused":
            ctx.update(phase="Paused", message=f"paused at step {r.step + 1}/{len(steps)}")
            ctx.event("Normal", R.PAUSED, ctx.rollout.message)
        elif r.analysis_hold:
            ctx.update(analysis_hold=False)  # a person holds it now: resuming resumes it
        return _hold(ctx, steps)
    if r.phase != "Paused":
        return None
    if r.analysis_hold and not ctx.retried:
        return _hold(ctx, steps)
    # The pause does not count against the deadline, the step's hold starts afresh, and the
    # evidence from before the pause is not current: the step waits for a new analysis.
    r = ctx.update(
        phase="Progressing",
        last_progress_at=ts(ctx.now),
        stalled_since=None,
        step_started_at=ts(ctx.now) if r.step_started_at else None,
        step_verdict=None,
        analysis_hold=False,
        message="resumed",
    )
    ctx.event("Normal", R.RESUMED, f"rollout of {r.canary_version} resumed")
    return None


def _blocked(ctx: Ctx, steps: list[Step]) -> Decision | None:
    """While the analysis cannot be resolved the rollout holds as it is, outside the deadline
    (as a pause: the fix may take a person). Once it can, the step's hold starts afresh, since
    the evidence from before may have come from other checks. None: not blocked (any more)."""
    r = ctx.rollout
    if ctx.blocked is not None:
        if r.analysis_blocked != ctx.blocked:
            ctx.update(analysis_blocked=ctx.blocked, message=f"waiting for a valid analysis: {ctx.blocked}")
        return replace(
            _hold(ctx, steps), requeue_after=POLL_SECONDS
        )  # look for the fix as often as a rollout polls
    if r.analysis_blocked is not None:
        ctx.update(
            analysis_blocked=None,
            last_progress_at=ts(ctx.now),
            stalled_since=None,
            step_started_at=ts(ctx.now) if r.step_started_at else None,
            step_verdict=None,
            message="the analysis is valid again; the step starts afresh",
        )
    return None


def _hold(ctx: Ctx, steps: list[Step]) -> Decision:
    """Everything as it is: the weight, and the canary pods sized for the step (they may still
    be starting, at weight 0)."""
    r = ctx.rollout
    return ctx.decision(canary=ctx.candidate, weight=r.desired_weight, size_weight=steps[r.step].weight)


def _next_step(ctx: Ctx, steps: list[Step], *, how: str = "passed") -> Decision:
    """The next step, or the promotion after the last; `how` the step ended (for the message)."""
    r = ctx.rollout
    nxt = r.step + 1
    if nxt >= len(steps):
        ended = f"all {len(steps)} steps passed" if how == "passed" else f"step {r.step + 1} {how}"
        ctx.update(
            phase="Promoting",
            message=f"{ended}; promoting {r.canary_version}",
            last_progress_at=ts(ctx.now),
            stalled_since=None,
        )
        ctx.event("Normal", R.PROMOTING, ctx.rollout.message)
        return ctx.decision(
            canary=ctx.candidate, weight=r.desired_weight, stable=ctx.candidate, requeue=POLL_SECONDS
        )
    ctx.update(
        step=nxt,
        step_started_at=None,
        step_verdict=None,
        last_progress_at=ts(ctx.now),
        stalled_since=ts(ctx.now),  # until the new weight is live on ready pods
        desired_weight=steps[nxt].weight,
        message=f"step {r.step + 1} {how}; moving to {steps[nxt].weight}%",
    )
    return ctx.decision(canary=ctx.candidate, weight=steps[nxt].weight, requeue=0.0)


def _waiting_on(r: RolloutStatus, cluster: Cluster) -> str:
    if not cluster.canary_ready:
        return "canary pods not ready"
    if not cluster.weight_settled:
        return "weight not realised"
    return r.message or "analysis inconclusive"
