"""Canary rollout end to end with real processes, only Kubernetes replaced.

The operator's own decision core (``rollout.machine.decide``) and analysis (``rollout.analysis.run``
through ``PrometheusProvider``) judge two real ``bentoml serve`` processes - stable runs the good
model v1, canary a challenger - scraped every second by a real Prometheus with the target labels a
PodMonitor would add. A load generator stands in for the router: it splits live traffic by the
weight the last decision asked for and feeds the true label of every prediction back through
``/feedback`` (with the bearer token), so accuracy comes from ground truth as in production: all
servers log to one shared SQLite store and export the figures of their version every second,
which the accuracy check reads by ``model_version``.

What is replaced is only the cluster: each tick reports both tracks ready, the stable track on the
version the stable process runs, and the weight the load generator currently applies as settled.
The loop is bounded (``SCENARIO_TIMEOUT_S``) and sleeps ``min(requeue_after, 1 s)``.

The spec is short (steps 20 % and 50 %, 6 s each, analysis every 5 s over a 5 s window) so the
file runs in about two minutes. With ~6 canary requests a second a p99 is in effect the slowest of
~30 requests, and a loaded 2-core machine has 0.1-0.15 s hiccups next to a 5-10 ms stable p99:
hence ``failureLimit: 1`` (one hiccup is tolerated, a real regression fails twice in a row), a
generous ``maxRatio`` and an accuracy bound of 0.25 below stable (the degraded model is ~0.3).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager

import pytest

from modelrollout.api import conditions as R
from modelrollout.api.spec import parse_spec
from modelrollout.api.status import CheckResult
from modelrollout.rollout import analysis, ground_truth
from modelrollout.rollout.templates import render
from tests.integration.bentoproc import (
    FEEDBACK_TOKEN,
    BentoServer,
    BentoSpec,
    ModelSpec,
    bento_servers,
    trained_store,
)
from tests.integration.loadgen import LoadGenerator
from tests.integration.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from tests.integration.rollout_loop import NAME, NAMESPACE, RolloutLoop, finished, track_labels

pytestmark = pytest.mark.integration

INTERVAL = "5s"
MIN_SAMPLES = 10
LATENCY_MAX_S = 0.5  # generous: a loaded 2-core machine shows ~0.25 s p99 blips on healthy tracks
INJECTED_LATENCY_MS = 1200.0
RATE_PER_S = 30.0
SCENARIO_TIMEOUT_S = 90.0
WARMUP_TIMEOUT_S = 30.0


def rollout_spec(prometheus_url: str, *, version: str, failure_limit: int = 1, error_limit: int = 3):
    return parse_spec(
        {
            "model": {"name": "iris-classifier", "version": version, "image": f"reg/iris:{version}"},
            "rollout": {
                "steps": [{"setWeight": 20, "pause": "6s"}, {"setWeight": 50, "pause": "6s"}],
                "progressDeadline": "60s",
                "scaleDownDelay": "30s",
                "analysis": {
                    "prometheus": {"address": prometheus_url},
                    "interval": INTERVAL,
                    "minSamples": MIN_SAMPLES,
                    "minLabels": MIN_SAMPLES,  # the accuracy check: labelled predictions
                    "failureLimit": failure_limit,
                    "errorLimit": error_limit,
                    "metrics": [
                        {
                            "name": "latency-p99",
                            "template": "latency-p99",
                            "max": LATENCY_MAX_S,
                            "relativeToStable": {"maxRatio": 50},
                        },
                        {"name": "error-rate", "template": "error-rate", "max": 0.05},
                        {
                            "name": "accuracy",
                            "template": "accuracy",
                            "min": 0.7,
                            "relativeToStable": {"maxDecrease": 0.25},
                        },
                    ],
                },
            },
        }
    )


# --- processes ------------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, BentoServer]]:
    """All four servers started at once (in parallel) and reused by every scenario."""
    store = trained_store(
        tmp_path_factory.mktemp("canary-store"),
        [ModelSpec("v1"), ModelSpec("v2"), ModelSpec("v3", quality="degraded")],
    )
    shared = {
        "MODELROLLOUT_GROUND_TRUTH_DSN": f"sqlite:///{tmp_path_factory.mktemp('canary-log')}/truth.sqlite",
        "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "1",
    }
    specs = {
        "stable": BentoSpec(store, "v1", env=shared),
        "healthy": BentoSpec(store, "v2", track="canary", env=shared),
        "slow": BentoSpec(store, "v2", track="canary", inject_latency_ms=INJECTED_LATENCY_MS, env=shared),
        "degraded": BentoSpec(store, "v3", track="canary", env=shared),
    }
    with bento_servers(list(specs.values()), workdir=tmp_path_factory.mktemp("canary-bentos")) as running:
        yield dict(zip(specs, running, strict=True))


@contextmanager
def stage(
    stable: BentoServer, canary: BentoServer, tmp_path
) -> Iterator[tuple[PrometheusServer, LoadGenerator]]:
    """A fresh Prometheus scraping both tracks and stable-only traffic, warmed up until the
    stable track has a full window of samples (relative checks need a stable value)."""
    with ExitStack() as stack:
        targets = [
            ScrapeTarget(stable.target, track_labels("stable", version=stable.spec.version)),
            ScrapeTarget(canary.target, track_labels("canary", version=canary.spec.version)),
        ]
        prom = stack.enter_context(running_prometheus(targets, workdir=tmp_path))
        load = stack.enter_context(
            LoadGenerator(
                stable_url=stable.url,
                canary_url=canary.url,
                rate_per_s=RATE_PER_S,
                max_seconds=SCENARIO_TIMEOUT_S + 60,
                feedback_token=FEEDBACK_TOKEN,
            )
        )
        stable_samples = render(
            ground_truth.SAMPLES["accuracy"],
            analysis.variables(
                namespace=NAMESPACE, name=NAME, track="stable", version="v1", interval=INTERVAL
            ),
        )
        prom.wait_for(stable_samples, lambda v: v >= 2 * MIN_SAMPLES, timeout_s=WARMUP_TIMEOUT_S)
        yield prom, load


def check(results: list[CheckResult], metric: str) -> CheckResult:
    return next(c for c in results if c.metric == metric)


# --- scenarios ------------------------------------------------------------------------------------


def test_healthy_canary_is_promoted_through_every_step(servers, tmp_path):
    with stage(servers["stable"], servers["healthy"], tmp_path) as (prom, load):
        loop = RolloutLoop(rollout_spec(prom.url, version="v2"), prometheus_url=prom.url, load=load)
        d = loop.run_until(lambda lp: lp.phase == "Promoting" or finished(lp))
        assert loop.phase == "Promoting", loop.status.rollout.message
        assert loop.weights() == [20, 50]
        assert d.stable_model.version == "v2"  # the stable track is told to take the candidate
        assert d.stable_version == "v1"  # ... but is not reported as promoted before it has

        r = loop.status.rollout
        assert r.counts.passes >= 2 and r.counts.errors == 0 and r.counts.failures <= 1
        assert {c.metric: c.verdict for c in r.checks} == {
            "latency-p99": "pass",
            "error-rate": "pass",
            "accuracy": "pass",
        }
        for c in r.checks:  # real measurements behind every pass, stable measured for relative checks
            assert c.value is not None and c.samples >= MIN_SAMPLES, c
        assert check(r.checks, "latency-p99").value <= LATENCY_MAX_S
        assert check(r.checks, "accuracy").stable_value is not None
        assert check(r.checks, "accuracy").value >= 0.7
        assert load.stats().sent.get("canary", 0) >= 2 * MIN_SAMPLES

        loop.stable_version = "v2"  # the stable Deployment rolled out the candidate
        d = loop.run_until(finished, timeout_s=10)
        assert loop.phase == "Succeeded" and d.promoted and d.weight == 0
        assert d.stable_version == "v2" and loop.status.stable_version == "v2"
        assert R.PROMOTED in loop.events and R.ANALYSIS_FAILED not in loop.events
        assert not any(x.rolled_back for x in loop.decisions)


def test_slow_canary_is_rolled_back_by_the_latency_gate(servers, tmp_path):
    with stage(servers["stable"], servers["slow"], tmp_path) as (prom, load):
        loop = RolloutLoop(rollout_spec(prom.url, version="v2"), prometheus_url=prom.url, load=load)
        d = loop.run_until(finished)
        r = loop.status.rollout
        assert r.phase == "RolledBack" and d.rolled_back and d.weight == 0 and load.weight == 0
        assert max(loop.weights()) == 20 and not any(x.promoted for x in loop.decisions)
        assert r.counts.failures == 2  # failureLimit 1: the first failure warns, the second rolls back
        assert loop.events.count(R.CHECK_FAILED) == 1 and R.ANALYSIS_FAILED in loop.events

        latency = check(r.checks, "latency-p99")
        assert latency.verdict == "fail"
        assert 1.0 < latency.value <= 2.5  # 1.2 s injected: the (1.0, 2.5] bucket
        assert "<= 0.5" in latency.threshold and "<= 50 x stable" in latency.threshold
        # the stable track is measured too (its p99 on a loaded 2-core machine can itself be ~0.25 s)
        assert latency.stable_value is not None and latency.stable_value < latency.value
        assert check(r.checks, "error-rate").verdict == "pass"
        assert "latency-p99" in r.message and f"{latency.value:.6g}" in r.message and "0.5" in r.message
        assert "histogram_quantile" in r.message and 'track="canary"' in r.message
        assert loop.status.rejected_version == "v2@reg/iris:v2"
        assert d.stable_model.version == "v1" and d.stable_version == "v1"

        # The router stand-in obeys: no new traffic reaches the canary once it is rolled back.
        before = load.stats().sent.get("canary", 0)
        time.sleep(1.5)
        assert load.stats().sent.get("canary", 0) == before


def test_degraded_canary_is_rolled_back_by_the_accuracy_gate(servers, tmp_path):
    with stage(servers["stable"], servers["degraded"], tmp_path) as (prom, load):
        loop = RolloutLoop(rollout_spec(prom.url, version="v3"), prometheus_url=prom.url, load=load)
        d = loop.run_until(finished)
        r = loop.status.rollout
        assert r.phase == "RolledBack" and d.rolled_back and d.weight == 0 and load.weight == 0
        assert not any(x.promoted for x in loop.decisions) and r.counts.failures == 2

        accuracy = check(r.checks, "accuracy")
        assert accuracy.verdict == "fail" and accuracy.samples >= MIN_SAMPLES
        assert accuracy.value < 0.7 and accuracy.stable_value > 0.85
        assert ">= 0.7" in accuracy.threshold and "stable - 0.25" in accuracy.threshold
        assert "accuracy" in r.message and "modelrollout_ground_truth_correct" in r.message
        assert 'model_version="v3"' in r.message and accuracy.coverage is not None and accuracy.coverage > 0.5
        failed_runs = [a for a in loop.analyses if any(c.verdict == "fail" for c in a)]
        assert len(failed_runs) == 2 and all(check(a, "accuracy").verdict == "fail" for a in failed_runs)
        # The labels really went through /feedback and were judged by the servers.
        feedback = load.stats().feedback
        assert feedback.get("correct", 0) > 0 and feedback.get("incorrect", 0) > 0
        assert loop.status.rejected_version == "v3@reg/iris:v3"


def test_prometheus_outage_errors_then_fails_without_ever_promoting(servers, tmp_path):
    with stage(servers["stable"], servers["healthy"], tmp_path) as (prom, load):
        spec = rollout_spec(prom.url, version="v2", error_limit=1)
        loop = RolloutLoop(spec, prometheus_url=prom.url, load=load)
        loop.run_until(lambda lp: lp.status.rollout is not None and lp.status.rollout.counts.passes >= 1)
        assert loop.phase == "Progressing"

        prom.stop()  # Prometheus goes away in the middle of the analysis
        d = loop.run_until(finished)
        r = loop.status.rollout
        assert r.phase == "Failed" and d.rolled_back and d.weight == 0 and load.weight == 0
        assert r.counts.errors == 2 and r.counts.failures == 0  # errorLimit 1: the second error ends it
        assert loop.events.count(R.CHECK_ERROR) == 1 and R.ANALYSIS_ERRORS in loop.events
        assert all(c.verdict == "error" for c in r.checks)
        assert all("unreachable" in c.message and c.value is None for c in r.checks)
        assert "analysis errors" in r.message and "limit 1" in r.message
        assert not any(x.promoted for x in loop.decisions)
        assert all(x.rollout.phase != "Promoting" for x in loop.decisions)
        assert loop.status.stable_version == "v1" and d.stable_model.version == "v1"
