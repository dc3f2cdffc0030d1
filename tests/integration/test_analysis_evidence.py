"""Issue 12's impossible evidence, as a real Prometheus answers it.

A real Prometheus (no scrape targets needed: the queries build their own values) answers the
operator's own provider and `analysis.run_check`: `... or vector(0)` on a series nobody
exports is 0 with no samples behind it, and a division by zero is "+Inf" on the wire. Neither
may pass a check; the unit tests drive the same verdicts through `decide()`.
"""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest

from modelrollout.api.checks import MetricCheck
from modelrollout.metrics.prometheus import PrometheusProvider
from modelrollout.rollout import analysis
from tests.integration.prometheus import prometheus_factory  # noqa: F401 - the fixture

pytestmark = pytest.mark.integration

CANARY = analysis.variables(namespace="default", name="iris", track="canary", version="2", interval="30s")
STABLE = {**CANARY, "track": "stable", "version": "1"}
# 30 on the canary track, 1/0 = +Inf on the stable track (label_replace carries {{track}}).
PER_TRACK = (
    'sum(label_replace(vector(30), "t", "{{track}}", "", "") '
    'unless on(t) label_replace(vector(1), "t", "stable", "", "")) '
    'or sum(label_replace(vector(1), "t", "{{track}}", "", "")) / 0'
)


@pytest.fixture
def provider(prometheus_factory):  # noqa: F811 - pytest injects the imported fixture
    prom = prometheus_factory([])
    client = PrometheusProvider(prom.url, timeout=5.0)
    yield client
    client.close()


def judge(provider, **check):
    return analysis.run_check(
        MetricCheck.model_validate({"name": "m", "template": "custom", **check}),
        provider,
        canary=CANARY,
        stable=STABLE,
        min_samples=20,
        now=datetime.now(UTC),
    )


def test_or_vector_zero_without_canary_traffic_is_inconclusive(provider):
    r = judge(
        provider,
        query='sum(rate(nobody_errors_total{track="{{track}}"}[{{interval}}])) or vector(0)',
        samplesQuery='sum(increase(nobody_requests_total{track="{{track}}"}[{{interval}}]))',
        max=0.1,
    )
    assert r.value == 0.0 and r.samples == 0.0  # a value, but no sample behind it
    assert r.verdict == "inconclusive" and r.message == "0 samples < minSamples 20"


def test_a_stable_value_of_plus_inf_from_prometheus_is_unknown(provider):
    assert math.isinf(provider.query(PER_TRACK.replace("{{track}}", "stable")))
    r = judge(provider, query=PER_TRACK, samplesQuery="sum(vector(100))", relativeToStable={"maxRatio": 1.2})
    assert r.value == 30.0 and r.stable_value is None and r.samples == 100.0
    assert r.verdict == "inconclusive" and "stable value is inf" in r.message
