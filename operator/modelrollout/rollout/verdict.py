"""Judging one check, and one analysis run, from measured values (pure).

pass / fail / inconclusive / error, as in Argo Rollouts' assessMetricStatus: no data, NaN or
too few samples is inconclusive (wait, bounded by the progress deadline) and never a pass; a
provider that cannot answer is an error, counted apart from failures.
"""

from __future__ import annotations

import math

from modelrollout.api.rollout import MetricCheck
from modelrollout.api.status import CheckResult, Verdict


def _missing(value: float | None) -> bool:
    return value is None or math.isnan(value)


def _fmt(value: float) -> str:
    return f"{value:.6g}"


def thresholds(check: MetricCheck, stable_value: float | None) -> list[tuple[str, float | None, str]]:
    """[(op, bound, text)] the canary value must satisfy; bound None when stable is unknown."""
    out: list[tuple[str, float | None, str]] = []
    if check.min is not None:
        out.append((">=", check.min, f">= {_fmt(check.min)}"))
    if check.max is not None:
        out.append(("<=", check.max, f"<= {_fmt(check.max)}"))
    rel = check.relative_to_stable
    if rel is not None:
        known = not _missing(stable_value)
        s = stable_value if known else math.nan
        if rel.max_ratio is not None:
            out.append(("<=", s * rel.max_ratio if known else None, f"<= {_fmt(rel.max_ratio)} x stable"))
        if rel.max_increase is not None:
            out.append(
                ("<=", s + rel.max_increase if known else None, f"<= stable + {_fmt(rel.max_increase)}")
            )
        if rel.max_decrease is not None:
            out.append(
                (">=", s - rel.max_decrease if known else None, f">= stable - {_fmt(rel.max_decrease)}")
            )
    return out


def assess(
    check: MetricCheck,
    *,
    value: float | None,
    stable_value: float | None,
    samples: float | None,
    min_samples: int,
) -> tuple[Verdict, str, str]:
    """(verdict, threshold text, message) for one check's measurements."""
    bounds = thresholds(check, stable_value)
    text = " and ".join(t for _, _, t in bounds)
    if samples is not None and not math.isnan(samples) and samples < min_samples:
        return "inconclusive", text, f"{samples:.0f} samples < minSamples {min_samples}"
    if samples is not None and math.isnan(samples):
        return "inconclusive", text, "sample count is NaN"
    if _missing(value):
        return "inconclusive", text, "no data" if value is None else "value is NaN"
    for op, bound, label in bounds:
        if bound is None:
            return "inconclusive", text, f"no stable value to compare with ({label})"
        ok = value >= bound if op == ">=" else value <= bound
        if not ok:
            return "fail", text, f"{check.name} = {_fmt(value)}, needs {op} {_fmt(bound)} ({label})"
    return "pass", text, f"{check.name} = {_fmt(value)}"


def overall(results: list[CheckResult]) -> Verdict:
    """One run's verdict: any fail fails; else any error errs; else any inconclusive waits."""
    verdicts = {r.verdict for r in results}
    for verdict in ("fail", "error", "inconclusive"):
        if verdict in verdicts:
            return verdict  # type: ignore[return-value]
    return "pass"


def first_with(results: list[CheckResult], verdict: Verdict) -> CheckResult | None:
    return next((r for r in results if r.verdict == verdict), None)
