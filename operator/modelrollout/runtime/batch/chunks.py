"""What one input chunk becomes: a feature matrix for the model, then the rows the store keeps.

Pure functions on Arrow and NumPy, so key pass-through and prediction shaping are tested
without a store or a model file.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

import numpy as np
import pyarrow as pa

from ..store.base import ARROW_TYPES, arrow_kind
from ..store.naming import PREDICTED_AT, PREDICTION
from .predictor import PredictorError
from .readers import InputError


def feature_matrix(batch: pa.RecordBatch | pa.Table, features: Sequence[str]) -> np.ndarray:
    """Rows x features as float64 (nulls become NaN); column order is ``features``."""
    matrix = np.empty((batch.num_rows, len(features)), dtype=np.float64)
    for j, name in enumerate(features):
        matrix[:, j] = batch.column(name).cast(pa.float64()).to_numpy(zero_copy_only=False)
    return matrix


def prediction_array(values: np.ndarray, *, kind: str | None) -> tuple[pa.Array, str]:
    """Predictions as Arrow with NaN/inf turned into null; later chunks are cast to the first's kind."""
    if values.dtype.kind == "f":
        values = values.astype(np.float64, copy=False)
        array = pa.array(values, mask=~np.isfinite(values))
    elif values.dtype.kind == "O":
        try:
            array = pa.array(values, from_pandas=True)
        except (pa.ArrowInvalid, pa.ArrowTypeError) as exc:
            raise PredictorError(f"predictions are of mixed types: {exc}") from exc
    else:
        array = pa.array(values)
    found = arrow_kind(array.type)
    if found is None:
        raise PredictorError(
            f"predictions of type {array.type} cannot be stored; return numbers, text or booleans"
        )
    if kind is None or found == kind:
        return array.cast(ARROW_TYPES[found]), found
    try:
        return array.cast(ARROW_TYPES[kind], safe=True), kind
    except (pa.ArrowInvalid, pa.ArrowNotImplementedError) as exc:
        raise PredictorError(
            f"predictions changed type from {kind} to {found} between chunks: {exc}"
        ) from exc


def output_table(
    batch: pa.RecordBatch | pa.Table, *, keys: Sequence[str], predictions: pa.Array, now: datetime
) -> pa.Table:
    """The stored columns: keys exactly as read, then the prediction and its timestamp."""
    n = batch.num_rows
    columns = [batch.column(k) for k in keys] + [
        predictions,
        pa.repeat(pa.scalar(now, pa.timestamp("us", tz="UTC")), n),
    ]
    return pa.Table.from_arrays(columns, names=[*keys, PREDICTION, PREDICTED_AT])


def check_keys(batch: pa.RecordBatch, keys: Sequence[str], *, offset: int) -> None:
    for key in keys:
        column = batch.column(key)
        if column.null_count:
            raise InputError(
                f"key column {key!r} is null in {column.null_count} row(s) of the chunk at row {offset}"
            )
