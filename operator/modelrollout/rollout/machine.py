"""The rollout state machine (pure, injected clock).

Given the spec, the previous status, what the cluster shows (readiness, achieved weight) and
`now`, it decides the next rollout status, which model each track runs, the canary weight,
and the events. All state is in the status, so a restarted operator resumes exactly where it
was: a step is never repeated (its start time is stored) and the weight is re-derived from
the stored step, so traffic does not flap.

Analysis is asked for through a callback only when it is due, so the decision stays pure
given the callback's answers (tests script them; the operator queries Prometheus).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from modelrollout.api import conditions as R
from modelrollout.api.base import parse_duration
from modelrollout.api.events import Event
from modelrollout.api.serving import ModelRef
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import (
    AnalysisCounts,
    CheckResult,
    ModelDeploymentStatus,
    RolloutPhase,
    RolloutStatus,
)
from modelrollout.rollout import requests as Q
from modelrollout.rollout.decision import ACTIVE, Analyze, Cluster, Decision, Requests, identity
from modelrollout.rollout.steps import effective_steps
from modelrollout.rollout.timing import POLL_SECONDS, analysis_wait, elapsed, next_due, ts
from modelrollout.rollout.verdict import first_with, overall


class _Ctx:
    """Mutable scratch for one decision; turned into a Decision at the end."""

    def __init__(
        self, spec: ModelDeploymentSpec, status: ModelDeploymentStatus, requests: Requests, now: datetime
    ) -> None:
        self.spec, self.status, self.now = spec, status, now
        self.candidate = spec.model
        self.stable = ModelRef(
            name=spec.model.name,
            version=status.stable_version or spec.model.version,
            image=status.stable_image or spec.model.image,
            image_pull_policy=spec.model.image_pull_policy,
        )
        self.rollout = status.rollout
        self.rejected = status.rejected_version
        self.handled = status.handled_requests
        self.events: list[Event] = []
        self.pending = Q.pending(
            {"promote": requests.promote, "abort": requests.abort, "retry": requests.retry}, self.handled
        )
        self.flags = {"promoted": False, "rolled_back": False, "started": False}

    def answer(self, request: Q.Request, *, refused: str | None, accepted: str = "") -> bool:
        """Marks a request handled either way; a refusal is a Warning event saying why."""
        message = refused or accepted
        self.handled = Q.record(
            self.handled, request, accepted=refused is None, message=message, time=ts(self.now)
        )
        if refused is not None:
            self.event("Warning", R.REFUSED[request.kind], refused)
        return refused is None

    def refuse_leftovers(self) -> None:
        """Requests this decision did not act on are refused now, never kept for a later rollout."""
        r = self.rollout
        active = r.canary_version if r is not None and r.phase in ACTIVE else None
        for request in self.pending.values():
            why = Q.refusal(request, active_version=active, active_before=False, phase=r.phase if r else None)
            self.answer(request, refused=why or f"{request.kind} was not acted on")
        self.pending = {}

    def update(self, **changes: object) -> RolloutStatus:
        assert self.rollout is not None
        self.rollout = self.rollout.model_copy(update=changes)
        return self.rollout

    def event(self, type: str, reason: str, message: str) -> None:
        self.events.append(Event(type, reason, message))

    def decision(
        self,
        *,
        canary: ModelRef | None,
        weight: int,
        requeue: float | None = None,
        stable: ModelRef | None = None,
        size_weight: int | None = None,
    ) -> Decision:
        # `stable` overrides what the stable track runs (the candidate while promoting); the
        # reported stable version changes only when a promotion completes (self.stable).
        self.refuse_leftovers()
        return Decision(
            stable_model=stable or self.stable,
            canary_model=canary,
            weight=weight,
            rollout=self.rollout,
            stable_version=self.stable.version,
            stable_image=self.stable.image,
            rejected_version=self.rejected,
            handled=self.handled,
            events=self.events,
            requeue_after=requeue,
            size_weight=weight if size_weight is None else size_weight,
            **self.flags,
        )


def decide(
    spec: ModelDeploymentSpec,
    status: ModelDeploymentStatus,
    cluster: Cluster,
    *,
    requests: Requests,
    analyze: Analyze,
    now: datetime,
) -> Decision:
    ctx = _Ctx(spec, status, requests, now)
    if status.stable_version is None:
        # First deployment: nothing to compare against; the candidate is the stable track.
        return ctx.decision(canary=None, weight=0, stable=spec.model)
    _retry(ctx)
    candidate_id = identity(spec.model)
    if candidate_id == identity(ctx.stable):
        return _settle(ctx, superseded=True)
    if candidate_id == ctx.rejected:
        return _settle(ctx, superseded=False)
    r = ctx.rollout
    active_before = (
        r is not None
        and r.phase in ACTIVE
        and identity(ModelRef(name=spec.model.name, version=r.canary_version, image=r.canary_image))
        == candidate_id
    )
    if not active_before:
        if r is not None and r.phase in ACTIVE:
            ctx.event(
                "Normal",
                R.ROLLOUT_SUPERSEDED,
                f"rollout of {r.canary_version} superseded by {spec.model.version}; analysis restarts",
            )
        _start(ctx)
    if _take(ctx, "abort", active_before=active_before):
        return _rollback(ctx, phase="RolledBack", reason=R.ABORTED, message="rollout aborted by request")
    if _take(ctx, "promote", active_before=active_before):
        ctx.update(phase="Promoting", message="promotion requested: skipping the remaining steps")
        ctx.event("Normal", R.PROMOTE_REQUESTED, f"promoting {spec.model.version} by request")
    if ctx.rollout.phase == "Promoting":
        return _promote(ctx, cluster)
    return _progress(ctx, cluster, analyze)


def _retry(ctx: _Ctx) -> None:
    """A retry acts only when the spec names the version that was rolled back."""
    request = ctx.pending.pop("retry", None)
    if request is None:
        return
    candidate = identity(ctx.candidate)
    if ctx.rejected is None or ctx.rejected != candidate:
        why = f"nothing to retry: {ctx.candidate.version} was not rolled back"
    elif request.target is not None and request.target != ctx.candidate.version:
        why = f"retry was for {request.target}; the rolled-back version is {ctx.candidate.version}"
    else:
        why = None
    if ctx.answer(request, refused=why, accepted=f"retrying {candidate}"):
        ctx.rejected = None
        ctx.event("Normal", R.RETRY_REQUESTED, f"retrying {candidate}")


def _take(ctx: _Ctx, kind: str, *, active_before: bool) -> bool:
    """Whether a pending promote/abort acts on the rollout in progress (else it is refused)."""
    request = ctx.pending.pop(kind, None)
    if request is None:
        return False
    r = ctx.rollout
    why = Q.refusal(request, active_version=r.canary_version, active_before=active_before, phase=r.phase)
    if why is None and kind == "promote" and r.phase == "Promoting":
        why = f"{r.canary_version} is already being promoted"
    return ctx.answer(request, refused=why, accepted=f"{kind} of {r.canary_version}")


def _start(ctx: _Ctx) -> None:
    now = ts(ctx.now)
    ctx.rollout = RolloutStatus(
        phase="Progressing",
        canary_version=ctx.candidate.version,
        canary_image=ctx.candidate.image,
        from_version=ctx.stable.version,
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


def _settle(ctx: _Ctx, *, superseded: bool) -> Decision:
    """No rollout to run: the spec names the stable version, or the rejected one."""
    r = ctx.rollout
    if r is not None and r.phase in ACTIVE:
        if superseded:
            _rollback(
                ctx,
                phase="RolledBack",
                reason=R.SPEC_REVERTED,
                message=f"spec returned to stable {ctx.stable.version}; canary {r.canary_version} withdrawn",
            )
        r = ctx.rollout
    keep_canary = r is not None and r.scale_down_at is not None and elapsed(r.scale_down_at, ctx.now) < 0
    canary = (
        ModelRef(name=ctx.stable.name, version=r.canary_version, image=r.canary_image)
        if keep_canary
        else None
    )
    requeue = -elapsed(r.scale_down_at, ctx.now) if keep_canary else None
    return ctx.decision(canary=canary, weight=0, requeue=requeue)


def _rollback(ctx: _Ctx, *, phase: RolloutPhase, reason: str, message: str) -> Decision:
    """Traffic to stable at once; the canary stays (at weight 0) until scaleDownDelay."""
    delay = parse_duration(ctx.spec.rollout.scale_down_delay)
    r = ctx.update(
        phase=phase,
        desired_weight=0,
        message=message,
        finished_at=ts(ctx.now),
        scale_down_at=ts(ctx.now + timedelta(seconds=delay)),
    )
    ctx.rejected = f"{r.canary_version}@{r.canary_image}"
    ctx.flags["rolled_back"] = True
    ctx.event("Warning", reason, f"rolled back {r.canary_version} to {ctx.stable.version}: {message}")
    canary = (
        ModelRef(name=ctx.stable.name, version=r.canary_version, image=r.canary_image) if delay > 0 else None
    )
    return ctx.decision(canary=canary, weight=0, requeue=delay if delay > 0 else None)


def _promote(ctx: _Ctx, cluster: Cluster) -> Decision:
    """The stable track takes the candidate; once it is rolled out, the canary steps aside."""
    r = ctx.rollout
    if cluster.stable_ready and cluster.stable_version == ctx.candidate.version:
        delay = parse_duration(ctx.spec.rollout.scale_down_delay)
        ctx.update(
            phase="Succeeded",
            desired_weight=0,
            finished_at=ts(ctx.now),
            scale_down_at=ts(ctx.now + timedelta(seconds=delay)),
            message=f"{ctx.candidate.version} promoted to stable",
        )
        ctx.stable = ctx.candidate
        ctx.flags["promoted"] = True
        ctx.event("Normal", R.PROMOTED, f"{ctx.candidate.version} promoted (was {r.from_version})")
        return ctx.decision(
            canary=ctx.candidate if delay > 0 else None, weight=0, requeue=delay if delay > 0 else None
        )
    return ctx.decision(
        canary=ctx.candidate, weight=r.desired_weight, stable=ctx.candidate, requeue=POLL_SECONDS
    )


def _progress(ctx: _Ctx, cluster: Cluster, analyze: Analyze) -> Decision:
    spec, now = ctx.spec.rollout, ctx.now
    r = ctx.rollout
    steps = effective_steps(spec)
    deadline = parse_duration(spec.progress_deadline)
    if spec.paused:
        if r.phase != "Paused":
            ctx.update(phase="Paused", message=f"paused at step {r.step + 1}/{len(steps)}")
            ctx.event("Normal", R.PAUSED, ctx.rollout.message)
        # Held as it is: the traffic weight, and the canary pods sized for the step (they may
        # still be starting, at weight 0).
        return ctx.decision(canary=ctx.candidate, weight=r.desired_weight, size_weight=steps[r.step].weight)
    if r.phase == "Paused":
        # The pause does not count against the deadline, and the step's hold starts afresh.
        r = ctx.update(
            phase="Progressing",
            last_progress_at=ts(now),
            step_started_at=ts(now) if r.step_started_at else None,
            message="resumed",
        )
        ctx.event("Normal", R.RESUMED, f"rollout of {r.canary_version} resumed")
    if elapsed(r.last_progress_at or r.started_at, now) > deadline:
        return _rollback(
            ctx,
            phase="Failed",
            reason=R.PROGRESS_DEADLINE_EXCEEDED,
            message=f"no progress for {spec.progress_deadline} ({_waiting_on(r, cluster)})",
        )
    step = steps[r.step]
    if not cluster.canary_ready:
        ctx.update(
            desired_weight=0,
            observed_weight=cluster.observed_weight,
            message=f"waiting for the canary pods of {r.canary_version}",
        )
        return ctx.decision(canary=ctx.candidate, weight=0, size_weight=step.weight, requeue=POLL_SECONDS)
    # `weight_settled` describes the weight asked for last time; a new weight is not settled yet.
    settled = (
        cluster.weight_settled
        and r.desired_weight == step.weight
        and (cluster.observed_weight > 0 or step.weight == 0)
    )
    r = ctx.update(desired_weight=step.weight, observed_weight=cluster.observed_weight)
    if not settled:
        ctx.update(message=f"setting canary weight {step.weight}% (observed {cluster.observed_weight}%)")
        return ctx.decision(canary=ctx.candidate, weight=step.weight, requeue=POLL_SECONDS)
    if r.step_started_at is None:
        r = ctx.update(
            step_started_at=ts(now),
            last_progress_at=ts(now),
            step_passed=False,
            message=f"step {r.step + 1}/{len(steps)}: {cluster.observed_weight}% on the canary",
        )
        ctx.event("Normal", R.STEP_STARTED, ctx.rollout.message)
    analysis = spec.analysis
    if analysis is not None and analysis_wait(r, parse_duration(analysis.interval), now) <= 0:
        outcome = _judge(ctx, analyze())
        if outcome is not None:
            return outcome
        r = ctx.rollout
    held = elapsed(r.step_started_at, now)
    if held >= step.pause_seconds and (analysis is None or r.step_passed):
        return _next_step(ctx, steps)
    return ctx.decision(
        canary=ctx.candidate, weight=step.weight, requeue=next_due(r, step.pause_seconds, spec, now)
    )


def _judge(ctx: _Ctx, results: list[CheckResult]) -> Decision | None:
    analysis = ctx.spec.rollout.analysis
    r = ctx.rollout
    counts = r.counts
    verdict = overall(results)
    now = ts(ctx.now)
    if verdict == "pass":
        counts = counts.model_copy(update={"passes": counts.passes + 1, "consecutive_failures": 0})
        ctx.update(
            counts=counts, checks=results, last_analysis_at=now, step_passed=True, last_progress_at=now
        )
        return None
    if verdict == "fail":
        counts = counts.model_copy(
            update={"failures": counts.failures + 1, "consecutive_failures": counts.consecutive_failures + 1}
        )
        ctx.update(counts=counts, checks=results, last_analysis_at=now)
        failing = first_with(results, "fail")
        limit = analysis.consecutive_failure_limit
        if counts.failures > analysis.failure_limit or (
            limit is not None and counts.consecutive_failures >= limit
        ):
            return _rollback(
                ctx,
                phase="RolledBack",
                reason=R.ANALYSIS_FAILED,
                message=f"check {failing.metric} failed: {failing.message} (query: {failing.query})",
            )
        ctx.event("Warning", R.CHECK_FAILED, failing.message)
        return None
    if verdict == "error":
        counts = counts.model_copy(update={"errors": counts.errors + 1})
        ctx.update(counts=counts, checks=results, last_analysis_at=now)
        erring = first_with(results, "error")
        if counts.errors > analysis.error_limit:
            return _rollback(
                ctx,
                phase="Failed",
                reason=R.ANALYSIS_ERRORS,
                message=f"{counts.errors} analysis errors (limit {analysis.error_limit}); "
                f"last: {erring.metric}: {erring.message}",
            )
        ctx.event("Warning", R.CHECK_ERROR, f"{erring.metric}: {erring.message}")
        return None
    counts = counts.model_copy(update={"inconclusives": counts.inconclusives + 1})
    ctx.update(counts=counts, checks=results, last_analysis_at=now)
    waiting = first_with(results, "inconclusive")
    ctx.update(message=f"inconclusive: {waiting.metric}: {waiting.message}")
    return None


def _next_step(ctx: _Ctx, steps: list) -> Decision:
    r = ctx.rollout
    nxt = r.step + 1
    if nxt >= len(steps):
        ctx.update(
            phase="Promoting",
            message=f"all {len(steps)} steps passed; promoting {r.canary_version}",
            last_progress_at=ts(ctx.now),
        )
        ctx.event("Normal", R.PROMOTING, ctx.rollout.message)
        return ctx.decision(
            canary=ctx.candidate, weight=r.desired_weight, stable=ctx.candidate, requeue=POLL_SECONDS
        )
    ctx.update(
        step=nxt,
        step_started_at=None,
        step_passed=False,
        last_progress_at=ts(ctx.now),
        desired_weight=steps[nxt].weight,
        message=f"step {r.step + 1} passed; moving to {steps[nxt].weight}%",
    )
    return ctx.decision(canary=ctx.candidate, weight=steps[nxt].weight, requeue=0.0)


def _waiting_on(r: RolloutStatus, cluster: Cluster) -> str:
    if not cluster.canary_ready:
        return "canary pods not ready"
    if not cluster.weight_settled:
        return "weight not realised"
    return r.message or "analysis inconclusive"
