"""Choose static, dynamic or hybrid serving, and the head size for hybrid.

Rules, in order:
1. Constraints first. A mode is out when it cannot meet the p99 latency target, when it
   precomputes but the acceptable staleness is 0 or a precompute run would take longer than it,
   or (static only) when requests would ask for keys outside the table: the key set must be
   closed (a given universe size) or the estimated unseen-key share at most `max_unseen_share`.
2. Head size k of hybrid: the k that minimises the estimated daily cost (storage + precompute +
   model CPU for the misses) among heads whose estimated hit ratio meets the latency target. On
   a coverage curve that flattens, that is the point where one more key costs more to store and
   recompute than the model CPU its requests save: a key earns its place above a break-even
   number of requests a day (printed). The hit ratio comes from the held-out coverage curve, so
   keys seen only by chance do not count as a head.
3. Lowest daily cost among the modes left, except that hybrid, which runs two serving paths,
   must save at least `min_hybrid_saving` over the cheapest of static and dynamic to be chosen.
If no mode is left, the recommendation is "none" and the reason lists what rules each out.
"""

from __future__ import annotations

from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelrollout.advisor.costs import (
    DAYS_PER_MONTH,
    TABLE_VERSIONS,
    CostParams,
    ModeEstimate,
    estimate_dynamic,
    estimate_hybrid,
    estimate_static,
    online_core_hours,
    row_bytes,
    table_costs,
)
from modelrollout.advisor.figures import WorkloadFigures, WorkloadSummary
from modelrollout.advisor.latency import required_hit_ratio
from modelrollout.advisor.model_facts import ModelFacts

STATUS_REASON_CHARS = 300
# below this many requests of a break-even key in the log, the head size is limited by the sample
SAMPLE_LIMIT_REQUESTS = 2.0


class Recommendation(BaseModel):
    """The advice with every figure behind it; `to_status()` is its compact form for status."""

    model_config = ConfigDict(frozen=True)

    mode: Literal["static", "dynamic", "hybrid", "none"]
    head_size: int | None
    expected_hit_ratio: float | None
    required_hit_ratio: float | None
    break_even_requests_per_key_day: float
    estimates: tuple[ModeEstimate, ...]
    reasons: tuple[str, ...]
    head_rule: str
    workload: WorkloadSummary
    facts: ModelFacts
    costs: CostParams

    @property
    def reason(self) -> str:
        """The reasons as one line: the choice first, then why each other mode lost."""
        return "; ".join(self.reasons)

    def estimate(self, mode: str) -> ModeEstimate:
        return next(e for e in self.estimates if e.mode == mode)

    def to_status(self) -> dict[str, Any]:
        """Small dict of strings and numbers for the ModelDeployment status (advice only)."""
        status: dict[str, Any] = {"mode": self.mode, "source": self.workload.source}
        if self.mode != "none":
            chosen = self.estimate(self.mode)
            status["costPerDay"] = _significant(chosen.total_cost_per_day)
            status["latencyP99Ms"] = _significant(chosen.latency_p99_ms)
        if self.mode == "hybrid":
            status["headSize"] = int(self.head_size or 0)
            status["expectedHitRatio"] = _significant(float(self.expected_hit_ratio or 0.0))
        reason = self.reason
        if len(reason) > STATUS_REASON_CHARS:
            reason = reason[: STATUS_REASON_CHARS - 3].rstrip() + "..."
        status["reason"] = reason
        return status


def recommend(figures: WorkloadFigures, facts: ModelFacts, costs: CostParams) -> Recommendation:
    """Estimate every mode for the workload and pick one by the rules in the module docstring."""
    static = estimate_static(figures, facts, costs)
    dynamic = estimate_dynamic(figures, facts, costs)
    required = required_hit_ratio(
        costs.latency_target_ms, lookup=facts.lookup_latency, model=facts.model_latency
    )
    hybrid = _best_hybrid(figures, facts, costs, required=required)
    simple = [e for e in (static, dynamic) if e.feasible]
    best_simple = min(simple, key=lambda e: e.total_cost_per_day) if simple else None
    if hybrid.feasible and (
        best_simple is None
        or hybrid.total_cost_per_day <= (1.0 - costs.min_hybrid_saving) * best_simple.total_cost_per_day
    ):
        chosen: ModeEstimate | None = hybrid
    else:
        chosen = best_simple
    estimates = (static, dynamic, hybrid)
    return Recommendation(
        mode=chosen.mode if chosen else "none",
        head_size=hybrid.stored_keys if chosen is hybrid else None,
        expected_hit_ratio=hybrid.hit_ratio if chosen is hybrid else None,
        required_hit_ratio=required,
        break_even_requests_per_key_day=break_even_requests(figures, facts, costs),
        estimates=estimates,
        reasons=_reasons(chosen, estimates, figures=figures, costs=costs),
        head_rule=_head_rule(figures, facts, costs, required=required),
        workload=figures.summary(),
        facts=facts,
        costs=costs,
    )


def break_even_requests(figures: WorkloadFigures, facts: ModelFacts, costs: CostParams) -> float:
    """Requests a day above which storing and recomputing a key is cheaper than running the model."""
    price = costs.cpu_cost_per_core_hour
    saved_per_request = facts.cpu_ms / 1000.0 / 3600.0 / costs.online_cpu_utilization * price
    if costs.staleness_hours == 0:
        return float("inf")
    keep = row_bytes(figures, facts) * TABLE_VERSIONS / 1e9 * costs.storage_cost_per_gb_month / DAYS_PER_MONTH
    recompute = facts.batch_cpu_seconds / 3600.0 * 24.0 / costs.staleness_hours * price
    return (keep + recompute) / saved_per_request


def _best_hybrid(
    figures: WorkloadFigures, facts: ModelFacts, costs: CostParams, *, required: float | None
) -> ModeEstimate:
    sizes, hits = figures.coverage.head_sizes, figures.coverage.hit_ratios
    table = table_costs(sizes, figures=figures, facts=facts, costs=costs)
    online = online_core_hours(figures.requests_per_day * (1.0 - hits), facts=facts, costs=costs)
    total = table["storage_cost"] + (table["precompute_core_hours"] + online) * costs.cpu_cost_per_core_hour
    candidate = (sizes > 0) & np.isfinite(total)
    allowed = candidate & (hits >= (required if required is not None else np.inf))
    pool = allowed if allowed.any() else candidate
    # when nothing can be precomputed, report the smallest head, with its problems
    index = int(np.argmin(np.where(pool, total, np.inf))) if pool.any() else min(1, sizes.size - 1)
    return estimate_hybrid(figures, facts, costs, head_size=int(sizes[index]), hit_ratio=float(hits[index]))


def _reasons(
    chosen: ModeEstimate | None,
    estimates: tuple[ModeEstimate, ...],
    *,
    figures: WorkloadFigures,
    costs: CostParams,
) -> tuple[str, ...]:
    if chosen is None:
        return ("no mode meets the constraints", *(f"{e.mode} is out: {e.problems[0]}" for e in estimates))
    parts = [_why_chosen(chosen, figures=figures)]
    for other in estimates:
        if other is chosen:
            continue
        if not other.feasible:
            parts.append(f"{other.mode} is out: {other.problems[0]}")
        elif other.mode == "hybrid":
            saving = 1.0 - other.total_cost_per_day / chosen.total_cost_per_day
            head = f"{other.stored_keys:,} key{'s' if other.stored_keys != 1 else ''}"
            cost = f"hybrid (best head: {head}) would cost ${other.total_cost_per_day:.4g}/day"
            if saving > 0:
                cost += f", saving {saving:.0%}, less than the {costs.min_hybrid_saving:.0%} that justifies two paths"
            parts.append(cost)
        else:
            parts.append(f"{other.mode} would cost ${other.total_cost_per_day:.4g}/day")
    return tuple(parts)


def _why_chosen(chosen: ModeEstimate, *, figures: WorkloadFigures) -> str:
    cost = f"${chosen.total_cost_per_day:.4g}/day, p99 {chosen.latency_p99_ms:.3g} ms"
    if chosen.mode == "static":
        return (
            f"static: all {chosen.stored_keys:,} keys ({chosen.storage_gb:.3g} GB) are precomputed every "
            f"{chosen.max_age_hours:g} h and served by lookup; {cost}"
        )
    if chosen.mode == "dynamic":
        return f"dynamic: the model answers every request, no table to keep fresh; {cost}"
    share = chosen.stored_keys / max(figures.cardinality, 1)
    return (
        f"hybrid: the {chosen.stored_keys:,} most requested keys ({share:.2%} of {figures.cardinality:,}) "
        f"answer an estimated {chosen.hit_ratio:.1%} of requests from the table, the model the rest; {cost}"
    )


def _head_rule(
    figures: WorkloadFigures, facts: ModelFacts, costs: CostParams, *, required: float | None
) -> str:
    goal = (
        "no head can meet the p99 target"
        if required is None
        else (
            f"a hit ratio of at least {required:.2%} meets the p99 target"
            if required > 0
            else "any head meets the p99 target"
        )
    )
    break_even = break_even_requests(figures, facts, costs)
    rule = (
        f"head size k minimises daily storage + precompute + model CPU over heads that meet the latency target "
        f"({goal}) and can be recomputed within {costs.staleness_hours:g} h; a key earns its place above about "
        f"{break_even:.3g} requests a day. Hit ratios are held-out estimates: keys ranked on half of the "
        f"requests, coverage measured on the other half"
    )
    in_log = break_even * figures.total_requests / figures.requests_per_day
    if figures.source == "log" and in_log < SAMPLE_LIMIT_REQUESTS:
        rule += (
            f". The log holds only about {in_log:.2g} requests of a break-even key, too few to tell such keys "
            f"from noise: a longer log may justify a larger head"
        )
    return rule


def _significant(value: float, digits: int = 4) -> float:
    return float(f"{value:.{digits}g}")
