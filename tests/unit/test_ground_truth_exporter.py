"""Figures of this pod's version from the shared log, as gauges; and where the log lives."""

from __future__ import annotations

import threading

import pytest
from prometheus_client import CollectorRegistry, generate_latest

from modelrollout.runtime.config import ConfigError
from modelrollout.runtime.ground_truth.exporter import FiguresExporter
from modelrollout.runtime.ground_truth.metrics import FigureGauges
from modelrollout.runtime.ground_truth.records import Origin, records
from modelrollout.runtime.ground_truth.settings import log_location
from modelrollout.runtime.store.factory import open_log_store

NOW = 2_000_000.0
V2 = Origin("iris", "v2", "canary")


@pytest.fixture
def store(tmp_path):
    store = open_log_store(f"sqlite:///{tmp_path}/log.sqlite", wait_timeout_s=1.0)
    store.log_predictions(records("old", ["a"], origin=V2, ts=NOW - 10_000))  # outside retention
    store.log_predictions(records("r1", ["a", "b", "a"], origin=V2, ts=NOW - 10))
    store.log_predictions(records("r2", ["a"], origin=Origin("iris", "v1", "stable"), ts=NOW - 10))
    store.log_predictions(records("r3", ["a"], origin=Origin("other-model", "v2", "stable"), ts=NOW - 10))
    for request_id, row, label in (
        ("old", 0, "a"),
        ("r1", 0, "a"),
        ("r1", 1, "a"),
        ("r2", 0, "a"),
        ("r3", 0, "a"),
    ):
        store.add_label(request_id, row, label=label, ts=NOW, source="import")
    yield store
    store.close()


def gauges_of(registry) -> dict[str, float]:
    from prometheus_client.parser import text_string_to_metric_families

    text = generate_latest(registry).decode()
    return {s.name: s.value for f in text_string_to_metric_families(text) for s in f.samples}


def exporter(store, registry, **kwargs) -> FiguresExporter:
    return FiguresExporter(store, origin=V2, retention_s=3600, period_s=1.0, gauges=FigureGauges(registry),
                           clock=lambda: NOW, **kwargs)  # fmt: skip


def test_figures_count_this_model_versions_predictions_within_retention_whichever_track(store):
    registry = CollectorRegistry()
    assert gauges_of(registry) == {}  # nothing exported before the first computation
    figures = exporter(store, registry).compute()
    assert (figures.predictions, figures.labelled, figures.correct) == (3, 2, 1)
    got = gauges_of(registry)
    assert got["modelrollout_ground_truth_predictions"] == 3
    assert got["modelrollout_ground_truth_labelled"] == 2 and got["modelrollout_ground_truth_correct"] == 1
    assert got["modelrollout_ground_truth_updated_timestamp_seconds"] == NOW
    assert "modelrollout_ground_truth_true_positives" not in got


def test_confusion_gauges_only_with_a_positive_class(store):
    registry = CollectorRegistry()
    exporter(store, registry, positive_class="a").compute()
    got = gauges_of(registry)
    assert got["modelrollout_ground_truth_true_positives"] == 1  # r1/0: said a, was a
    assert got["modelrollout_ground_truth_false_negatives"] == 1  # r1/1: said b, was a


class BrokenStore:
    def __init__(self) -> None:
        self.asked = threading.Event()

    def count_predictions(self, **_):
        self.asked.set()
        raise OSError("disk gone")

    def release_thread(self) -> None:
        pass


def test_a_failing_store_keeps_the_last_figures(store):
    registry = CollectorRegistry()
    figures = exporter(store, registry)
    figures.compute()
    figures.store = broken = BrokenStore()
    figures.start()
    try:
        assert broken.asked.wait(5)
    finally:
        figures.stop(timeout_s=5)
    assert gauges_of(registry)["modelrollout_ground_truth_predictions"] == 3


def test_the_log_goes_to_the_ground_truth_store_else_the_batch_store_else_a_file_of_this_process(tmp_path):
    both = {
        "MODELROLLOUT_GROUND_TRUTH_DSN": "postgresql://db/truth",
        "MODELROLLOUT_STORE_DSN": "sqlite:///b.sqlite",
    }
    assert log_location(both).url == "postgresql://db/truth" and log_location(both).warning() is None
    batch = log_location({"MODELROLLOUT_STORE_DSN": "sqlite:////data/p.sqlite"})
    assert (batch.url, batch.shared, batch.source) == (
        "sqlite:////data/p.sqlite",
        True,
        "MODELROLLOUT_STORE_DSN",
    )
    alone = log_location({}, tmpdir=str(tmp_path), pid=42)
    assert alone.url == f"sqlite:///{tmp_path}/modelrollout-prediction-log-42.sqlite" and not alone.shared
    assert "labels (/feedback) must reach this very pod" in alone.warning()


def test_a_log_url_no_store_can_open_stops_the_server_naming_the_variable():
    with pytest.raises(ConfigError, match="MODELROLLOUT_GROUND_TRUTH_DSN"):
        log_location({"MODELROLLOUT_GROUND_TRUTH_DSN": "mysql://db"})
