"""The scratch state of one rollout decision, and the one action every bad outcome shares:
roll back (pure; used by the machine and by the analysis judge)."""

from __future__ import annotations

from datetime import datetime, timedelta

from modelrollout.api import conditions as R
from modelrollout.api.base import parse_duration
from modelrollout.api.events import Event
from modelrollout.api.serving import ModelRef
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import ModelDeploymentStatus, RolloutPhase, RolloutStatus
from modelrollout.rollout import requests as Q
from modelrollout.rollout.decision import ACTIVE, Decision, Requests
from modelrollout.rollout.timing import elapsed, ts


class Ctx:
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
        self.retried = False  # a retry was accepted with this decision
        self.blocked: str | None = None  # why the analysis cannot run now (the rollout waits)
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


def leftover_canary(ctx: Ctx) -> tuple[ModelRef | None, float | None]:
    """The canary of a finished rollout, kept (at weight 0) until its scale-down time, and the
    seconds until then; (None, None) once it is due to go."""
    r = ctx.rollout
    if r is None or r.scale_down_at is None or elapsed(r.scale_down_at, ctx.now) >= 0:
        return None, None
    return ModelRef(name=ctx.stable.name, version=r.canary_version, image=r.canary_image), -elapsed(
        r.scale_down_at, ctx.now
    )


def rollback(ctx: Ctx, *, phase: RolloutPhase, reason: str, message: str) -> Decision:
    """Traffic to stable at once; the canary stays (at weight 0) until scaleDownDelay."""
    delay = parse_duration(ctx.spec.rollout.scale_down_delay)
    r = ctx.update(
        phase=phase,
        desired_weight=0,
        observed_weight=0,  # a finished rollout sends the canary nothing
        message=message,
        finished_at=ts(ctx.now),
        scale_down_at=ts(ctx.now + timedelta(seconds=delay)),
        analysis_hold=False,
    )
    ctx.rejected = f"{r.canary_version}@{r.canary_image}"
    ctx.flags["rolled_back"] = True
    ctx.event("Warning", reason, f"rolled back {r.canary_version} to {ctx.stable.version}: {message}")
    canary = (
        ModelRef(name=ctx.stable.name, version=r.canary_version, image=r.canary_image) if delay > 0 else None
    )
    return ctx.decision(canary=canary, weight=0, requeue=delay if delay > 0 else None)
