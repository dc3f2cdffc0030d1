"""Verdicts of single checks and of analysis runs; strict query templates."""

from __future__ import annotations

import math

import pytest

from modelrollout.api.checks import MetricCheck
from modelrollout.api.status import CheckResult
from modelrollout.metrics.provider import ProviderError
from modelrollout.rollout import analysis, templates
from modelrollout.rollout.verdict import assess, overall

NAN = math.nan


def mc(**kw):
    return MetricCheck.model_validate({"name": "m", "template": "latency-p99", **kw})


@pytest.mark.parametrize(
    ("check", "value", "stable", "samples", "verdict"),
    [
        (mc(max=0.5), 0.2, None, 100, "pass"),
        (mc(max=0.5), 0.7, None, 100, "fail"),
        # +Inf says "beyond the largest bucket", not by how much: unknown, like NaN (issue 12)
        (mc(max=0.5), math.inf, None, 100, "inconclusive"),
        (mc(min=0.9), 0.95, None, 100, "pass"),
        (mc(min=0.9), 0.85, None, 100, "fail"),
        (mc(max=0.5), None, None, 100, "inconclusive"),  # no data
        (mc(max=0.5), NAN, None, 100, "inconclusive"),  # NaN is never a pass
        (mc(max=0.5), 0.1, None, 3, "inconclusive"),  # too few samples
        (mc(max=0.5), 0.1, None, NAN, "inconclusive"),
        (mc(relativeToStable={"maxRatio": 1.2}), 0.11, 0.10, 100, "pass"),
        (mc(relativeToStable={"maxRatio": 1.2}), 0.13, 0.10, 100, "fail"),
        (mc(relativeToStable={"maxRatio": 1.2}), 0.13, None, 100, "inconclusive"),
        (mc(relativeToStable={"maxRatio": 1.2}), 0.13, NAN, 100, "inconclusive"),
        (mc(template="accuracy", relativeToStable={"maxDecrease": 0.02}), 0.95, 0.96, 100, "pass"),
        (mc(template="accuracy", relativeToStable={"maxDecrease": 0.02}), 0.90, 0.96, 100, "fail"),
        (
            mc(template="error-rate", relativeToStable={"maxIncrease": 0.01}, max=0.05),
            0.012,
            0.01,
            100,
            "pass",
        ),
        (
            mc(template="error-rate", relativeToStable={"maxIncrease": 0.01}, max=0.05),
            0.03,
            0.01,
            100,
            "fail",
        ),
        (mc(template="error-rate", max=0.05), 0.0, None, 100, "pass"),
        # Non-finite on either track is unknown (issue 12): never a pass, never a bound.
        (mc(max=0.5), -math.inf, None, 100, "inconclusive"),  # -Inf would pass any max
        (mc(min=0.9), math.inf, None, 100, "inconclusive"),  # +Inf would pass any min
        (mc(relativeToStable={"maxRatio": 1.2}), 30.0, math.inf, 100, "inconclusive"),
        (mc(relativeToStable={"maxRatio": 1.2}), 30.0, -math.inf, 100, "inconclusive"),
        (
            mc(template="accuracy", relativeToStable={"maxDecrease": 0.02}),
            0.1,
            -math.inf,
            100,
            "inconclusive",
        ),
        (mc(relativeToStable={"maxRatio": 1.2}), 1.7e308, 1.7e308, 100, "inconclusive"),  # bound overflows
        # ... unless an absolute bound already fails on a known canary value
        (mc(max=0.5, relativeToStable={"maxRatio": 1.2}), 0.7, NAN, 100, "fail"),
        (mc(max=0.5, relativeToStable={"maxRatio": 1.2}), 0.7, math.inf, 100, "fail"),
        (mc(max=0.5, relativeToStable={"maxRatio": 1.2}), 0.3, math.inf, 100, "inconclusive"),
        # samples: unknown or too few is inconclusive, whatever the value
        (mc(max=0.5), 0.1, None, math.inf, "inconclusive"),
        (mc(max=0.5), 0.1, None, None, "inconclusive"),  # no samples query, gate on
        (mc(max=0.5), 0.9, None, 3, "inconclusive"),  # too few samples to fail, too
    ],
)
def test_assess(check, value, stable, samples, verdict):
    got, threshold, message = assess(check, value=value, stable_value=stable, samples=samples, min_samples=20)
    assert got == verdict, message
    assert threshold


def test_failure_message_names_value_and_bound():
    verdict, _, message = assess(mc(max=0.5), value=0.734, stable_value=None, samples=50, min_samples=20)
    assert verdict == "fail" and "0.734" in message and "<= 0.5" in message


def result(verdict):
    return CheckResult(metric="m", query="q", verdict=verdict, time="t")


@pytest.mark.parametrize(
    ("verdicts", "expected"),
    [
        (["pass", "pass"], "pass"),
        (["pass", "inconclusive"], "inconclusive"),
        (["error", "inconclusive"], "error"),
        (["fail", "error", "pass"], "fail"),
        ([], "inconclusive"),  # no checks is no evidence, never a pass
    ],
)
def test_overall(verdicts, expected):
    assert overall([result(v) for v in verdicts]) == expected


def test_templates_render_strictly_and_escape():
    variables = analysis.variables(namespace="ns", name="iris", track="canary", version="2", interval="30s")
    query = templates.render(templates.TEMPLATES["latency-p99"], variables)
    assert 'track="canary"' in query and "[30s]" in query and "{{" not in query
    with pytest.raises(templates.TemplateError, match="undefined variable.*nope"):
        templates.render('up{x="{{nope}}"}', variables)
    assert templates.render('{a="{{name}}"}', {"name": 'x"y'}) == '{a="x\\"y"}'


class ScriptedProvider:
    def __init__(self, answers):
        self.answers, self.queries = answers, []

    def query(self, promql):
        self.queries.append(promql)
        answer = self.answers(promql)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_run_check_queries_canary_stable_and_samples():
    check = mc(relativeToStable={"maxRatio": 1.2})
    provider = ScriptedProvider(
        lambda q: 50.0 if "increase" in q else (0.3 if 'track="canary"' in q else 0.2)
    )
    canary = analysis.variables(namespace="ns", name="iris", track="canary", version="2", interval="30s")
    stable = {**canary, "track": "stable", "version": "1"}
    r = analysis.run_check(check, provider, canary=canary, stable=stable, min_samples=20, now=_now())
    assert r.verdict == "fail" and r.value == 0.3 and r.stable_value == 0.2 and r.samples == 50
    assert 'track="stable"' in r.stable_query and len(provider.queries) == 3


def test_unreachable_provider_and_undefined_variable_are_errors_not_failures():
    canary = analysis.variables(namespace="ns", name="iris", track="canary", version="2", interval="30s")
    down = ScriptedProvider(lambda q: ProviderError("unreachable"))
    r = analysis.run_check(mc(max=1), down, canary=canary, stable=canary, min_samples=1, now=_now())
    assert r.verdict == "error" and "unreachable" in r.message
    bad = mc(template="custom", query='up{job="{{job}}"}', samplesQuery="sum(up)", max=1)
    r = analysis.run_check(
        bad, ScriptedProvider(lambda q: 1.0), canary=canary, stable=canary, min_samples=1, now=_now()
    )
    assert r.verdict == "error" and "job" in r.message


def test_nan_and_inf_are_kept_out_of_the_status_values():
    canary = analysis.variables(namespace="ns", name="iris", track="canary", version="2", interval="30s")
    inf = ScriptedProvider(lambda q: 100.0 if "increase" in q else math.inf)
    r = analysis.run_check(mc(max=1), inf, canary=canary, stable=canary, min_samples=1, now=_now())
    assert r.verdict == "inconclusive" and r.value is None and "inf" in r.message
    r.model_dump_json()  # serialisable (JSON has no NaN/Inf)


def _now():
    from datetime import UTC, datetime

    return datetime(2026, 11, 21, tzinfo=UTC)


def test_a_check_with_its_gate_off_is_judged_without_samples():
    verdict, _, _ = assess(mc(max=0.5), value=0.1, stable_value=None, samples=None, min_samples=0)
    assert verdict == "pass"


def test_run_check_uses_the_checks_own_samples_query_and_minimum():
    check = mc(
        template="custom",
        query='sum(rate(x{track="{{track}}"}[{{interval}}]))',
        samplesQuery='sum(increase(n{track="{{track}}"}[{{interval}}]))',
        minSamples=5,
        max=1,
    )
    provider = ScriptedProvider(lambda q: 6.0 if q.startswith("sum(increase(n") else 0.5)
    canary = analysis.variables(namespace="ns", name="iris", track="canary", version="2", interval="30s")
    r = analysis.run_check(check, provider, canary=canary, stable=canary, min_samples=20, now=_now())
    assert r.verdict == "pass" and r.samples == 6.0  # 6 >= the check's 5 (the analysis says 20)
    assert 'sum(increase(n{track="canary"}[30s]))' in provider.queries
