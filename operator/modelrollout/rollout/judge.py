"""What one analysis run does to a rollout: counts, limits and the inconclusive policy (pure).

The run's verdict becomes the step's verdict (`step_verdict`): the step moves on only while
it is `pass`, so evidence is always current; one early pass never carries a step whose later
analyses are inconclusive, erring or failing. Anything but a pass starts (or continues) a
stall, which `progressDeadline` bounds.

Counters and how they relate to Argo Rollouts' assessMetricStatus (analysis/analysis.go):
- failures > failureLimit rolls back (as Argo's failureLimit);
- consecutive_failures >= consecutiveFailureLimit rolls back; only a pass ends the streak
  (Argo has no such limit; ours keeps inconclusive/error from hiding a failing canary);
- errors > errorLimit fails: a total over the rollout that never resets (stricter than Argo);
- consecutive_errors > consecutiveErrorLimit fails; any non-error run ends the streak (as Argo);
- inconclusive: onInconclusive decides (wait, bounded by the deadline; rollback; pause). Argo
  instead stops the run as Inconclusive past inconclusiveLimit (default 0), which pauses.
"""

from __future__ import annotations

from collections.abc import Callable

from modelrollout.api import conditions as R
from modelrollout.api.status import CheckResult, Verdict
from modelrollout.rollout.cadence import due, merge, run_verdict
from modelrollout.rollout.context import Ctx, rollback
from modelrollout.rollout.decision import Analyze, Decision
from modelrollout.rollout.timing import ts
from modelrollout.rollout.verdict import describe, first_with, overall


def analyse(ctx: Ctx, analyze: Analyze) -> Decision | None:
    """Evaluate the checks that are due (see cadence.py) and judge the run; a Decision when it
    ends (or pauses) the rollout, else None. Results are stamped with the decision's clock."""
    analysis = ctx.spec.rollout.analysis
    names = due(analysis, ctx.rollout, ctx.now)
    if not names:
        return None
    stamp = ts(ctx.now)
    if len(names) == len(analysis.metrics):  # every check: the run is judged on its own
        return judge(ctx, [c.model_copy(update={"time": stamp}) for c in analyze()])
    fresh = [c.model_copy(update={"time": stamp}) for c in analyze(only=frozenset(names))]
    merged = merge(analysis, ctx.rollout.checks, fresh)
    verdict = run_verdict(analysis, ctx.rollout, fresh, merged)
    if verdict is None:  # no news: recorded, not counted, the step's verdict stays
        ctx.update(checks=merged, last_analysis_at=stamp)
        return None
    return judge(ctx, merged, verdict=verdict, evaluated=fresh)


def judge(
    ctx: Ctx,
    results: list[CheckResult],
    *,
    verdict: Verdict | None = None,
    evaluated: list[CheckResult] | None = None,
) -> Decision | None:
    """Record one analysis run (`results`: the latest of every check; `evaluated`: what this run
    measured, default all of them); a Decision when it ends (or pauses) the rollout, else None."""
    verdict = verdict or overall(results)
    now = ts(ctx.now)
    stalled = ctx.rollout.stalled_since or now
    ctx.update(
        checks=results,
        last_analysis_at=now,
        step_verdict=verdict,
        stalled_since=None if verdict == "pass" else stalled,
    )
    return _HANDLERS[verdict](ctx, results if evaluated is None else evaluated)


def _passed(ctx: Ctx, results: list[CheckResult]) -> Decision | None:
    c = ctx.rollout.counts
    counts = c.model_copy(update={"passes": c.passes + 1, "consecutive_failures": 0, "consecutive_errors": 0})
    ctx.update(counts=counts, last_progress_at=ts(ctx.now))
    return None


def _failed(ctx: Ctx, results: list[CheckResult]) -> Decision | None:
    analysis = ctx.spec.rollout.analysis
    c = ctx.rollout.counts
    counts = c.model_copy(
        update={
            "failures": c.failures + 1,
            "consecutive_failures": c.consecutive_failures + 1,
            "consecutive_errors": 0,
        }
    )
    ctx.update(counts=counts)
    failing = first_with(results, "fail")
    limit = analysis.consecutive_failure_limit
    if counts.failures > analysis.failure_limit or (
        limit is not None and counts.consecutive_failures >= limit
    ):
        return rollback(
            ctx,
            phase="RolledBack",
            reason=R.ANALYSIS_FAILED,
            message=f"check {failing.metric} failed: {failing.message} (query: {failing.query})",
        )
    ctx.update(message=f"failed (tolerated; the step waits for a pass): {describe(results, 'fail')}")
    ctx.event("Warning", R.CHECK_FAILED, failing.message)
    return None


def _errored(ctx: Ctx, results: list[CheckResult]) -> Decision | None:
    analysis = ctx.spec.rollout.analysis
    c = ctx.rollout.counts
    counts = c.model_copy(update={"errors": c.errors + 1, "consecutive_errors": c.consecutive_errors + 1})
    ctx.update(counts=counts, message=f"analysis error: {describe(results, 'error')}")
    last = describe(results, "error")
    streak = analysis.consecutive_error_limit
    if counts.errors > analysis.error_limit:
        message = f"{counts.errors} analysis errors (limit {analysis.error_limit}); last: {last}"
    elif streak is not None and counts.consecutive_errors > streak:
        message = f"{counts.consecutive_errors} analysis errors in a row (consecutiveErrorLimit {streak}); last: {last}"
    else:
        ctx.event("Warning", R.CHECK_ERROR, last)
        return None
    return rollback(ctx, phase="Failed", reason=R.ANALYSIS_ERRORS, message=message)


def _inconclusive(ctx: Ctx, results: list[CheckResult]) -> Decision | None:
    policy = ctx.spec.rollout.analysis.on_inconclusive
    c = ctx.rollout.counts
    counts = c.model_copy(update={"inconclusives": c.inconclusives + 1, "consecutive_errors": 0})
    why = describe(results, "inconclusive")
    r = ctx.update(counts=counts, message=f"inconclusive: {why}")
    if policy == "rollback":
        return rollback(
            ctx,
            phase="Failed",
            reason=R.ANALYSIS_INCONCLUSIVE,
            message=f"analysis inconclusive ({why}); onInconclusive: rollback",
        )
    if policy == "pause":
        r = ctx.update(
            phase="Paused",
            analysis_hold=True,
            message=f"paused: analysis inconclusive ({why}); a retry, or pause and resume, continues",
        )
        ctx.event("Warning", R.ANALYSIS_INCONCLUSIVE, r.message)
        return ctx.decision(canary=ctx.candidate, weight=r.desired_weight)  # held as it is
    return None


_HANDLERS: dict[str, Callable[[Ctx, list[CheckResult]], Decision | None]] = {
    "pass": _passed,
    "fail": _failed,
    "error": _errored,
    "inconclusive": _inconclusive,
}
