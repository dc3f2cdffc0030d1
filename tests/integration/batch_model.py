"""A small real model for the batch tests: LogisticRegression on iris-like synthetic data.

Importable as ``tests.integration.batch_model:<attr>`` by the ``modelrollout-batch`` subprocesses
the tests start (with the repository root on PYTHONPATH). Deterministic: same seed, same model, same predictions.
"""

from __future__ import annotations

import os
import time
from functools import lru_cache

import numpy as np
import pyarrow as pa

FEATURES = ("f0", "f1", "f2", "f3")
CENTRES = np.array([[5.0, 3.4, 1.5, 0.2], [5.9, 2.8, 4.3, 1.3], [6.6, 3.0, 5.6, 2.0]])


def make_features(n: int, *, seed: int, shift: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Three Gaussian classes around iris-like centres; ``shift`` moves every row (drift)."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 3, size=n)
    x = CENTRES[labels] + rng.normal(0.0, 0.35, size=(n, 4)) + shift
    return x, labels


def make_table(n: int, *, seed: int = 1, shift: float = 0.0, key: str = "int", start: int = 0) -> pa.Table:
    """Keys plus features. ``key``: ``int`` (id), ``str`` (user), or ``composite`` (region, id)."""
    x, _ = make_features(n, seed=seed, shift=shift)
    ids = np.arange(start, start + n, dtype=np.int64)
    columns: dict[str, pa.Array] = {}
    if key == "int":
        columns["id"] = pa.array(ids)
    elif key == "str":
        columns["user"] = pa.array([f"user-{i:07d}" for i in ids])
    else:
        columns["region"] = pa.array(["eu", "us", "ap"] * (n // 3) + ["eu", "us", "ap"][: n % 3])
        columns["id"] = pa.array(ids)
    for j, name in enumerate(FEATURES):
        columns[name] = pa.array(x[:, j])
    return pa.table(columns)


@lru_cache(maxsize=1)
def _model():
    from sklearn.linear_model import LogisticRegression

    x, y = make_features(600, seed=0)
    return LogisticRegression(max_iter=500).fit(x, y)


class IrisPredictor:
    """Class labels 0..2; set ``BATCH_MODEL_DELAY_S`` to sleep per chunk (a slow model)."""

    feature_names = FEATURES
    model_version = "lr-1"

    def predict(self, features: np.ndarray) -> np.ndarray:
        delay = float(os.environ.get("BATCH_MODEL_DELAY_S", "0") or 0)
        if delay:
            time.sleep(delay)
        return _model().predict(features)


class ProbabilityPredictor:
    """Probability of class 2 (a numeric prediction, for binned PSI)."""

    feature_names = FEATURES
    model_version = "lr-proba-1"

    def predict(self, features: np.ndarray) -> np.ndarray:
        return _model().predict_proba(features)[:, 2]


class SometimesNaNPredictor(ProbabilityPredictor):
    """Invalid (NaN) predictions for rows whose first feature is above 6.5."""

    def predict(self, features: np.ndarray) -> np.ndarray:
        out = super().predict(features)
        out[features[:, 0] > 6.5] = np.nan
        return out


def predictor() -> IrisPredictor:
    return IrisPredictor()


def probability_predictor() -> ProbabilityPredictor:
    return ProbabilityPredictor()


def nan_predictor() -> SometimesNaNPredictor:
    return SometimesNaNPredictor()
