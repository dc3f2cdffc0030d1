"""Lookup serving against real stores: batch (lookup only) and hybrid (model fallback) paths."""

from __future__ import annotations

import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.batch.predictor import from_object
from modelrollout.runtime.batch.readers import InputSpec
from modelrollout.runtime.batch.runner import RunConfig, run_batch
from modelrollout.runtime.batch.verify import Thresholds
from modelrollout.runtime.lookup import LookupService
from modelrollout.runtime.store import open_store, physical_table_name
from tests.integration.batch_model import (
    FEATURES,
    IrisPredictor,
    ProbabilityPredictor,
    SometimesNaNPredictor,
    make_table,
)
from tests.integration.postgres import fresh_database, postgres_dsn  # noqa: F401 - postgres_dsn is a fixture

pytestmark = pytest.mark.integration


def publish(store, tmp_path, *, run_id: str, rows: int, predictor=None, seed: int = 1, table: str = "scores",
            max_null_share: float = 0.0, key: str = "int"):  # fmt: skip
    """Publish ``rows`` rows of synthetic data through the real runner; returns the input table."""
    path = tmp_path / f"{run_id}.parquet"
    data = make_table(rows, seed=seed, key=key)
    pq.write_table(data, path)
    loaded = from_object(predictor or IrisPredictor(), description="test")
    key_columns = ("id",) if key == "int" else ("user",)
    config = RunConfig(table=table, run_id=run_id, key_columns=key_columns, model_version=loaded.model_version,
                       feature_columns=FEATURES, thresholds=Thresholds(maxPsi=None, maxNullShare=max_null_share))  # fmt: skip
    result = run_batch(config, source=InputSpec(path=str(path)), predictor=loaded, store=store)
    assert result.status == "published", result
    return data


def features_of(data, ids):
    return np.column_stack([data.column(f).to_numpy() for f in FEATURES])[ids]


def sample(registry, name, **labels):
    return registry.get_sample_value(name, labels) or 0.0


def test_batch_mode_answers_known_keys_and_says_clearly_when_a_key_is_unknown(store, tmp_path):
    data = publish(store, tmp_path, run_id="r1", rows=200)
    registry = CollectorRegistry()
    service = LookupService(store, "scores", mode="batch", registry=registry)
    answers = service.lookup([3, "7", 10_000])
    expected = IrisPredictor().predict(features_of(data, [3, 7]))
    assert [(a.found, a.source, a.prediction) for a in answers[:2]] == [
        (True, "lookup", expected[0]),
        (True, "lookup", expected[1]),
    ]
    assert answers[0].run_id == "r1" and answers[0].model_version == "lr-1"
    missing = answers[2]
    assert not missing.found and missing.prediction is None
    assert "10000" in missing.message and "'scores'" in missing.message
    assert sample(registry, "modelrollout_lookup_total", result="hit") == 2
    assert sample(registry, "modelrollout_lookup_total", result="miss") == 1
    assert sample(registry, "modelrollout_lookup_duration_seconds_count", path="lookup") == 1
    assert sample(registry, "modelrollout_lookup_duration_seconds_count", path="model") == 0
    malformed = service.predict_one("not-a-number")
    assert not malformed.found and "holds integers" in malformed.message


def test_hybrid_mode_serves_hits_from_the_table_and_misses_from_the_model(store, tmp_path):
    data = publish(store, tmp_path, run_id="r1", rows=100)
    model = IrisPredictor()
    registry = CollectorRegistry()
    service = LookupService(
        store, "scores", mode="hybrid", model=model.predict, model_version="lr-live", registry=registry
    )
    tail = make_table(5, seed=9, start=500)  # keys 500..504 are not in the table
    keys = [1, 500, 2, 501]
    feats = np.vstack(
        [
            features_of(data, [1])[0],
            features_of(tail, [0])[0],
            features_of(data, [2])[0],
            features_of(tail, [1])[0],
        ]
    )
    answers = service.lookup(keys, feats)
    assert [a.source for a in answers] == ["lookup", "model", "lookup", "model"]
    assert [a.prediction for a in answers] == model.predict(feats).tolist()
    assert answers[1].model_version == "lr-live" and answers[0].model_version == "lr-1"
    assert sample(registry, "modelrollout_lookup_total", result="hit") == 2
    assert sample(registry, "modelrollout_lookup_total", result="miss") == 2
    assert sample(registry, "modelrollout_lookup_duration_seconds_count", path="model") == 1
    no_features = service.predict_one(777)
    assert not no_features.found and "no features" in no_features.message


def test_a_stored_null_prediction_is_a_miss_that_hybrid_mode_sends_to_the_model(store, tmp_path):
    data = publish(
        store, tmp_path, run_id="r1", rows=300, predictor=SometimesNaNPredictor(), max_null_share=1.0
    )
    features = features_of(data, list(range(300)))
    null_id = int(np.flatnonzero(features[:, 0] > 6.5)[0])  # the predictor's invalid rows
    valid_id = int(np.flatnonzero(features[:, 0] <= 6.5)[0])
    batch = LookupService(store, "scores", mode="batch", registry=CollectorRegistry())
    answers = batch.lookup([null_id, valid_id])
    assert not answers[0].found and "holds no valid prediction" in answers[0].message
    assert answers[1].found and answers[1].prediction is not None
    model = ProbabilityPredictor()
    hybrid = LookupService(store, "scores", mode="hybrid", model=model.predict, registry=CollectorRegistry())
    fallback = hybrid.predict_one(null_id, features[null_id])
    assert (fallback.source, fallback.prediction) == (
        "model",
        pytest.approx(model.predict(features[[null_id]])[0]),
    )
    with pytest.raises(ValueError, match="2 feature rows for 1 keys"):
        hybrid.lookup([null_id], features[:2])


def test_hybrid_mode_uses_the_model_for_everything_before_the_first_publish(store):
    service = LookupService(
        store, "nothing_yet", mode="hybrid", model=lambda x: x.sum(axis=1), registry=CollectorRegistry()
    )
    answers = service.lookup([1, 2], [[1.0, 2.0], [3.0, 4.0]])
    assert [(a.source, a.prediction) for a in answers] == [("model", 3.0), ("model", 7.0)]
    batch_only = LookupService(store, "nothing_yet", mode="batch", registry=CollectorRegistry())
    assert "no published version yet" in batch_only.predict_one(1).message


def test_a_newly_published_table_is_served_without_a_restart(store, tmp_path):
    publish(store, tmp_path, run_id="r1", rows=50)
    now = [0.0]
    service = LookupService(
        store, "scores", mode="batch", refresh_s=5.0, clock=lambda: now[0], registry=CollectorRegistry()
    )
    assert service.predict_one(1).run_id == "r1"
    data2 = publish(store, tmp_path, run_id="r2", rows=50, predictor=ProbabilityPredictor())
    now[0] = 4.9
    assert service.predict_one(1).run_id == "r1"  # cached pointer, re-read at most every 5 s
    now[0] = 5.0
    fresh = service.predict_one(1)
    assert fresh.run_id == "r2" and fresh.model_version == "lr-proba-1"
    assert fresh.prediction == pytest.approx(ProbabilityPredictor().predict(features_of(data2, [1]))[0])


def test_a_dropped_cached_version_is_replaced_by_the_current_one_at_once(store, tmp_path):
    publish(store, tmp_path, run_id="r1", rows=50)
    service = LookupService(store, "scores", mode="batch", refresh_s=3600, registry=CollectorRegistry())
    assert service.predict_one(1).run_id == "r1"
    publish(store, tmp_path, run_id="r2", rows=50, predictor=ProbabilityPredictor())
    assert store.cleanup("scores", keep_versions=1) == [physical_table_name("scores", "r1")]
    assert store.staged_rows("scores", "r1") is None  # the cached version's table is gone
    answer = service.predict_one(1)
    assert answer.found and answer.run_id == "r2"


def test_keys_no_store_can_hold_are_a_400_for_that_key_and_never_reach_the_store(store, tmp_path):
    """A 2**63 for a BIGINT column or a NUL in a PostgreSQL text value would make the driver raise
    and fail the whole request; they are refused per key before the query instead."""
    publish(store, tmp_path, run_id="r1", rows=20)
    service = LookupService(store, "scores", mode="batch", registry=CollectorRegistry())
    answers = service.lookup([1, 2**63, -(2**63) - 1, "１", 2])
    assert [a.status for a in answers] == [200, 400, 400, 400, 200]
    publish(store, tmp_path, run_id="t1", rows=20, key="str", table="users")
    users = LookupService(store, "users", mode="batch", registry=CollectorRegistry())
    answers = users.lookup(["user-0000001", "user-\x000001", "nobody"])
    assert [a.status for a in answers] == [200, 400, 404]
    assert "NUL" in answers[1].message


def test_postgres_credentials_can_come_from_the_libpq_environment(postgres_dsn, monkeypatch, tmp_path):  # noqa: F811
    import psycopg

    info = psycopg.conninfo.conninfo_to_dict(fresh_database(postgres_dsn))
    for key, env in (("host", "PGHOST"), ("port", "PGPORT"), ("user", "PGUSER"), ("dbname", "PGDATABASE")):
        monkeypatch.setenv(env, str(info[key]))
    monkeypatch.setenv("MODELROLLOUT_STORE_DSN", "postgresql://")
    with open_store() as pg:
        assert pg.url == "postgresql:(libpq environment)"
        publish(pg, tmp_path, run_id="env1", rows=20)
        assert pg.published_version("scores").rows == 20
