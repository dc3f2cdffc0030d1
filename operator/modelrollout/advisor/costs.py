"""Cost parameters and the per-mode estimates of storage, compute, latency and freshness.

The cost model, per day (all figures are daily so modes compare directly):

- storage: stored keys x (prediction + key + ROW_OVERHEAD_BYTES) x TABLE_VERSIONS (the batch
  publishes a new version atomically next to the old one), priced per GB-month.
- precompute: every stored key is predicted again before it gets older than the acceptable
  staleness S. A run over K keys takes R = K x batch CPU / batch cores, so runs start every
  S - R hours (no served prediction is older than S) and cost K x batch CPU x 24 / (S - R) core
  hours a day. It is impossible when S = 0 or R >= S.
- online: the always-on `model_min_cores` of a model server (paid even when idle) plus the
  requests that reach the model x CPU per prediction / target utilisation (autoscaled servers
  run below 100%). Static serving has no model server. The two parts are added rather than
  combined as max(floor, load): with max() a head would look free until the load fell to the
  floor, and the cheapest head would sit at that artificial kink instead of where a key stops
  paying for itself.
- the lookup path (a small service and the database) is needed by static and hybrid and costs
  about the same for both; it is left out, which slightly favours dynamic.

Latency: static serves lookups, dynamic model calls, hybrid a mix (see `latency`). Freshness:
the worst-case age of a served prediction, S for anything precomputed and 0 for model calls.
"""

from __future__ import annotations

from typing import Literal

import numpy as np
from pydantic import BaseModel, ConfigDict

from modelrollout.advisor.figures import WorkloadFigures
from modelrollout.advisor.latency import hybrid_quantile
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams

DAYS_PER_MONTH = 365.25 / 12
ROW_OVERHEAD_BYTES = 64.0  # row header, index entry and page slack of a key-value table row
TABLE_VERSIONS = 2
Mode = Literal["static", "dynamic", "hybrid"]
__all__ = ["CostParams", "ModeEstimate", "estimate_static", "estimate_dynamic", "estimate_hybrid"]


class ModeEstimate(BaseModel):
    """What one serving mode would cost and deliver for the workload."""

    model_config = ConfigDict(frozen=True)

    mode: Mode
    feasible: bool
    problems: tuple[str, ...] = ()
    stored_keys: int
    hit_ratio: float
    storage_gb: float
    storage_cost_per_day: float
    precompute_core_hours_per_day: float
    online_core_hours_per_day: float
    compute_cost_per_day: float
    total_cost_per_day: float
    latency_p50_ms: float
    latency_p99_ms: float
    max_age_hours: float
    precompute_run_hours: float


def row_bytes(figures: WorkloadFigures, facts: ModelFacts) -> float:
    return facts.prediction_bytes + figures.mean_key_bytes + ROW_OVERHEAD_BYTES


def table_costs(stored_keys, *, figures: WorkloadFigures, facts: ModelFacts, costs: CostParams) -> dict:
    """Storage and precompute figures for tables of `stored_keys` keys (a number or an array).

    Where precomputing is impossible (staleness 0, or a run longer than the staleness) the
    precompute figure is infinite, so such heads never win a cost comparison.
    """
    keys = np.asarray(stored_keys, dtype=np.float64)
    gb = keys * row_bytes(figures, facts) * TABLE_VERSIONS / 1e9
    run_hours = keys * facts.batch_cpu_seconds / costs.batch_max_cores / 3600.0
    interval = costs.staleness_hours - run_hours
    with np.errstate(divide="ignore", invalid="ignore"):  # 0 keys x no possible refresh = 0, not NaN
        refreshes_per_day = np.where(interval > 0, 24.0 / np.where(interval > 0, interval, 1.0), np.inf)
        precompute = np.where(keys > 0, keys * facts.batch_cpu_seconds / 3600.0 * refreshes_per_day, 0.0)
    return {
        "storage_gb": gb,
        "storage_cost": gb * costs.storage_cost_per_gb_month / DAYS_PER_MONTH,
        "precompute_core_hours": precompute,
        "run_hours": run_hours,
    }


def online_core_hours(model_requests_per_day, *, facts: ModelFacts, costs: CostParams):
    """Core hours a day a model server is paid for, serving the given daily model calls."""
    busy = np.asarray(model_requests_per_day, dtype=np.float64) * facts.cpu_ms / 1000.0 / 3600.0
    return busy / costs.online_cpu_utilization + costs.model_min_cores * 24.0


def estimate_static(figures: WorkloadFigures, facts: ModelFacts, costs: CostParams) -> ModeEstimate:
    keys = figures.cardinality
    unseen = 0.0 if figures.universe_size is not None else figures.unseen_key_share
    problems = []
    if unseen is None or unseen > costs.max_unseen_share:
        share = "an unknown share" if unseen is None else f"{unseen:.1%}"
        basis = "estimated from keys seen only once" if figures.source == "log" else "the measured miss ratio"
        problems.append(
            f"{share} of requests would be for keys not in the table ({basis}), "
            f"and static serving needs a closed key set: give the key universe size if it is one"
        )
    problems += _precompute_problems(keys, facts=facts, costs=costs)
    lookup = facts.lookup_latency
    problems += _latency_problems(lookup.p99_ms, costs=costs, what="lookup")
    table = table_costs(keys, figures=figures, facts=facts, costs=costs)
    return _estimate(
        "static", problems, keys=keys, hit=1.0 - (unseen or 0.0), table=table, online=0.0, costs=costs,
        p50=lookup.p50_ms, p99=lookup.p99_ms, age=costs.staleness_hours,
    )  # fmt: skip


def estimate_dynamic(figures: WorkloadFigures, facts: ModelFacts, costs: CostParams) -> ModeEstimate:
    model = facts.model_latency
    table = table_costs(0, figures=figures, facts=facts, costs=costs)
    online = online_core_hours(figures.requests_per_day, facts=facts, costs=costs)
    return _estimate(
        "dynamic", _latency_problems(model.p99_ms, costs=costs, what="model"), keys=0, hit=0.0, table=table,
        online=float(online), costs=costs, p50=model.p50_ms, p99=model.p99_ms, age=0.0,
    )  # fmt: skip


def estimate_hybrid(
    figures: WorkloadFigures, facts: ModelFacts, costs: CostParams, *, head_size: int, hit_ratio: float
) -> ModeEstimate:
    """Hybrid with a head of `head_size` keys answering `hit_ratio` of the requests."""
    lookup, model = facts.lookup_latency, facts.model_latency
    p50 = hybrid_quantile(0.5, hit_ratio=hit_ratio, lookup=lookup, model=model)
    p99 = hybrid_quantile(0.99, hit_ratio=hit_ratio, lookup=lookup, model=model)
    problems = [] if head_size > 0 else ["no head worth storing: every key costs more to keep than it saves"]
    problems += _precompute_problems(head_size, facts=facts, costs=costs)
    problems += _latency_problems(p99, costs=costs, what="hybrid")
    table = table_costs(head_size, figures=figures, facts=facts, costs=costs)
    online = online_core_hours(figures.requests_per_day * (1.0 - hit_ratio), facts=facts, costs=costs)
    return _estimate(
        "hybrid", problems, keys=head_size, hit=hit_ratio, table=table, online=float(online), costs=costs,
        p50=p50, p99=p99, age=costs.staleness_hours if head_size > 0 else 0.0,
    )  # fmt: skip


def _precompute_problems(keys: int, *, facts: ModelFacts, costs: CostParams) -> list[str]:
    if costs.staleness_hours == 0:
        return ["the acceptable staleness is 0: precomputed predictions are never fresh enough"]
    run = keys * facts.batch_cpu_seconds / costs.batch_max_cores / 3600.0
    if run >= costs.staleness_hours:
        return [
            f"precomputing {keys:,} keys takes {run:.3g} h on {costs.batch_max_cores:g} cores, "
            f"not less than the acceptable staleness of {costs.staleness_hours:g} h"
        ]
    return []


def _latency_problems(p99: float, *, costs: CostParams, what: str) -> list[str]:
    if p99 > costs.latency_target_ms:
        return [f"{what} p99 latency {p99:.3g} ms is above the target of {costs.latency_target_ms:g} ms"]
    return []


def _estimate(mode: Mode, problems: list[str], *, keys: int, hit: float, table: dict, online: float,
              costs: CostParams, p50: float, p99: float, age: float) -> ModeEstimate:  # fmt: skip
    precompute = float(table["precompute_core_hours"])
    compute_cost = (precompute + online) * costs.cpu_cost_per_core_hour
    storage_cost = float(table["storage_cost"])
    return ModeEstimate(
        mode=mode,
        feasible=not problems,
        problems=tuple(problems),
        stored_keys=int(keys),
        hit_ratio=float(hit),
        storage_gb=float(table["storage_gb"]),
        storage_cost_per_day=storage_cost,
        precompute_core_hours_per_day=precompute,
        online_core_hours_per_day=float(online),
        compute_cost_per_day=compute_cost,
        total_cost_per_day=storage_cost + compute_cost,
        latency_p50_ms=float(p50),
        latency_p99_ms=float(p99),
        max_age_hours=float(age),
        precompute_run_hours=float(table["run_hours"]),
    )
