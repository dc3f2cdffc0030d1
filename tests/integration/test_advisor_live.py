"""Live advice from a real Prometheus scraping a real exporter of hybrid lookup metrics.

A prometheus_client exporter (in this process) exposes the runtime's lookup metrics: 4 hits per
miss for deployment ml/clf and only misses (and a slow model) for another deployment, lookup
(~1.5 ms), model (~30 ms) and request latencies, with a slow health-probe endpoint that the
request latency must leave out. Prometheus
(/usr/bin/prometheus on 127.0.0.1, 1 s scrape interval) scrapes it; the advisor must read the
figures of ml/clf only.
"""

from __future__ import annotations

import argparse
import json
import shutil
import socket
import threading
import time

import pytest
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, start_http_server

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.live import advise_live, facts_from_live, figures_from_live, read_live
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams
from modelrollout.advisor.recommend import recommend
from modelrollout.cli import advise_cmd
from tests.integration.prometheus import ScrapeTarget, running_prometheus

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs /usr/bin/prometheus"),
]

BUCKETS = (0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 2.0)
TICK_SECONDS = 0.02
WINDOW = "5s"
WINDOW_SECONDS = 5


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def wait_for(check, *, seconds: float, what: str):
    deadline = time.monotonic() + seconds
    last = None
    while time.monotonic() < deadline:
        try:
            result = check()
            if result:
                return result
        except Exception as err:  # not up yet
            last = err
        time.sleep(0.25)
    raise AssertionError(f"{what} not reached within {seconds} s (last error: {last})")


@pytest.fixture(scope="module")
def exporter():
    registry = CollectorRegistry()
    # the runtime's metrics, with the labels the PodMonitor relabeling adds in a cluster
    scope = ["modelrollout_deployment", "namespace"]
    lookups = Counter("modelrollout_lookup", "lookups", ["result", *scope], registry=registry)
    table = Gauge("modelrollout_lookup_table_keys", "rows", scope, registry=registry)
    paths = Histogram("modelrollout_lookup_duration_seconds", "answer paths", ["path", *scope],
                      buckets=BUCKETS, registry=registry)  # fmt: skip
    request = Histogram("bentoml_service_request_duration_seconds", "requests", ["endpoint", *scope],
                        buckets=BUCKETS, registry=registry)  # fmt: skip
    table.labels("clf", "ml").set(1234)
    stop = threading.Event()
    ticks: list[float] = []

    def traffic():
        deadline = time.monotonic() + 120  # bounded even if the test never stops it
        while not stop.is_set() and time.monotonic() < deadline:
            lookups.labels("hit", "clf", "ml").inc(4)
            lookups.labels("miss", "clf", "ml").inc(1)
            lookups.labels("miss", "other", "ml").inc(50)
            for _ in range(5):
                paths.labels("lookup", "clf", "ml").observe(0.0015)
            paths.labels("model", "clf", "ml").observe(0.030)
            paths.labels("model", "other", "ml").observe(1.0)
            for _ in range(4):
                request.labels("/predict", "clf", "ml").observe(0.0018)
            request.labels("/predict", "clf", "ml").observe(0.032)
            request.labels("/healthz", "clf", "ml").observe(1.5)
            ticks.append(time.monotonic())
            stop.wait(TICK_SECONDS)

    port = free_port()
    server, _ = start_http_server(port, addr="127.0.0.1", registry=registry)
    worker = threading.Thread(target=traffic, daemon=True)
    worker.start()
    yield port, ticks
    stop.set()
    worker.join(timeout=5)
    server.shutdown()


@pytest.fixture(scope="module")
def prometheus(exporter):
    exporter_port, _ = exporter
    with running_prometheus([ScrapeTarget(f"127.0.0.1:{exporter_port}")]) as server:
        yield server.url


@pytest.fixture(scope="module")
def live(prometheus):
    from prometheus_api_client import PrometheusConnect

    # rate() divides by the whole window: wait until the series is older than the window
    client = PrometheusConnect(url=prometheus)
    series = 'modelrollout_lookup_total{modelrollout_deployment="clf",result="hit"}'
    samples = f"count_over_time({series}[{2 * WINDOW_SECONDS}s])"
    wait_for(
        lambda: float(client.custom_query(samples)[0]["value"][1]) >= WINDOW_SECONDS + 2,
        seconds=30,
        what="a series older than the rate window",
    )

    def complete():
        figures = read_live(prometheus, deployment="clf", namespace="ml", window=WINDOW)
        return figures if all(v is not None for v in figures.latencies_ms.values()) else None

    return wait_for(complete, seconds=30, what="live figures with rates and latencies")


def test_hit_ratio_rate_and_head_size_of_one_deployment_are_read(live, exporter):
    _, ticks = exporter
    assert live.hit_ratio == pytest.approx(0.8, abs=0.02)
    recent = [t for t in list(ticks) if t >= ticks[-1] - 30]
    lookups_per_second = 5 * (len(recent) - 1) / (recent[-1] - recent[0])
    assert live.requests_per_second == pytest.approx(lookups_per_second, rel=0.25)
    assert live.head_size == 1234


def test_path_latencies_come_from_their_histograms(live):
    ms = live.latencies_ms
    assert 1.0 <= ms["lookup_p50"] <= 2.0 and 1.0 <= ms["lookup_p99"] <= 2.0
    assert 25.0 <= ms["model_p50"] <= 50.0 and 25.0 <= ms["model_p99"] <= 50.0
    # the health probe's 1.5 s is filtered out by the endpoint label
    assert ms["request_p99"] <= 50.0


def test_live_figures_feed_the_recommender(live):
    figures = figures_from_live(live)
    facts = facts_from_live(live, ModelFacts())
    assert facts.source == f"live latencies, last {WINDOW}" and 25.0 <= facts.latency_p50_ms <= 50.0
    advice = recommend(figures, facts, CostParams())
    assert advice.mode == "hybrid" and advice.head_size == 1234
    assert advice.expected_hit_ratio == pytest.approx(live.hit_ratio)
    assert "20.0% of requests would be for keys not in the table" in advice.estimate("static").problems[0]


def test_operator_gets_status_advice_in_one_call(prometheus, live):
    advice = advise_live(prometheus, deployment="clf", namespace="ml", window=WINDOW, costs=CostParams())
    status = advice.to_status()
    assert status["mode"] == "hybrid" and status["headSize"] == 1234 and status["source"] == "live"
    assert status["expectedHitRatio"] == pytest.approx(0.8, abs=0.02)


def test_cli_advises_from_prometheus(prometheus, live, capsys):
    parser = argparse.ArgumentParser(prog="modelrollout")
    advise_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(
        [
            "advise",
            "--prometheus-url",
            prometheus,
            "--deployment",
            "clf",
            "--namespace",
            "ml",
            "--window",
            WINDOW,
            "--json",
        ]
    )
    assert args.func(args) == 0
    status = json.loads(capsys.readouterr().out)["status"]
    assert status["mode"] == "hybrid" and status["source"] == "live" and status["headSize"] == 1234


def test_deployment_without_lookups_is_a_clear_error(prometheus):
    with pytest.raises(AdvisorError, match="no lookups of ml/absent"):
        read_live(prometheus, deployment="absent", namespace="ml", window=WINDOW)


def test_operator_puts_live_advice_into_status(prometheus, live):
    """The operator's own path: a hybrid ModelDeployment with spec.advisor gets status.advice."""
    from datetime import UTC, datetime

    from modelrollout.advisor import in_status as operator_advice
    from tests.support.samples import md

    deployment = md(
        {
            "mode": "hybrid",
            "batch": {"schedule": "@daily", "input": {"path": "/x", "keyColumns": ["k"]}},
            "advisor": {"prometheus": {"address": prometheus}, "window": WINDOW},
        },
        name="clf",
        namespace="ml",
    )
    now = datetime.now(UTC)
    assert operator_advice.due(deployment, None, now)
    result = operator_advice.compute(deployment, now)
    assert result.error is None and result.mode == "hybrid" and result.head_size == 1234
    assert not operator_advice.due(deployment, result, now)
    down = md(
        {
            "mode": "hybrid",
            "batch": {"schedule": "@daily", "input": {"path": "/x", "keyColumns": ["k"]}},
            "advisor": {"prometheus": {"address": "http://127.0.0.1:9"}},
        },
        name="clf",
        namespace="ml",
    )
    failed = operator_advice.compute(down, now)
    assert failed.mode is None and "Prometheus" in failed.error
