"""The shared prediction log and labels in SQL, against SQLite and PostgreSQL: the same answers."""

from __future__ import annotations

import threading

import pytest

from modelrollout.runtime.ground_truth.records import Origin, records
from modelrollout.runtime.store.predlog import ImportCounts
from tests.integration.postgres import postgres_dsn  # noqa: F401 - a fixture (the `store` fixture uses it)

pytestmark = pytest.mark.integration
T0 = 1_800_000_000.0
V1, V2 = Origin("iris", "v1", "stable"), Origin("iris", "v2", "canary")


def test_tables_are_created_once_and_again_by_a_second_store_object(store):
    store.ensure_log_tables()
    store.ensure_log_tables()
    assert store.log_predictions(records("r1", ["a"], origin=V1, ts=T0)) == 1
    assert store.count_predictions(model="iris", version="v1", since=0) == 1


def test_the_first_write_of_a_request_row_wins(store):
    assert store.log_predictions(records("r1", ["setosa", "virginica"], origin=V1, ts=T0)) == 2
    replay = records("r1", ["versicolor", "versicolor", "versicolor"], origin=V2, ts=T0 + 1)
    assert store.log_predictions(replay) == 1  # only the new row 2 is written
    found = store.find_prediction("r1", 0)
    assert (found.prediction, found.version, found.track) == ("setosa", "v1", "stable")


def test_the_first_label_wins_and_unknown_predictions_get_none(store):
    store.log_predictions(records("r1", ["setosa"], origin=V2, ts=T0))
    first = store.add_label("r1", 0, label="setosa", ts=T0 + 5, source="feedback")
    second = store.add_label("r1", 0, label="virginica", ts=T0 + 6, source="feedback")
    assert first[1] is True and second[1] is False and first[0].version == "v2"
    assert store.add_label("nope", 0, label="x", ts=T0, source="feedback") == (None, False)
    assert store.label_pairs(model="iris", version="v2", since=0) == [("setosa", "setosa", 1)]


def test_concurrent_labels_for_one_prediction_store_exactly_one(store):
    store.log_predictions(records("r1", ["a"], origin=V1, ts=T0))
    results: list[bool] = []

    def send(value: str) -> None:
        results.append(store.add_label("r1", 0, label=value, ts=T0, source="feedback")[1])
        store.release_thread()

    threads = [threading.Thread(target=send, args=(f"label-{i}",)) for i in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert sorted(results) == [False] * 7 + [True]


def test_imports_by_request_id_and_by_key_count_each_outcome(store):
    store.log_predictions(records("r1", ["a", "b"], origin=V1, ts=T0))
    store.log_predictions(records("k1", ["yes"], origin=V1, ts=T0, keys=["user-1"]))
    store.log_predictions(records("k2", ["no"], origin=V1, ts=T0 + 7200, keys=["user-1"]))
    by_id = [(1, "r1", 0, "a", T0, None), (2, "r1", 0, "b", T0, None), (3, "r1", 1, "a", T0, None),
             (4, "gone", 0, "a", T0, None)]  # fmt: skip
    assert store.import_labels(by_id, by_key=False) == ImportCounts(accepted=2, duplicate=1, unknown=1)
    by_key = [(1, None, None, "yes", T0 + 3600, "user-1"), (2, None, None, "no", T0 + 9000, "user-1"),
              (3, None, None, "no", T0 + 99 * 3600, "user-1"), (4, None, None, "no", T0, "user-2")]  # fmt: skip
    assert store.import_labels(by_key, by_key=True, max_lag_s=86400) == ImportCounts(accepted=2, unknown=2)
    assert store.label_pairs(model="iris", version="v1", since=0) == [("a", "a", 1), ("b", "a", 1),
                                                                      ("no", "no", 1), ("yes", "yes", 1)]  # fmt: skip
    assert store.import_labels([(1, None, None, "x", T0 + 3600, "user-1")], by_key=True, max_lag_s=86400,
                               model="other") == ImportCounts(unknown=1)  # fmt: skip


def test_retention_deletes_by_time_in_bounded_batches(store):
    store.log_predictions(records("old", ["a"] * 25, origin=V1, ts=T0 - 100))
    store.log_predictions(records("new", ["a"] * 5, origin=V1, ts=T0))
    store.add_label("old", 0, label="a", ts=T0 - 50, source="feedback")
    store.add_label("new", 0, label="a", ts=T0, source="feedback")
    assert store.prune(cutoff=T0 - 1, batch_rows=10, max_batches=2) == 20 + 1  # 2 batches of 10, then labels
    assert store.prune(cutoff=T0 - 1, batch_rows=10) == 5
    assert store.count_predictions(model="iris", version="v1", since=0) == 5
    assert store.label_pairs(model="iris", version="v1", since=0) == [("a", "a", 1)]


def test_figures_count_one_model_version_since_a_time(store):
    store.log_predictions(records("r1", ["a", "b"], origin=V1, ts=T0))
    store.log_predictions(records("r2", ["a"], origin=V2, ts=T0))
    store.log_predictions(records("r3", ["a"], origin=Origin("other", "v1", "stable"), ts=T0))
    store.log_predictions(records("r4", ["a"], origin=V1, ts=T0 - 1000))
    assert store.count_predictions(model="iris", version="v1", since=T0 - 10) == 2
    assert store.count_predictions(model="iris", version="v1", since=0) == 3
