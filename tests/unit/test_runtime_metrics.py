"""Runtime counters: names, labels and zero-initialised series as the canary queries expect them."""

from __future__ import annotations

import pytest
from prometheus_client import CollectorRegistry, generate_latest
from prometheus_client.parser import text_string_to_metric_families

from modelrollout.runtime.ground_truth.metrics import LABELS_TOTAL, LOG_DROPPED, log_counters
from modelrollout.runtime.ground_truth.records import OUTCOMES, Origin
from modelrollout.runtime.metrics import PREDICTIONS_METRIC, runtime_metrics

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


def test_labels_are_counted_by_outcome_without_version_labels():
    """A label may judge another pod's (or version's) prediction: counted where it was received."""
    registry = CollectorRegistry()
    counters = log_counters(registry)
    for outcome in ("accepted", "accepted", "duplicate", "unknown_request"):
        counters.count_label(outcome)
    got = samples(registry)
    assert got[key(LABELS_TOTAL, outcome="accepted")] == 2
    assert got[key(LABELS_TOTAL, outcome="duplicate")] == 1
    assert got[key(LABELS_TOTAL, outcome="unknown_request")] == 1
    assert log_counters(registry) is counters  # registered once per registry


def test_initialise_creates_zero_series_so_rate_sees_the_first_increment():
    registry = CollectorRegistry()
    runtime_metrics(registry).initialise(CANARY, paths=("model",))
    got = samples(registry)
    base = {"model": "iris-classifier", "version": "v2", "track": "canary"}
    assert got[key(PREDICTIONS_METRIC, **base, path="model")] == 0


def test_log_counters_start_with_every_outcome_and_drop_reason_at_zero():
    registry = CollectorRegistry()
    log_counters(registry)
    got = samples(registry)
    for outcome in OUTCOMES:
        assert got[key(LABELS_TOTAL, outcome=outcome)] == 0
    for reason in ("queue_full", "store_error"):
        assert got[key(LOG_DROPPED, reason=reason)] == 0


@pytest.mark.parametrize(
    ("call", "message"),
    [
        (lambda m: m.count_predictions(CANARY, path="cache", rows=1), "unknown prediction path 'cache'"),
    ],
)
def test_unknown_label_values_are_refused(call, message):
    with pytest.raises(ValueError, match=message):
        call(runtime_metrics(CollectorRegistry()))


def test_unknown_label_outcomes_are_refused():
    with pytest.raises(ValueError, match="unknown label outcome 'maybe'"):
        log_counters(CollectorRegistry()).count_label("maybe")


def test_default_metrics_are_created_once_per_process():
    assert runtime_metrics() is runtime_metrics()
