"""Key pass-through and prediction shaping: what the runner hands to the store, chunk by chunk."""

from __future__ import annotations

from datetime import UTC, datetime

import numpy as np
import pyarrow as pa
import pytest

from modelrollout.runtime.batch.chunks import feature_matrix, output_table, prediction_array
from modelrollout.runtime.batch.predictor import PredictorError, as_predictions, from_object
from modelrollout.runtime.store.base import RunSchema

NOW = datetime(2026, 1, 2, 3, 4, 5, tzinfo=UTC)


def _predictions(n: int) -> pa.Array:
    return pa.array(np.arange(n, dtype=float))


@pytest.mark.parametrize(
    "keys",
    [
        {"id": pa.array([10, 3, 7], pa.int64())},
        {"user": pa.array(["007", "", "ünï"])},
        {"region": pa.array(["eu", "eu", "us"]), "id": pa.array([1, 2, 1], pa.int32())},
    ],
    ids=["int", "str", "composite"],
)
def test_output_rows_carry_the_input_keys_unchanged_and_in_order(keys):
    batch = pa.record_batch({**keys, "f0": pa.array([0.1, 0.2, 0.3])})
    out = output_table(batch, keys=list(keys), predictions=_predictions(3), now=NOW)
    assert out.column_names == [*keys, "prediction", "predicted_at"]
    for name, column in keys.items():
        assert out.column(name).to_pylist() == column.to_pylist()
    assert out.column("predicted_at").to_pylist() == [NOW] * 3


def test_output_matches_the_schema_the_store_expects_after_a_safe_cast():
    batch = pa.record_batch({"region": ["eu"], "id": pa.array([4], pa.int32()), "f0": [1.0]})
    schema = RunSchema(keys=(("region", "str"), ("id", "int")), prediction="float")
    out = output_table(batch, keys=["region", "id"], predictions=_predictions(1), now=NOW)
    cast = out.cast(schema.arrow_schema())
    assert cast.column("id").to_pylist() == [4]


def test_feature_matrix_follows_the_feature_order_and_turns_nulls_into_nan():
    batch = pa.record_batch({"a": pa.array([1, None], pa.int64()), "b": [True, False], "c": [0.5, 1.5]})
    matrix = feature_matrix(batch, ["c", "a", "b"])
    assert matrix.dtype == np.float64 and matrix.shape == (2, 3)
    assert matrix[0].tolist() == [0.5, 1.0, 1.0]
    assert matrix[1, 0] == 1.5 and np.isnan(matrix[1, 1]) and matrix[1, 2] == 0.0


def test_invalid_float_predictions_become_nulls():
    array, kind = prediction_array(np.array([0.5, np.nan, np.inf, -1.0]), kind=None)
    assert kind == "float"
    assert array.to_pylist() == [0.5, None, None, -1.0]


@pytest.mark.parametrize(
    ("values", "kind", "expected"),
    [
        (np.array([1, 2], np.int32), "int", [1, 2]),
        (np.array(["setosa", "virginica"]), "str", ["setosa", "virginica"]),
        (np.array(["a", None], dtype=object), "str", ["a", None]),
        (np.array([True, False]), "bool", [True, False]),
    ],
)
def test_prediction_kinds_are_recognised(values, kind, expected):
    array, found = prediction_array(values, kind=None)
    assert (found, array.to_pylist()) == (kind, expected)


def test_later_chunks_are_cast_to_the_first_chunks_kind_or_refused():
    array, kind = prediction_array(np.array([1.0, 2.0]), kind="int")
    assert (kind, array.type, array.to_pylist()) == ("int", pa.int64(), [1, 2])
    with pytest.raises(PredictorError, match="changed type from int to float"):
        prediction_array(np.array([1.5]), kind="int")
    with pytest.raises(PredictorError, match="mixed types"):
        prediction_array(np.array([1, "a"], dtype=object), kind=None)


def test_prediction_shapes_other_than_one_per_row_are_refused():
    assert as_predictions(np.array([[1], [2]]), rows=2).tolist() == [1, 2]
    with pytest.raises(PredictorError, match=r"shape \(2, 3\)"):
        as_predictions(np.zeros((2, 3)), rows=2)
    with pytest.raises(PredictorError, match="3 predictions for 2 rows"):
        as_predictions(np.zeros(3), rows=2)


def test_a_predictor_factory_is_called_and_its_metadata_is_read():
    class Model:
        feature_names = ("x", "y")
        model_version = "v7"

        def predict(self, features):
            return features.sum(axis=1)

    loaded = from_object(Model, description="test:Model")
    assert loaded.feature_names == ("x", "y") and loaded.model_version == "v7"
    assert loaded.predict(np.ones((2, 2))).tolist() == [2.0, 2.0]
    with pytest.raises(PredictorError, match="no predict"):
        from_object(object(), description="test:nothing")
