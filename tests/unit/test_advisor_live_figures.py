"""Turning live figures into recommender input, and rejecting bad live queries early."""

from __future__ import annotations

import socket

import pytest

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.live import (
    LiveFigures,
    LiveMetricNames,
    facts_from_live,
    figures_from_live,
    read_live,
)
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams
from modelrollout.advisor.recommend import recommend

LATENCIES = {"lookup_p50": 1.2, "lookup_p99": 4.0, "model_p50": 35.0, "model_p99": 90.0}


def live(hits: float, misses: float, head: int | None = 5000, latencies=None) -> LiveFigures:
    return LiveFigures(
        window="5m", hits_per_second=hits, misses_per_second=misses, head_size=head,
        latencies_ms=LATENCIES if latencies is None else latencies,
    )  # fmt: skip


def test_live_figures_are_one_point_of_the_coverage_curve():
    figures = figures_from_live(live(90.0, 10.0))
    assert figures.requests_per_day == pytest.approx(100 * 86_400)
    assert figures.total_requests == 100 * 300
    assert figures.coverage.head_sizes.tolist() == [0, 5000]
    assert figures.coverage.hit_ratios.tolist() == pytest.approx([0.0, 0.9])
    assert figures.unseen_key_share == pytest.approx(0.1) and figures.cardinality == 5000
    assert figures.rate_basis == "live, last 5m"


def test_live_latencies_replace_the_given_ones_only_where_measured():
    facts = facts_from_live(live(1, 1), ModelFacts())
    assert (facts.latency_p50_ms, facts.latency_p99_ms) == (35.0, 90.0)
    assert (facts.lookup_p50_ms, facts.lookup_p99_ms) == (1.2, 4.0)
    assert facts.cpu_ms == ModelFacts().cpu_ms
    partial = facts_from_live(live(1, 1, latencies={"model_p50": 35.0, "model_p99": None}), ModelFacts())
    assert partial == ModelFacts()


def test_live_advice_keeps_a_paying_head_and_drops_one_that_does_not():
    paying = recommend(figures_from_live(live(900.0, 100.0)), ModelFacts(), CostParams())
    assert paying.mode == "hybrid" and paying.head_size == 5000
    # a trickle of traffic: the head saves less than it costs to keep the model server and table
    idle = recommend(figures_from_live(live(0.009, 0.001)), ModelFacts(), CostParams(staleness_hours=1))
    assert idle.mode == "dynamic"
    # almost no misses on a closed set: the table alone can serve
    closed = recommend(figures_from_live(live(1000.0, 0.0), universe_size=5000), ModelFacts(), CostParams())
    assert closed.mode == "static"


def test_unknown_head_or_inconsistent_universe_is_rejected():
    with pytest.raises(AdvisorError, match="head size of the running table is unknown"):
        figures_from_live(live(1, 1, head=None))
    with pytest.raises(AdvisorError, match="smaller than the 5000 keys"):
        figures_from_live(live(1, 1), universe_size=10)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"window": "five minutes"}, "expected a Prometheus duration"),
        ({"names": LiveMetricNames(lookup_counter="bad name{}")}, "is not a Prometheus metric or label name"),
        ({"names": LiveMetricNames(deployment_label="app.kubernetes.io/name")}, "metric or label name"),
    ],
)
def test_bad_live_query_parameters_fail_before_any_query(kwargs, message):
    with pytest.raises(AdvisorError, match=message):
        read_live("http://127.0.0.1:9", deployment="d", namespace="n", **kwargs)


def test_unreachable_prometheus_is_a_clear_error():
    with socket.socket() as sock:  # a port nothing listens on
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    with pytest.raises(
        AdvisorError,
        match=r"Prometheus query failed: .*unreachable: .*Connection refused \(ConnectionError\)",
    ):
        read_live(f"http://127.0.0.1:{port}", deployment="d", namespace="n", timeout_seconds=2)
