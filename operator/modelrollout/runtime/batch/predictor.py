"""Load the model a batch run uses, without the runner knowing what kind of model it is.

Two ways, both giving an object with ``predict(features)`` on a 2-D float array (rows x features,
in the order of the run's feature columns) that returns one prediction per row:

``module:attr``   an object with ``.predict``, or a callable returning one (a factory, so the module
                  can train or load lazily). Optional attributes: ``feature_names`` (default
                  feature columns, in the model's order) and ``model_version``.
BentoML tag       ``bentoml.models.get(tag).load_model()``; the version is the model's ``version``
                  label, else the tag's version.

A scikit-learn estimator fitted on a DataFrame remembers ``feature_names_in_``; it is then fed a
DataFrame with those names (if pandas is installed), which both orders the columns by name and
avoids sklearn's warning about unnamed features.
"""

from __future__ import annotations

import importlib
import os
import sys
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np


class PredictorError(RuntimeError):
    """The predictor could not be loaded, or returned something that is not one value per row."""


@dataclass(frozen=True)
class LoadedPredictor:
    predict: Callable[[np.ndarray], Any]
    feature_names: tuple[str, ...] | None
    model_version: str | None
    description: str


def from_object(obj: Any, *, description: str, model_version: str | None = None) -> LoadedPredictor:
    if isinstance(obj, type) or (not hasattr(obj, "predict") and callable(obj)):
        obj = obj()  # a class or a factory function
    if not callable(getattr(obj, "predict", None)):
        raise PredictorError(f"{description} has no predict() method (got {type(obj).__name__})")
    names = getattr(obj, "feature_names", None)
    fitted = getattr(obj, "feature_names_in_", None)
    if names is None and fitted is not None:
        names = fitted
    version = model_version or getattr(obj, "model_version", None)
    predict = obj.predict
    if fitted is not None:
        predict = _named_frame_predict(obj.predict, [str(n) for n in fitted])
    return LoadedPredictor(
        predict=predict,
        feature_names=None if names is None else tuple(str(n) for n in names),
        model_version=None if version is None else str(version),
        description=description,
    )


def _named_frame_predict(predict: Callable[[Any], Any], names: list[str]) -> Callable[[np.ndarray], Any]:
    try:
        import pandas as pd
    except ImportError:  # pragma: no cover - pandas comes with the serving extra
        return predict

    def call(features: np.ndarray) -> Any:
        return predict(pd.DataFrame(features, columns=names, copy=False))

    return call


def load_entrypoint(spec: str) -> LoadedPredictor:
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise PredictorError(f"predictor {spec!r} must look like 'package.module:attribute'")
    if "" not in sys.path and os.getcwd() not in sys.path:
        # as `python -m` does: a console script does not put the working directory on the path,
        # and the bento's modules (e.g. `batch:predictor`) live there
        sys.path.insert(0, os.getcwd())
    try:
        obj: Any = importlib.import_module(module_name)
    except ImportError as exc:
        raise PredictorError(f"cannot import {module_name!r} for predictor {spec!r}: {exc}") from exc
    for part in attr.split("."):
        try:
            obj = getattr(obj, part)
        except AttributeError as exc:
            raise PredictorError(f"predictor {spec!r}: {module_name} has no attribute {attr!r}") from exc
    return from_object(obj, description=spec)


def load_bentoml_model(tag: str) -> LoadedPredictor:
    try:
        import bentoml
    except ImportError as exc:
        raise PredictorError(
            "loading a BentoML model needs bentoml installed (modelrollout[serving])"
        ) from exc
    try:
        model = bentoml.models.get(tag)
        obj = model.load_model()
    except Exception as exc:  # noqa: BLE001 - bentoml raises several unrelated types for "not found"
        raise PredictorError(f"cannot load BentoML model {tag!r}: {exc}") from exc
    version = (model.info.labels or {}).get("version") or model.tag.version
    return from_object(obj, description=f"bentoml:{model.tag}", model_version=version)


def as_predictions(raw: Any, *, rows: int) -> np.ndarray:
    """One prediction per row as a 1-D array; a (n, 1) result is flattened, anything else refused."""
    values = np.asarray(raw)
    if values.ndim == 2 and values.shape[1] == 1:
        values = values[:, 0]
    if values.ndim != 1:
        raise PredictorError(
            f"predictor returned shape {values.shape}; expected one prediction per row ({rows},)"
        )
    if values.shape[0] != rows:
        raise PredictorError(f"predictor returned {values.shape[0]} predictions for {rows} rows")
    return values


def feature_order(predictor: LoadedPredictor, *, requested: Sequence[str] | None) -> list[str] | None:
    """Explicit feature columns win; else the model's own names; else None (all non-key columns)."""
    if requested:
        return list(requested)
    return list(predictor.feature_names) if predictor.feature_names else None
