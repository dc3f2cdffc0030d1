"""Per-check windows and the judged endpoints, as a real Prometheus answers the operator's own
queries (`analysis.run` through `PrometheusProvider`).

A small exporter on 127.0.0.1 plays a bento whose API is not `/predict`: BentoML's request
counter and latency histogram for `/classify` (10 requests/s), `/v1.classify` (10/s) and
`/v1xclassify` (30/s, which a regex with an unescaped dot would also match). A real Prometheus
scrapes it every second with the target labels a PodMonitor adds.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from prometheus_client import CollectorRegistry, Counter, Histogram, start_http_server

from modelrollout.api.spec import parse_spec
from modelrollout.metrics.prometheus import PrometheusProvider
from modelrollout.rollout import analysis
from tests.integration.prometheus import ScrapeTarget, free_port, running_prometheus

pytestmark = pytest.mark.integration

RATES = {"/classify": 10, "/v1.classify": 10, "/v1xclassify": 30}  # requests per second
LABELS = {"namespace": "ml", "modelrollout_deployment": "iris", "track": "canary"}
SHORT, LONG = 3, 12  # seconds: the two windows


class FakeBento:
    """BentoML's metric names and labels, fed at fixed rates by a thread (bounded lifetime)."""

    def __init__(self, lifetime_s: float = 120.0) -> None:
        self.registry = CollectorRegistry()
        self.requests = Counter(
            "bentoml_service_request",
            "requests",
            ["endpoint", "http_response_code", "service_name"],
            registry=self.registry,
        )
        self.duration = Histogram(
            "bentoml_service_request_duration_seconds",
            "latency",
            ["endpoint", "service_name"],
            registry=self.registry,
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.5, 1.0),
        )
        self.port = free_port()
        self.stop = threading.Event()
        self.lifetime_s = lifetime_s

    def feed(self) -> None:
        deadline = time.monotonic() + self.lifetime_s
        while not self.stop.is_set() and time.monotonic() < deadline:
            for endpoint, rate in RATES.items():
                self.requests.labels(endpoint, "200", "classifier").inc(rate / 10)
                self.duration.labels(endpoint, "classifier").observe(0.02)
            self.stop.wait(0.1)

    def __enter__(self) -> FakeBento:
        self.server, self.thread = start_http_server(self.port, addr="127.0.0.1", registry=self.registry)
        self.feeder = threading.Thread(target=self.feed, daemon=True)
        self.feeder.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self.feeder.join(timeout=5)
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def provider(tmp_path_factory) -> Iterator[PrometheusProvider]:
    with FakeBento() as bento:
        target = ScrapeTarget(f"127.0.0.1:{bento.port}", LABELS)
        with running_prometheus([target], workdir=tmp_path_factory.mktemp("prom")) as prom:
            prom.wait_for(
                f'sum(increase(bentoml_service_request_total{{endpoint="/classify"}}[{LONG}s]))',
                lambda v: v >= 0.8 * RATES["/classify"] * LONG,
                timeout_s=40,
            )
            client = PrometheusProvider(prom.url, timeout=5.0)
            yield client
            client.close()


def judge(provider, *, endpoints: list[str] | None = None, checks: list[dict]):
    analysis_spec = {
        "prometheus": {"address": "http://unused:9090"},
        "interval": f"{SHORT}s",
        "minSamples": 5,
        "metrics": checks,
        **({"endpoints": endpoints} if endpoints else {}),
    }
    spec = parse_spec(
        {"model": {"name": "iris", "version": "2", "image": "x:2"}, "rollout": {"analysis": analysis_spec}}
    )
    results = analysis.run(
        spec.rollout.analysis,
        provider,
        namespace="ml",
        name="iris",
        canary_version="2",
        stable_version="1",
        now=datetime.now(UTC),
    )
    return {r.metric: r for r in results}


ERRORS = {"template": "error-rate", "max": 0.01}


def test_each_check_is_measured_over_its_own_window(provider):
    r = judge(
        provider,
        endpoints=["/classify"],
        checks=[{"name": "short", **ERRORS}, {"name": "long", **ERRORS, "window": f"{LONG}s"}],
    )
    assert f"[{SHORT}s]" in r["short"].query and f"[{LONG}s]" in r["long"].query
    assert r["short"].verdict == "pass" and r["long"].verdict == "pass"
    # samples are the requests in each window: four times the window, about four times the samples
    ratio = r["long"].samples / r["short"].samples
    assert 2.5 < ratio < 6, (r["short"].samples, r["long"].samples)
    assert r["long"].samples == pytest.approx(RATES["/classify"] * LONG, rel=0.35)


def test_a_classify_bento_is_inconclusive_on_predict_and_judged_on_classify(provider):
    latency = {"name": "p99", "template": "latency-p99", "max": 0.5}
    on_predict = judge(provider, checks=[latency, {"name": "errors", **ERRORS}])  # the default endpoint
    assert {c.verdict for c in on_predict.values()} == {"inconclusive"}
    assert on_predict["errors"].samples == 0.0
    on_classify = judge(provider, endpoints=["/classify"], checks=[latency, {"name": "errors", **ERRORS}])
    assert {c.verdict for c in on_classify.values()} == {"pass"}
    assert 0.01 < on_classify["p99"].value <= 0.025  # the 20 ms observations' bucket


def test_endpoints_are_matched_literally(provider):
    long_errors = {"name": "errors", **ERRORS, "window": f"{LONG}s"}
    dotted = judge(provider, endpoints=["/v1.classify"], checks=[long_errors])["errors"]
    # only /v1.classify (10/s); an unescaped dot would add /v1xclassify (30/s): 4x as many
    assert dotted.samples == pytest.approx(RATES["/v1.classify"] * LONG, rel=0.35)
    both = judge(provider, endpoints=["/classify", "/v1.classify"], checks=[long_errors])["errors"]
    assert both.samples == pytest.approx((RATES["/classify"] + RATES["/v1.classify"]) * LONG, rel=0.35)
    assert 'endpoint=~"/v1\\\\.classify"' in dotted.query  # the PromQL string escapes the regex escape
