"""ServingRuntime: what happens around each model call (logging, counting, feedback, faults)."""

from __future__ import annotations

import random
import time

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.config import RuntimeConfig
from modelrollout.runtime.faults import FaultInjector, InjectedFault, should_fail
from modelrollout.runtime.metrics import runtime_metrics
from modelrollout.runtime.prediction_log import InMemoryPredictionLog, Origin
from modelrollout.runtime.serving import ServingRuntime


def make_runtime(registry=None, **env) -> tuple[ServingRuntime, CollectorRegistry]:
    registry = registry or CollectorRegistry()
    config = RuntimeConfig.from_env({f"MODELROLLOUT_{k.upper()}": str(v) for k, v in env.items()})
    config = config.with_model_defaults(model_name="iris-classifier", model_version="v1")
    return ServingRuntime(config, metrics=runtime_metrics(registry), rng=random.Random(7)), registry


def value(registry: CollectorRegistry, name: str, **labels: str) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_predictions_are_logged_counted_and_receipted():
    runtime, registry = make_runtime(track="canary")
    receipt = runtime.after_prediction("r1", ["setosa", "virginica"])
    assert (receipt.request_id, receipt.model, receipt.version, receipt.track) == (
        "r1",
        "iris-classifier",
        "v1",
        "canary",
    )
    labels = {"model": "iris-classifier", "version": "v1", "track": "canary"}
    assert value(registry, "modelrollout_predictions_total", **labels, path="model") == 2
    assert runtime.log.judge("r1", row=1, actual="virginica").outcome == "correct"


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


def test_feedback_counts_correct_incorrect_unknown_and_duplicate():
    runtime, registry = make_runtime()
    runtime.after_prediction("r1", ["setosa", "virginica"])
    assert runtime.feedback("r1", label="setosa").outcome == "correct"
    assert runtime.feedback("r1", label="setosa", row=1).outcome == "incorrect"
    assert runtime.feedback("r1", label="setosa").outcome == "duplicate"
    assert runtime.feedback("nope", label="setosa").outcome == "unknown_request"
    labels = {"model": "iris-classifier", "version": "v1", "track": "stable"}
    for outcome in ("correct", "incorrect", "duplicate", "unknown_request"):
        assert value(registry, "modelrollout_feedback_total", **labels, outcome=outcome) == 1, outcome


def test_feedback_is_counted_against_the_version_that_predicted():
    """With a shared log, a stable pod receiving feedback for a canary prediction credits the canary."""
    shared = InMemoryPredictionLog(capacity=10)
    shared.record("r1", ["setosa"], origin=Origin(model="iris-classifier", version="v2", track="canary"))
    registry = CollectorRegistry()
    config = RuntimeConfig.from_env({}).with_model_defaults(model_name="iris-classifier", model_version="v1")
    runtime = ServingRuntime(config, metrics=runtime_metrics(registry), log=shared)
    runtime.feedback("r1", label="setosa")
    canary = {"model": "iris-classifier", "version": "v2", "track": "canary"}
    stable = {"model": "iris-classifier", "version": "v1", "track": "stable"}
    assert value(registry, "modelrollout_feedback_total", **canary, outcome="correct") == 1
    assert value(registry, "modelrollout_feedback_total", **stable, outcome="correct") == 0


@pytest.mark.parametrize(
    ("request_id", "row", "message"), [("a b", 0, "visible ASCII"), ("r1", -1, "row must be")]
)
def test_bad_feedback_input_is_refused_without_counting(request_id, row, message):
    runtime, registry = make_runtime()
    with pytest.raises(ValueError, match=message):
        runtime.feedback(request_id, label="setosa", row=row)
    labels = {"model": "iris-classifier", "version": "v1", "track": "stable"}
    assert value(registry, "modelrollout_feedback_total", **labels, outcome="unknown_request") == 0


def test_runtime_needs_a_model_name_and_version():
    with pytest.raises(ValueError, match="with_model_defaults"):
        ServingRuntime(RuntimeConfig.from_env({}), metrics=runtime_metrics(CollectorRegistry()))


def test_log_size_comes_from_the_environment():
    runtime, _ = make_runtime(prediction_log_size=2)
    runtime.after_prediction("r1", ["a", "b"])
    runtime.after_prediction("r2", ["c"])
    assert runtime.feedback("r1", label="a").outcome == "unknown_request"


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


def test_feedback_labels_longer_than_the_limit_are_refused():
    runtime, _ = make_runtime(max_label_chars=8)
    runtime.after_prediction("r1", ["setosa"])
    assert runtime.feedback("r1", label="setosa").outcome == "correct"
    with pytest.raises(ValueError, match="MODELROLLOUT_MAX_LABEL_CHARS"):
        runtime.feedback("r1", label="x" * 9)
