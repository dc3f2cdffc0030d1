"""Cost parameters, model facts, latency mixing and the per-mode estimates."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from modelrollout.advisor.costs import estimate_dynamic, estimate_static, table_costs
from modelrollout.advisor.errors import from_validation_error
from modelrollout.advisor.figures import WorkloadFigures
from modelrollout.advisor.latency import Latency, hybrid_quantile, mixture_quantile, required_hit_ratio
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams
from modelrollout.advisor.peakedness import CoverageCurve


def figures(*, keys: int = 1000, per_day: float = 1e6, universe: int | None = None, unseen: float = 0.0):
    return WorkloadFigures(
        source="test",
        total_requests=int(per_day),
        requests_per_day=per_day,
        rate_basis="given",
        distinct_keys=keys,
        universe_size=universe,
        unseen_key_share=unseen,
        mean_key_bytes=16.0,
        coverage=CoverageCurve(head_sizes=np.array([0, keys]), hit_ratios=np.array([0.0, 1.0 - unseen])),
    )


@pytest.mark.parametrize(
    ("field", "value", "message"),
    [
        ("storage_cost_per_gb_month", -1.0, "greater than 0"),
        ("cpu_cost_per_core_hour", 0.0, "greater than 0"),
        ("cpu_cost_per_core_hour", math.nan, "finite"),
        ("latency_target_ms", 0.0, "greater than 0"),
        ("latency_target_ms", 1e9, "less than or equal"),
        ("latency_target_ms", math.inf, "finite"),
        ("staleness_hours", -1.0, "greater than or equal to 0"),
        ("online_cpu_utilization", 1.5, "less than or equal to 1"),
        ("max_unseen_share", 1.0, "less than 1"),
    ],
)
def test_nonsense_costs_are_rejected_naming_the_flag(field, value, message):
    with pytest.raises(ValidationError) as caught:
        CostParams(**{field: value})
    text = str(from_validation_error(caught.value, names={field: "--the-flag"}))
    assert text.startswith("--the-flag: ") and message in text and "\n" not in text


def test_model_facts_reject_quantiles_out_of_order():
    with pytest.raises(ValidationError) as caught:
        ModelFacts(latency_p50_ms=50, latency_p99_ms=10)
    assert (
        str(from_validation_error(caught.value)) == "model latency p99 (10.0 ms) is below its p50 (50.0 ms)"
    )
    with pytest.raises(ValidationError):
        ModelFacts(prediction_bytes=0)


def test_log_normal_latency_goes_through_its_two_quantiles():
    latency = Latency(p50_ms=10, p99_ms=40)
    assert latency.quantile(0.5) == pytest.approx(10)
    assert latency.quantile(0.99) == pytest.approx(40)
    assert latency.cdf(40) == pytest.approx(0.99)


def test_mixture_quantiles_lie_between_the_paths_and_match_the_mixed_cdf():
    fast, slow = Latency(p50_ms=1, p99_ms=3), Latency(p50_ms=20, p99_ms=60)
    assert mixture_quantile(0.99, [(1.0, fast)]) == pytest.approx(3)
    q = mixture_quantile(0.99, [(0.9, fast), (0.1, slow)])
    assert 3 < q < 60
    assert 0.9 * fast.cdf(q) + 0.1 * slow.cdf(q) == pytest.approx(0.99, abs=1e-6)


def test_required_hit_ratio_is_the_smallest_that_meets_the_target():
    lookup, model = Latency(p50_ms=1, p99_ms=3), Latency(p50_ms=20, p99_ms=60)
    needed = required_hit_ratio(40.0, lookup=lookup, model=model)
    assert 0 < needed < 1
    assert hybrid_quantile(0.99, hit_ratio=needed, lookup=lookup, model=model) <= 40.0 + 1e-6
    assert hybrid_quantile(0.99, hit_ratio=needed - 0.01, lookup=lookup, model=model) > 40.0
    assert required_hit_ratio(100.0, lookup=lookup, model=model) == 0.0
    assert required_hit_ratio(2.0, lookup=lookup, model=model) is None


def test_static_estimate_prices_storage_and_recomputation_per_day():
    facts, costs = ModelFacts(cpu_ms=36.0, prediction_bytes=120.0), CostParams(staleness_hours=12.0)
    static = estimate_static(figures(keys=10**6, universe=10**6), facts, costs)
    row = 120 + 16 + 64  # prediction + key + row overhead
    assert static.storage_gb == pytest.approx(10**6 * row * 2 / 1e9)
    run_hours = 10**6 * 0.036 / 16 / 3600  # on the 16 batch cores
    assert static.precompute_run_hours == pytest.approx(run_hours)
    # a run every (12 h - run time), so that nothing served is older than 12 h
    assert static.precompute_core_hours_per_day == pytest.approx(10**6 * 0.036 / 3600 * 24 / (12 - run_hours))
    assert static.online_core_hours_per_day == 0 and static.feasible
    assert static.total_cost_per_day == pytest.approx(
        static.storage_gb * 0.10 / (365.25 / 12) + static.precompute_core_hours_per_day * 0.04
    )


def test_dynamic_estimate_pays_the_idle_floor_plus_the_load_at_target_utilisation():
    dynamic = estimate_dynamic(figures(per_day=3.6e6), ModelFacts(cpu_ms=10.0), CostParams())
    assert dynamic.online_core_hours_per_day == pytest.approx(3.6e6 * 0.01 / 3600 / 0.6 + 0.5 * 24)
    assert dynamic.latency_p99_ms == 60.0 and dynamic.max_age_hours == 0


def test_precompute_longer_than_the_staleness_window_is_impossible():
    facts, costs = ModelFacts(cpu_ms=100.0), CostParams(staleness_hours=1.0, batch_max_cores=4)
    static = estimate_static(figures(keys=10**6, universe=10**6), facts, costs)
    assert not static.feasible and "not less than the acceptable staleness" in static.problems[0]
    assert math.isinf(
        float(table_costs(10**6, figures=figures(), facts=facts, costs=costs)["precompute_core_hours"])
    )


def test_static_needs_a_closed_key_set():
    open_set = estimate_static(figures(unseen=0.05), ModelFacts(), CostParams())
    assert not open_set.feasible and "5.0% of requests" in open_set.problems[0]
    assert estimate_static(figures(unseen=0.0005), ModelFacts(), CostParams()).feasible
