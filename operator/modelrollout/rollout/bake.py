"""The bake after a promotion (pure): most labels arrive after a canary is promoted, so the new
stable version keeps being judged against the requirements (`spec.rollout.bake`) for a while.

- Starts when a promotion completes (phase Baking, `status.rollout.bake`), with the previous
  version (`fromVersion`, `fromImage`) recorded: it is what comes back.
- Every `bake.interval` the bake checks run against the promoted version. More failures than
  `bake.failureLimit` roll back at once: the stable track returns to the previous version, the
  promoted one is rejected (not retried until the spec changes or a retry), phase RolledBack,
  the Degraded condition and a Warning event, as for a canary failure.
- Inconclusive analyses (too few labels yet) and provider errors wait; neither rolls back.
- At `bake.until` the bake ends: Succeeded, with a Warning event if its latest analysis was not
  a pass (the labels did not decide; nothing is rolled back without evidence).
- Requests: abort rolls back now; promote ends the bake now (the version is accepted), as does
  removing `spec.rollout.bake`.
"""

from __future__ import annotations

from datetime import timedelta

from modelrollout.api import conditions as R
from modelrollout.api.base import parse_duration
from modelrollout.api.serving import ModelRef
from modelrollout.api.status import BakeStatus, CheckResult
from modelrollout.rollout import requests as Q
from modelrollout.rollout.context import Ctx, leftover_canary
from modelrollout.rollout.decision import Analyze, Decision, identity
from modelrollout.rollout.timing import POLL_SECONDS, elapsed, ts
from modelrollout.rollout.verdict import first_with, overall


def start(ctx: Ctx) -> None:
    """The promotion just completed: bake it (the caller has made the candidate stable)."""
    bake = ctx.spec.rollout.bake
    assert bake is not None
    until = ctx.now + timedelta(seconds=parse_duration(bake.duration))
    r = ctx.update(
        phase="Baking",
        bake=BakeStatus(started_at=ts(ctx.now), until=ts(until)),
        message=f"{ctx.candidate.version} promoted; baking until {ts(until)}",
    )
    ctx.event(
        "Normal", R.BAKE_STARTED, f"baking {r.canary_version} for {bake.duration} (previous {r.from_version})"
    )


def step(ctx: Ctx, analyze: Analyze) -> Decision:
    """One reconcile of a bake in progress."""
    request = _requested(ctx)
    if request == "abort":
        return roll_back(ctx, reason=R.ABORTED, message="bake aborted by request")
    if request == "promote":
        return _finish(ctx, verdict_note="bake ended by request")
    bake, b = ctx.spec.rollout.bake, ctx.rollout.bake
    if bake is None:  # the spec stopped asking for a bake: it ends; nothing rolls back without evidence
        return _finish(ctx, verdict_note="bake removed from the spec")
    assert b is not None  # set when the bake started
    interval = parse_duration(bake.interval)
    since = elapsed(b.last_analysis_at or b.started_at, ctx.now)
    if since >= interval:
        outcome = _judge(ctx, analyze())
        if outcome is not None:
            return outcome
        b, since = ctx.rollout.bake, 0.0
    left = -elapsed(b.until, ctx.now)
    if left <= 0:
        return _finish(ctx, verdict_note=None)
    canary, scale_down = leftover_canary(ctx)
    waits = [w for w in (interval - since, left, scale_down) if w is not None and w > 0]
    return ctx.decision(canary=canary, weight=0, requeue=min(waits) if waits else POLL_SECONDS)


def supersede(ctx: Ctx) -> None:
    """The spec named a new version during the bake: the bake ends; the baked version stays
    stable and the new rollout starts from it."""
    r = ctx.update(phase="Succeeded", finished_at=ts(ctx.now), message="bake superseded by a new version")
    ctx.event(
        "Normal", R.BAKE_SUPERSEDED, f"bake of {r.canary_version} ended: {ctx.candidate.version} follows"
    )


def roll_back(ctx: Ctx, *, reason: str, message: str) -> Decision:
    """The stable track returns to the previous version; the baked one is rejected."""
    r = ctx.rollout
    baked = ctx.stable
    previous = ModelRef(
        name=baked.name,
        version=r.from_version or baked.version,
        image=r.from_image or baked.image,
        image_pull_policy=baked.image_pull_policy,
    )
    ctx.update(
        phase="RolledBack", message=message, finished_at=ts(ctx.now), desired_weight=0, observed_weight=0
    )
    ctx.rejected = identity(baked)
    ctx.stable = previous
    ctx.flags["rolled_back"] = True
    ctx.event("Warning", reason, f"rolled back {baked.version} to {previous.version}: {message}")
    return ctx.decision(canary=None, weight=0)


def _requested(ctx: Ctx) -> str | None:
    """abort or promote, when one arrived for this bake (others are refused by the context)."""
    r = ctx.rollout
    for kind in ("abort", "promote"):
        request = ctx.pending.pop(kind, None)
        if request is None:
            continue
        why = Q.refusal(request, active_version=r.canary_version, active_before=True, phase=r.phase)
        if ctx.answer(request, refused=why, accepted=f"{kind} of the bake of {r.canary_version}"):
            return kind
    return None


def _judge(ctx: Ctx, results: list[CheckResult]) -> Decision | None:
    bake, b = ctx.spec.rollout.bake, ctx.rollout.bake
    verdict = overall(results)
    counts = b.counts.model_copy(
        update={
            "passes": b.counts.passes + (verdict == "pass"),
            "failures": b.counts.failures + (verdict == "fail"),
            "errors": b.counts.errors + (verdict == "error"),
            "inconclusives": b.counts.inconclusives + (verdict == "inconclusive"),
        }
    )
    b = b.model_copy(
        update={"last_analysis_at": ts(ctx.now), "verdict": verdict, "counts": counts, "checks": results}
    )
    ctx.update(bake=b)
    if verdict == "fail":
        failing = first_with(results, "fail")
        if counts.failures > bake.failure_limit:
            return roll_back(
                ctx,
                reason=R.BAKE_FAILED,
                message=f"bake check {failing.metric} failed: {failing.message} (query: {failing.query})",
            )
        ctx.event("Warning", R.CHECK_FAILED, f"bake: {failing.message}")
    elif verdict != "pass":
        waiting = first_with(results, verdict)
        ctx.update(message=f"baking: {verdict}: {waiting.metric}: {waiting.message}" if waiting else "baking")
    return None


def _finish(ctx: Ctx, *, verdict_note: str | None) -> Decision:
    b = ctx.rollout.bake
    r = ctx.update(
        phase="Succeeded", finished_at=ts(ctx.now), message=verdict_note or f"baked until {b.until}"
    )
    if verdict_note is None and b.verdict != "pass":
        ctx.event(
            "Warning",
            R.BAKE_INCONCLUSIVE,
            f"bake of {r.canary_version} ended without a passing analysis (latest: {b.verdict or 'none'}); "
            "it stays: nothing is rolled back without evidence",
        )
    else:
        ctx.event("Normal", R.BAKED, f"{r.canary_version} baked: {ctx.rollout.message}")
    canary, scale_down = leftover_canary(ctx)
    return ctx.decision(canary=canary, weight=0, requeue=scale_down)
