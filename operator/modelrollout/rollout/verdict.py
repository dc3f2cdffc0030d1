"""Judging one check, and one analysis run, from measured values (pure).

pass / fail / inconclusive / error, as in Argo Rollouts' assessMetricStatus: no data, a
non-finite value (NaN, +Inf, -Inf) on either track, or too few samples is inconclusive (wait,
bounded by the progress deadline) and never a pass; a provider that cannot answer is an
error, counted apart from failures.

Non-finite is unknown, never a bound: a stable p99 of +Inf (every request beyond the largest
bucket) would otherwise let any canary pass `maxRatio`, and a canary +Inf says only "beyond
the largest bucket", which may or may not be beyond `max`.
"""

from __future__ import annotations

import math

from modelrollout.api.checks import MetricCheck
from modelrollout.api.status import CheckResult, Verdict

Bound = tuple[str, float | None, str]  # (op, bound or None when unknown, text)


def unknown(value: float | None) -> bool:
    """No data, NaN or an infinity: nothing a threshold can be judged on."""
    return value is None or not math.isfinite(value)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def _fmt_below(value: float, limit: float) -> str:
    """`value` printed so that it visibly stays below `limit` (19.9999 is not "20")."""
    text = _fmt(value)
    return text if float(text) < limit else repr(float(value))


def absolute_bounds(check: MetricCheck) -> list[Bound]:
    out: list[Bound] = []
    if check.min is not None:
        out.append((">=", check.min, f">= {_fmt(check.min)}"))
    if check.max is not None:
        out.append(("<=", check.max, f"<= {_fmt(check.max)}"))
    return out


def relative_bounds(check: MetricCheck, stable_value: float | None) -> list[Bound]:
    """Bounds derived from the stable value; None where it (or the bound) is not finite."""
    rel = check.relative_to_stable
    if rel is None:
        return []

    def known(bound: float) -> float | None:
        return None if unknown(stable_value) or not math.isfinite(bound) else bound

    s = 0.0 if unknown(stable_value) else stable_value
    out: list[Bound] = []
    if rel.max_ratio is not None:
        out.append(("<=", known(s * rel.max_ratio), f"<= {_fmt(rel.max_ratio)} x stable"))
    if rel.max_increase is not None:
        out.append(("<=", known(s + rel.max_increase), f"<= stable + {_fmt(rel.max_increase)}"))
    if rel.max_decrease is not None:
        out.append((">=", known(s - rel.max_decrease), f">= stable - {_fmt(rel.max_decrease)}"))
    return out


def thresholds(check: MetricCheck, stable_value: float | None) -> list[Bound]:
    """[(op, bound, text)] the canary value must satisfy; bound None when stable is unknown."""
    return absolute_bounds(check) + relative_bounds(check, stable_value)


def sample_gate(samples: float | None, min_samples: int, *, gate: str = "minSamples") -> str | None:
    """Why the samples cannot carry a verdict, or None when they can (or the gate is off).
    `gate` names the setting in messages (minLabels for the ground-truth checks)."""
    if min_samples <= 0:
        return None
    noun = "labelled predictions" if gate == "minLabels" else "samples"
    if samples is None:
        return f"no sample count (no samples query) for {gate} {min_samples}"
    if not math.isfinite(samples):
        return f"sample count is {samples}"
    if samples < min_samples:
        return f"{_fmt_below(samples, min_samples)} {noun} < {gate} {min_samples}"
    return None


def _breach(check: MetricCheck, value: float, bound: Bound) -> str | None:
    op, limit, label = bound
    assert limit is not None
    ok = value >= limit if op == ">=" else value <= limit
    return None if ok else f"{check.name} = {_fmt(value)}, needs {op} {_fmt(limit)} ({label})"


def assess(
    check: MetricCheck,
    *,
    value: float | None,
    stable_value: float | None,
    samples: float | None,
    min_samples: int,
    gate: str = "minSamples",
) -> tuple[Verdict, str, str]:
    """(verdict, threshold text, message) for one check's measurements.

    Order: the sample gate, then an unknown canary value (both inconclusive); then the absolute
    bounds (a breach fails even when stable is unknown); then the relative bounds, inconclusive
    when stable is unknown."""
    relative = relative_bounds(check, stable_value)
    text = " and ".join(t for _, _, t in absolute_bounds(check) + relative)
    waiting = sample_gate(samples, min_samples, gate=gate)
    if waiting is not None:
        return "inconclusive", text, waiting
    if unknown(value):
        return "inconclusive", text, "no data" if value is None else f"value is {value}"
    for bound in absolute_bounds(check):
        if (breach := _breach(check, value, bound)) is not None:
            return "fail", text, breach
    for bound in relative:
        if bound[1] is None:
            why = "no stable value" if stable_value is None else f"stable value is {stable_value}"
            return "inconclusive", text, f"{why} to compare with ({bound[2]})"
        if (breach := _breach(check, value, bound)) is not None:
            return "fail", text, breach
    return "pass", text, f"{check.name} = {_fmt(value)}"


def overall(results: list[CheckResult]) -> Verdict:
    """One run's verdict: any fail fails; else any error errs; else any inconclusive waits.

    No results at all is no evidence: inconclusive, never a pass."""
    if not results:
        return "inconclusive"
    verdicts = {r.verdict for r in results}
    for verdict in ("fail", "error", "inconclusive"):
        if verdict in verdicts:
            return verdict  # type: ignore[return-value]
    return "pass"


def first_with(results: list[CheckResult], verdict: Verdict) -> CheckResult | None:
    return next((r for r in results if r.verdict == verdict), None)


def describe(results: list[CheckResult], verdict: Verdict) -> str:
    """`metric: message` of the first check with `verdict`, for messages and events."""
    found = first_with(results, verdict)
    return "no checks ran" if found is None else f"{found.metric}: {found.message}"
