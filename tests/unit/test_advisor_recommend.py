"""The recommender on synthetic workloads whose right answer is known from their construction."""

from __future__ import annotations

import json

import numpy as np
import pyarrow as pa
import pytest

from modelrollout.advisor.costs import ROW_OVERHEAD_BYTES, TABLE_VERSIONS
from modelrollout.advisor.figures import SECONDS_PER_DAY, figures_from_log
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams
from modelrollout.advisor.recommend import STATUS_REASON_CHARS, recommend
from modelrollout.advisor.workload import KeyCounts

KEY_BYTES = 8.0
ZIPF_UNIVERSE = 10**6
ZIPF_S = 1.1
ZIPF_REQUESTS = 2 * 10**6


def counts_of(keys: np.ndarray) -> KeyCounts:
    """KeyCounts of an array of integer keys, as `read_log` would produce for one day of traffic."""
    distinct, counts = np.unique(keys, return_counts=True)
    return KeyCounts(
        keys=pa.table({"key": distinct}),
        counts=counts,
        key_columns=("key",),
        total_requests=int(counts.sum()),
        rows_without_key=0,
        first_timestamp=0.0,
        last_timestamp=SECONDS_PER_DAY,
        mean_key_bytes=KEY_BYTES,
    )


@pytest.fixture(scope="module")
def zipf_probabilities() -> np.ndarray:
    weights = np.arange(1, ZIPF_UNIVERSE + 1, dtype=np.float64) ** -ZIPF_S
    return weights / weights.sum()


@pytest.fixture(scope="module")
def zipf_counts(zipf_probabilities) -> KeyCounts:
    rng = np.random.default_rng(3)
    return counts_of(rng.choice(ZIPF_UNIVERSE, size=ZIPF_REQUESTS, p=zipf_probabilities))


@pytest.fixture(scope="module")
def uniform_counts() -> KeyCounts:
    return counts_of(np.random.default_rng(1).integers(0, 10**6, size=10**5))


@pytest.fixture(scope="module")
def closed_counts() -> KeyCounts:
    return counts_of(np.random.default_rng(2).permutation(np.repeat(np.arange(50), 2000)))


def test_uniform_high_cardinality_is_dynamic(uniform_counts):
    figures = figures_from_log(uniform_counts)
    advice = recommend(figures, ModelFacts(), CostParams())
    assert advice.mode == "dynamic"
    static, hybrid = advice.estimate("static"), advice.estimate("hybrid")
    # almost every request is for a key seen once: a table of what was seen would miss ~90%
    assert not static.feasible and "not in the table" in static.problems[0]
    assert figures.unseen_key_share == pytest.approx(0.9, abs=0.02)
    # no head pays: the best one answers almost nothing out of sample and costs more than dynamic
    assert hybrid.hit_ratio < 0.01
    assert hybrid.total_cost_per_day >= advice.estimate("dynamic").total_cost_per_day
    assert advice.head_size is None
    assert advice.reason.startswith("dynamic:")


def test_small_closed_key_set_is_static(closed_counts):
    figures = figures_from_log(closed_counts)
    advice = recommend(figures, ModelFacts(), CostParams())
    assert advice.mode == "static"
    static = advice.estimate("static")
    assert static.stored_keys == 50
    assert static.hit_ratio == 1.0 and figures.unseen_key_share == 0.0
    assert static.latency_p99_ms == ModelFacts().lookup_latency.p99_ms
    assert static.total_cost_per_day < 0.01 * advice.estimate("dynamic").total_cost_per_day


def test_zipf_is_hybrid_with_the_break_even_head(zipf_counts, zipf_probabilities):
    """k must sit where a key's expected daily requests stop paying for its storage and recomputation.

    The break-even is computed here from the cost model's definition, independently of the code:
    a stored key costs its bytes (twice: two table versions) and one batch prediction per refresh;
    each request it absorbs saves one online prediction at the online utilisation. The true
    optimal head r* is then every rank whose expected daily requests exceed that break-even. The
    recommendation only sees a 2-million-request sample, so k is allowed +-40% around r*.
    """
    facts, costs = ModelFacts(), CostParams(staleness_hours=2.0)
    figures = figures_from_log(zipf_counts)
    advice = recommend(figures, facts, costs)

    price = costs.cpu_cost_per_core_hour
    saved_per_request = facts.cpu_ms / 1000 / 3600 / costs.online_cpu_utilization * price
    row_gb = (facts.prediction_bytes + KEY_BYTES + ROW_OVERHEAD_BYTES) * TABLE_VERSIONS / 1e9
    per_key_day = row_gb * costs.storage_cost_per_gb_month / (365.25 / 12) + (
        facts.cpu_ms / 1000 / 3600 * (24 / costs.staleness_hours) * price
    )
    break_even = per_key_day / saved_per_request
    r_star = int(np.count_nonzero(zipf_probabilities * figures.requests_per_day >= break_even))

    assert advice.mode == "hybrid"
    assert advice.break_even_requests_per_key_day == pytest.approx(break_even, rel=1e-9)
    assert 0.6 * r_star <= advice.head_size <= 1.4 * r_star
    assert advice.head_size <= 0.02 * ZIPF_UNIVERSE
    # the held-out hit ratio is an honest estimate of what that head really serves
    true_coverage = float(zipf_probabilities[: advice.head_size].sum())
    assert advice.expected_hit_ratio == pytest.approx(true_coverage, abs=0.03)
    assert advice.expected_hit_ratio >= 0.8
    hybrid, dynamic = advice.estimate("hybrid"), advice.estimate("dynamic")
    assert hybrid.total_cost_per_day <= 0.9 * dynamic.total_cost_per_day
    assert hybrid.latency_p50_ms < dynamic.latency_p50_ms


def test_tight_latency_target_grows_the_head_until_it_is_met(zipf_counts):
    relaxed = recommend(figures_from_log(zipf_counts), ModelFacts(), CostParams(staleness_hours=2.0))
    tight = recommend(
        figures_from_log(zipf_counts), ModelFacts(), CostParams(staleness_hours=2.0, latency_target_ms=40.0)
    )
    assert tight.mode == "hybrid"
    assert tight.required_hit_ratio > relaxed.expected_hit_ratio
    assert tight.head_size > relaxed.head_size
    assert tight.expected_hit_ratio >= tight.required_hit_ratio
    assert tight.estimate("hybrid").latency_p99_ms <= 40.0
    assert not tight.estimate("dynamic").feasible
    assert "hit ratio of at least" in tight.head_rule


def test_closed_universe_with_daily_refresh_makes_uniform_traffic_static(uniform_counts):
    figures = figures_from_log(uniform_counts, universe_size=10**6)
    daily = recommend(figures, ModelFacts(), CostParams(staleness_hours=24.0))
    hourly = recommend(figures, ModelFacts(), CostParams(staleness_hours=1.0))
    # 10^6 keys x 20 ms once a day is cheaper than 10^5 requests online; 24 times a day it is not
    assert daily.mode == "static" and daily.estimate("static").stored_keys == 10**6
    assert hourly.mode == "dynamic"
    assert hourly.estimate("static").total_cost_per_day > hourly.estimate("dynamic").total_cost_per_day


def test_zero_staleness_rules_out_every_precomputed_answer(closed_counts):
    advice = recommend(figures_from_log(closed_counts), ModelFacts(), CostParams(staleness_hours=0.0))
    assert advice.mode == "dynamic"
    assert "staleness is 0" in advice.estimate("static").problems[0]
    assert not advice.estimate("hybrid").feasible


def test_nothing_feasible_says_none_and_why(uniform_counts):
    facts = ModelFacts(latency_p50_ms=100.0, latency_p99_ms=400.0)
    advice = recommend(figures_from_log(uniform_counts), facts, CostParams(latency_target_ms=150.0))
    assert advice.mode == "none"
    assert advice.reasons[0] == "no mode meets the constraints"
    assert any("dynamic is out: model p99 latency 400 ms" in r for r in advice.reasons)
    assert advice.to_status()["mode"] == "none"


def test_status_form_is_small_and_serialisable(zipf_counts):
    advice = recommend(figures_from_log(zipf_counts), ModelFacts(), CostParams(staleness_hours=2.0))
    status = advice.to_status()
    assert set(status) == {
        "mode",
        "source",
        "costPerDay",
        "latencyP99Ms",
        "headSize",
        "expectedHitRatio",
        "reason",
    }
    assert status["headSize"] == advice.head_size and isinstance(status["headSize"], int)
    assert 0 < status["expectedHitRatio"] <= 1
    assert len(status["reason"]) <= STATUS_REASON_CHARS
    assert json.loads(json.dumps(status)) == status
    assert json.loads(advice.model_dump_json())["mode"] == "hybrid"


def test_sample_limited_head_is_flagged(zipf_counts):
    # a day-long staleness makes keys worth storing at ~0.6 requests a day: rarer than the log can rank
    advice = recommend(figures_from_log(zipf_counts), ModelFacts(), CostParams(staleness_hours=24.0))
    assert "a longer log may justify a larger head" in advice.head_rule
