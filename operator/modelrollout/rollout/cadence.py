"""When each check is due, and what a run that evaluated some of the checks says (pure).

Every check has an `interval` (how often it is evaluated; default `analysis.interval`) and a
`window` (its PromQL range; default its interval). At a step, a check's first evaluation waits
one interval after the step's hold started, then it runs every interval. A run evaluates the
checks that are due; `status.rollout.checks` keeps the latest result of every check.

With one interval for all checks (the default) every run evaluates every check, and its verdict
is the worst of them. When only some are due, the run's verdict is:
- fail / error / inconclusive: the worst of what it evaluated (counted once, when observed);
- pass: only when what it evaluated passed AND every other check's latest result at this step
  passed; a pass never comes from stale evidence;
- nothing (no news, not counted): what it evaluated passed but another check has no result at
  this step yet (the step keeps waiting for it), or its latest result is not a pass (the step
  keeps that verdict until the check is evaluated again).
"""

from __future__ import annotations

from collections.abc import Sequence

from modelrollout.api.base import parse_duration
from modelrollout.api.checks import MetricCheck
from modelrollout.api.rollout import Analysis
from modelrollout.api.status import CheckResult, RolloutStatus, Verdict
from modelrollout.rollout.timing import POLL_SECONDS, elapsed, parse_ts
from modelrollout.rollout.verdict import overall


def check_interval(check: MetricCheck, analysis: Analysis) -> str:
    return check.interval or analysis.interval


def check_window(check: MetricCheck, analysis: Analysis) -> str:
    return check.window or check_interval(check, analysis)


def current(result: CheckResult, r: RolloutStatus) -> bool:
    """The result was taken during this step's hold (after it started or resumed). A first
    evaluation waits at least one interval (>= 1s), so a result stamped in the second the hold
    started belongs to the one before."""
    if r.step_started_at is None:
        return False
    try:
        return parse_ts(result.time) > parse_ts(r.step_started_at)
    except ValueError:
        return False


def waits(analysis: Analysis, r: RolloutStatus, now) -> dict[str, float]:
    """Seconds until each check is due (<= 0: due now)."""
    since_step = elapsed(r.step_started_at, now)
    latest = {c.metric: c for c in r.checks if current(c, r)}
    if not latest and r.last_analysis_at and r.step_started_at and r.last_analysis_at >= r.step_started_at:
        # a status without per-check results (an older operator's): its last run counts for all
        since_step = min(since_step, elapsed(r.last_analysis_at, now))
    out = {}
    for check in analysis.metrics:
        interval = parse_duration(check_interval(check, analysis))
        previous = latest.get(check.name)
        out[check.name] = interval - (elapsed(previous.time, now) if previous else since_step)
    return out


def due(analysis: Analysis, r: RolloutStatus, now) -> list[str]:
    return [name for name, wait in waits(analysis, r, now).items() if wait <= 0]


def next_due(r: RolloutStatus, pause: float, analysis: Analysis | None, now) -> float:
    """Seconds until something is due at this step: its pause ending, or a check."""
    candidates = [pause - elapsed(r.step_started_at, now)]
    if analysis is not None:
        candidates += waits(analysis, r, now).values()
    positive = [w for w in candidates if w > 0]
    return min(positive) if positive else POLL_SECONDS


def merge(
    analysis: Analysis, previous: Sequence[CheckResult], fresh: Sequence[CheckResult]
) -> list[CheckResult]:
    """The latest result of every check of the analysis (checks it no longer has are dropped)."""
    by_name = {c.metric: c for c in previous} | {c.metric: c for c in fresh}
    names = [m.name for m in analysis.metrics]
    extra = [c for c in fresh if c.metric not in names]
    return [by_name[n] for n in names if n in by_name] + extra


def run_verdict(
    analysis: Analysis, r: RolloutStatus, fresh: Sequence[CheckResult], merged: Sequence[CheckResult]
) -> Verdict | None:
    """The verdict of a run that evaluated `fresh` (None: no news; see the module docstring)."""
    verdict = overall(list(fresh))
    if verdict != "pass":
        return verdict
    evaluated = {c.metric for c in fresh}
    others = {c.metric: c for c in merged if c.metric not in evaluated}
    for check in analysis.metrics:
        if check.name in evaluated:
            continue
        result = others.get(check.name)
        if result is None or not current(result, r) or result.verdict != "pass":
            return None
    return "pass"
