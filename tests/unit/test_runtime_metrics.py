"""Runtime counters: names, labels and zero-initialised series as the canary queries expect them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelrollout.runtime.metrics import FEEDBACK_METRIC, PREDICTIONS_METRIC, runtime_metrics
from modelrollout.runtime.prediction_log import OUTCOMES, Origin

CANARY = Origin(model="iris-classifier", version="v2", track="canary")


def samples(registry: CollectorRegistry) -> dict[tuple[str, frozenset], float]:
    text = generate_latest(registry).decode()
    return {
        (s.name, frozenset(s.labels.items())): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
        if s.name.endswith("_total")
    }


def key(name: str, **labels: str) -> tuple[str, frozenset]:
    return name, frozenset(labels.items())


def test_predictions_are_counted_per_row_with_model_version_track_and_path():
    registry = CollectorRegistry()
    metrics = runtime_metrics(registry)
    metrics.count_predictions(CANARY, path="model", rows=3)
    metrics.count_predictions(CANARY, path="lookup", rows=2)
    metrics.count_predictions(CANARY, path="model", rows=0)
    got = samples(registry)
    base = {"model": "iris-classifier", "version": "v2", "track": "canary"}
    assert got[key(PREDICTIONS_METRIC, **base, path="model")] == 3
    assert got[key(PREDICTIONS_METRIC, **base, path="lookup")] == 2


def test_feedback_is_counted_by_outcome():
    registry = CollectorRegistry()
    metrics = runtime_metrics(registry)
    for outcome in ("correct", "correct", "incorrect", "unknown_request"):
        metrics.count_feedback(CANARY, outcome=outcome)
    got = samples(registry)
    base = {"model": "iris-classifier", "version": "v2", "track": "canary"}
    assert got[key(FEEDBACK_METRIC, **base, outcome="correct")] == 2
    assert got[key(FEEDBACK_METRIC, **base, outcome="incorrect")] == 1
    assert got[key(FEEDBACK_METRIC, **base, outcome="unknown_request")] == 1


def test_initialise_creates_zero_series_so_rate_sees_the_first_increment():
    registry = CollectorRegistry()
    runtime_metrics(registry).initialise(CANARY, paths=("model",))
    got = samples(registry)
    base = {"model": "iris-classifier", "version": "v2", "track": "canary"}
    assert got[key(PREDICTIONS_METRIC, **base, path="model")] == 0
    for outcome in OUTCOMES:
        assert got[key(FEEDBACK_METRIC, **base, outcome=outcome)] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.count_predictions(CANARY, path="cache", rows=1), "unknown prediction path 'cache'"),
        (lambda m: m.count_feedback(CANARY, outcome="maybe"), "unknown feedback outcome 'maybe'"),
    ],
)
def test_unknown_label_values_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(runtime_metrics(CollectorRegistry()))


def test_default_metrics_are_created_once_per_process():
    assert runtime_metrics() is runtime_metrics()
