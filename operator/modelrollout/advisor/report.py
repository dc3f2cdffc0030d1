"""Plain-text report of a recommendation: workload figures, a table per mode, the decision.

Pure: returns a string, so the CLI prints it and tests read it without capturing output.
"""

from __future__ import annotations

import math

from modelrollout.advisor.costs import ModeEstimate
from modelrollout.advisor.recommend import Recommendation

_ROWS: tuple[tuple[str, str], ...] = (
    ("feasible", "feasible"),
    ("stored keys", "stored_keys"),
    ("hit ratio (from table)", "hit_ratio"),
    ("storage GB", "storage_gb"),
    ("storage $/day", "storage_cost_per_day"),
    ("precompute core-h/day", "precompute_core_hours_per_day"),
    ("precompute run h", "precompute_run_hours"),
    ("online core-h/day", "online_core_hours_per_day"),
    ("compute $/day", "compute_cost_per_day"),
    ("total $/day", "total_cost_per_day"),
    ("latency p50 ms", "latency_p50_ms"),
    ("latency p99 ms", "latency_p99_ms"),
    ("max age of answer h", "max_age_hours"),
)


def render_text(recommendation: Recommendation) -> str:
    """The whole report as lines of text."""
    lines = ["Workload"]
    lines += [f"  {label:<34}{value}" for label, value in _workload_lines(recommendation)]
    facts = recommendation.facts
    costs = recommendation.costs
    lines += [
        "Model and costs",
        f"  {'model latency p50 / p99':<34}{facts.latency_p50_ms:.4g} / {facts.latency_p99_ms:.4g} ms ({facts.source})",
        f"  {'model CPU online / batch':<34}{facts.cpu_ms:.4g} / {facts.batch_cpu_seconds * 1000:.4g} ms per prediction",
        f"  {'lookup latency p50 / p99':<34}{facts.lookup_latency.p50_ms:.4g} / {facts.lookup_latency.p99_ms:.4g} ms",
        f"  {'prediction size':<34}{facts.prediction_bytes:.4g} bytes",
        f"  {'p99 target / acceptable staleness':<34}{costs.latency_target_ms:g} ms / {costs.staleness_hours:g} h",
        f"  {'storage / CPU price':<34}${costs.storage_cost_per_gb_month:g} per GB-month / "
        f"${costs.cpu_cost_per_core_hour:g} per core-hour",
        "",
    ]
    lines += _table(recommendation.estimates)
    lines += ["", f"Recommendation: {recommendation.mode.upper()}"]
    if recommendation.mode == "hybrid":
        lines.append(
            f"  head size k = {recommendation.head_size:,} keys, hit ratio {recommendation.expected_hit_ratio:.1%}"
        )
    lines += ["", "Why:"] + [f"  - {part}" for part in recommendation.reasons]
    lines += ["", "How k is chosen:", f"  {recommendation.head_rule}"]
    problems = [(e.mode, p) for e in recommendation.estimates for p in e.problems[1:]]
    if problems:
        lines += ["", "Further constraints not met:"] + [f"  - {mode}: {p}" for mode, p in problems]
    return "\n".join(lines) + "\n"


def _workload_lines(recommendation: Recommendation) -> list[tuple[str, str]]:
    w = recommendation.workload
    rows = [
        ("source", w.source),
        ("requests in log/window", f"{w.total_requests:,}"),
        (
            "request rate",
            f"{w.requests_per_day / 86400:.4g}/s = {w.requests_per_day:,.0f}/day ({w.rate_basis})",
        ),
        ("distinct keys seen", f"{w.distinct_keys:,}"),
        ("key universe", "not given" if w.universe_size is None else f"{w.universe_size:,}"),
    ]
    if w.top1_percent_share is not None:
        rows.append(("top 1% of keys serve", f"{w.top1_percent_share:.1%} of requests"))
    if w.zipf_exponent is not None:
        rows.append(("Zipf exponent (fitted head)", f"{w.zipf_exponent:.3g}"))
    if w.unseen_key_share is not None:
        rows.append(("requests for unseen keys", f"{w.unseen_key_share:.2%} (Good-Turing)"))
    rows.append(("break-even requests/key/day", _number(recommendation.break_even_requests_per_key_day)))
    for point in w.coverage_points:
        observed = "" if point.observed is None else f" (observed in the log: {point.observed:.1%})"
        keys = f"{point.head_size:,} key{'' if point.head_size == 1 else 's'}"
        rows.append((f"top {keys} serve", f"{point.estimated:.1%} of requests{observed}"))
    return rows


def _table(estimates: tuple[ModeEstimate, ...]) -> list[str]:
    header = f"  {'':<26}" + "".join(f"{e.mode:>14}" for e in estimates)
    lines = [header, "  " + "-" * (len(header) - 2)]
    for label, field in _ROWS:
        lines.append(f"  {label:<26}" + "".join(f"{_cell(getattr(e, field)):>14}" for e in estimates))
    return lines


def _cell(value) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, int):
        return f"{value:,}"
    return _number(value)


def _number(value: float) -> str:
    if not math.isfinite(value):
        return "n/a"
    if value == 0:
        return "0"
    return f"{value:.4g}"
