"""ServingRuntime: what happens around each model call (logging, counting, faults)."""

from __future__ import annotations

import random
import time

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.config import RuntimeConfig
from modelrollout.runtime.faults import FaultInjector, InjectedFault, should_fail
from modelrollout.runtime.metrics import runtime_metrics
from modelrollout.runtime.serving import ServingRuntime


def make_runtime(registry=None, log=None, **env) -> tuple[ServingRuntime, CollectorRegistry]:
    registry = registry or CollectorRegistry()
    config = RuntimeConfig.from_env({f"MODELROLLOUT_{k.upper()}": str(v) for k, v in env.items()})
    config = config.with_model_defaults(model_name="iris-classifier", model_version="v1")
    runtime = ServingRuntime(config, metrics=runtime_metrics(registry), log=log, rng=random.Random(7))
    return runtime, registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


class ListSink:
    """Collects what the runtime queues for the prediction log."""

    def __init__(self) -> None:
        self.rows: list[tuple] = []

    def put(self, rows) -> bool:
        self.rows.extend(rows)
        return True


def test_predictions_are_logged_counted_and_receipted():
    sink = ListSink()
    runtime, registry = make_runtime(track="canary", log=sink)
    receipt = runtime.after_prediction("r1", ["setosa", "virginica"], client_request_id="order-7")
    assert (receipt.request_id, receipt.model, receipt.version, receipt.track) == (
        "r1",
        "iris-classifier",
        "v1",
        "canary",
    )
    labels = {"model": "iris-classifier", "version": "v1", "track": "canary"}
    assert value(registry, "modelrollout_predictions_total", **labels, path="model") == 2
    assert [(r[0], r[1], r[3:6], r[6], r[7], r[8]) for r in sink.rows] == [
        ("r1", 0, ("iris-classifier", "v1", "canary"), None, "setosa", "order-7"),
        ("r1", 1, ("iris-classifier", "v1", "canary"), None, "virginica", "order-7"),
    ]
    assert all(abs(r[2] - time.time()) < 5 for r in sink.rows)


def test_lookup_answers_are_logged_with_their_keys_and_unanswered_keys_are_not():
    sink = ListSink()
    runtime, _ = make_runtime(log=sink)
    runtime.log_predictions("r2", ["a", None, 1.5], keys=[17, 18, {"user": 7, "region": "eu"}])
    assert [(r[1], r[6], r[7]) for r in sink.rows] == [(0, "17", "a"), (2, '{"region":"eu","user":7}', "1.5")]


def test_hybrid_rows_are_counted_per_path():
    runtime, registry = make_runtime()
    runtime.after_prediction("r1", ["a", "b", "c"], paths=["lookup", "model", "lookup"])
    labels = {"model": "iris-classifier", "version": "v1", "track": "stable"}
    assert value(registry, "modelrollout_predictions_total", **labels, path="lookup") == 2
    assert value(registry, "modelrollout_predictions_total", **labels, path="model") == 1


def test_paths_must_match_the_number_of_predictions():
    runtime, _ = make_runtime()
    with pytest.raises(ValueError, match="2 paths for 3 predictions"):
        runtime.after_prediction("r1", ["a", "b", "c"], paths=["lookup", "model"])


def test_runtime_needs_a_model_name_and_version():
    with pytest.raises(ValueError, match="with_model_defaults"):
        ServingRuntime(RuntimeConfig.from_env({}), metrics=runtime_metrics(CollectorRegistry()))


@pytest.mark.parametrize(
    ("rate", "draw", "fails"), [(0.0, 0.0, False), (1.0, 0.999, True), (0.3, 0.29, True), (0.3, 0.3, False)]
)
def test_should_fail_compares_the_draw_with_the_rate(rate, draw, fails):
    assert should_fail(error_rate=rate, draw=draw) is fails


async def test_injected_latency_delays_each_prediction():
    runtime, _ = make_runtime(inject_latency_ms=60)
    started = time.perf_counter()
    await runtime.before_prediction()
    assert time.perf_counter() - started >= 0.06


async def test_injected_error_rate_fails_about_that_share_of_predictions():
    injector = FaultInjector(error_rate=0.25, rng=random.Random(1))
    failures = 0
    for _ in range(2000):
        try:
            await injector.apply()
        except InjectedFault:
            failures += 1
    assert 400 <= failures <= 600


async def test_no_faults_by_default():
    runtime, _ = make_runtime()
    assert not runtime.faults.active
    for _ in range(100):
        await runtime.before_prediction()
