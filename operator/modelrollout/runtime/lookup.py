"""Online answers from a published prediction table, with the model as fallback in hybrid mode.

``mode="batch"``   lookup only: a key that is not in the table gets a clear not-found answer (and
                   counts as a miss); the caller turns it into a 404.
``mode="hybrid"``  lookup first; the misses go to the model in one vectorised call.

Metrics (``prometheus_client``, registry injectable for tests):
``modelrollout_lookup_total{result="hit"|"miss"}`` per key, and
``modelrollout_lookup_duration_seconds{path="lookup"|"model"}`` per call of each path.

The published version is cached and re-read at most every ``refresh_s`` seconds, so a newly
published table is served without a restart, and a request costs one indexed query, not two. If
the cached version's table was dropped meanwhile (cleanup keeps a few old versions, so only a
very stale cache sees this), the pointer is re-read at once and the lookup retried.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .store.base import PredictionStore, PublishedVersion, coerce_key
from .store.naming import validate_table_name

log = logging.getLogger(__name__)
Mode = Literal["batch", "hybrid"]
LOOKUP_TOTAL = "modelrollout_lookup_total"
LOOKUP_DURATION = "modelrollout_lookup_duration_seconds"
BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)

_metrics_cache: dict[int, tuple[Any, Any, Any]] = {}
_metrics_lock = threading.Lock()


def lookup_metrics(registry: Any = None) -> tuple[Any, Any]:
    """(counter, histogram) registered once per registry; the default is prometheus_client's global."""
    import prometheus_client  # imported late: BentoML sets multiprocess mode before the first import

    registry = prometheus_client.REGISTRY if registry is None else registry
    with _metrics_lock:
        cached = _metrics_cache.get(id(registry))
        if cached is None or cached[0] is not registry:
            counter = prometheus_client.Counter(
                LOOKUP_TOTAL,
                "Keys answered from the prediction table (hit) or not (miss).",
                ["result"],
                registry=registry,
            )
            histogram = prometheus_client.Histogram(
                LOOKUP_DURATION,
                "Seconds per call of each answer path.",
                ["path"],
                buckets=BUCKETS,
                registry=registry,
            )
            for result in ("hit", "miss"):
                counter.labels(result)
            for path in ("lookup", "model"):
                histogram.labels(path)
            cached = (registry, counter, histogram)
            _metrics_cache[id(registry)] = cached
    return cached[1], cached[2]


@dataclass(frozen=True)
class Answer:
    key: Any
    found: bool
    prediction: Any = None
    source: Literal["lookup", "model"] | None = None
    model_version: str | None = None
    run_id: str | None = None
    message: str | None = None


class LookupService:
    def __init__(
        self, store: PredictionStore, table: str, *, mode: Mode = "batch",
        model: Callable[[np.ndarray], Any] | None = None, model_version: str | None = None,
        registry: Any = None, refresh_s: float = 5.0, clock: Callable[[], float] = time.monotonic,
    ) -> None:  # fmt: skip
        if mode not in ("batch", "hybrid"):
            raise ValueError(f"mode must be 'batch' or 'hybrid', got {mode!r}")
        if mode == "hybrid" and model is None:
            raise ValueError("hybrid mode needs a model to fall back on")
        self.store, self.table, self.mode = store, validate_table_name(table), mode
        self.model, self.model_version = model, model_version
        self.refresh_s, self.clock = refresh_s, clock
        self.counter, self.histogram = lookup_metrics(registry)
        self._version: PublishedVersion | None = None
        self._checked_at: float | None = None
        self._lock = threading.Lock()

    def version(self, *, force: bool = False) -> PublishedVersion | None:
        """The published version, re-read from the store at most every ``refresh_s`` seconds."""
        now = self.clock()
        with self._lock:
            if force or self._checked_at is None or now - self._checked_at >= self.refresh_s:
                try:
                    self._version = self.store.published_version(self.table)
                    self._checked_at = now
                except Exception:
                    if self._checked_at is None:
                        raise
                    log.exception(
                        "re-reading the published version of %s failed; serving the cached one", self.table
                    )
            return self._version

    def _lookup(
        self, keys: Sequence[Any]
    ) -> tuple[PublishedVersion | None, list[tuple | None], dict[tuple, Any]]:
        version = self.version()
        for attempt in (1, 2):
            if version is None:
                return None, [None] * len(keys), {}
            coerced = [_coerce(version, key) for key in keys]
            started = time.perf_counter()
            try:
                found = self.store.lookup_version(version, [k for k in coerced if k is not None])
            except Exception:
                if attempt == 2:
                    raise
                log.info(
                    "lookup in %s failed; re-reading the published version", version.physical, exc_info=True
                )
                version = self.version(force=True)
                continue
            self.histogram.labels("lookup").observe(time.perf_counter() - started)
            return version, coerced, found
        raise AssertionError("unreachable")

    def lookup(
        self, keys: Sequence[Any], features: Sequence[Sequence[float]] | np.ndarray | None = None
    ) -> list[Answer]:
        """One answer per key, in order; ``features[i]`` (hybrid only) are key i's model inputs.

        A key whose stored prediction is null (the batch model's output was invalid) is a miss:
        hybrid mode asks the model, batch mode says so.
        """
        if features is not None and len(features) != len(keys):
            raise ValueError(f"{len(features)} feature rows for {len(keys)} keys; give one row per key")
        version, coerced, found = self._lookup(keys)
        answers: list[Answer | None] = [None] * len(keys)
        misses: list[int] = []
        for i, key in enumerate(keys):
            value = found.get(coerced[i]) if coerced[i] is not None else None
            if value is not None:
                answers[i] = Answer(key, True, value, "lookup", version.model_version, version.run_id)  # type: ignore[union-attr]
            else:
                misses.append(i)
        self.counter.labels("hit").inc(len(keys) - len(misses))
        if misses:
            self.counter.labels("miss").inc(len(misses))
        if self.mode == "hybrid" and misses and features is not None:
            self._fallback(features, misses, answers, keys)
        for i in misses:
            if answers[i] is None:
                stored_null = coerced[i] is not None and coerced[i] in found
                answers[i] = Answer(
                    keys[i], False, message=self._not_found(version, keys[i], stored_null=stored_null)
                )
        return answers  # type: ignore[return-value]

    def predict_one(self, key: Any, features: Sequence[float] | None = None) -> Answer:
        return self.lookup([key], None if features is None else [features])[0]

    def _fallback(
        self, features: Any, misses: list[int], answers: list[Answer | None], keys: Sequence[Any]
    ) -> None:
        matrix = np.asarray([features[i] for i in misses], dtype=np.float64)
        started = time.perf_counter()
        predictions = np.asarray(self.model(matrix))  # type: ignore[misc]
        self.histogram.labels("model").observe(time.perf_counter() - started)
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if predictions.shape[:1] != (len(misses),):
            raise ValueError(f"model returned shape {predictions.shape} for {len(misses)} rows")
        for i, value in zip(misses, predictions.tolist(), strict=True):
            answers[i] = Answer(keys[i], True, value, "model", self.model_version)

    def _not_found(self, version: PublishedVersion | None, key: Any, *, stored_null: bool) -> str:
        if version is None:
            where = f"table {self.table!r} has no published version yet"
        elif (problem := _key_problem(version, key)) is not None:
            where = problem
        elif stored_null:
            where = f"table {self.table!r} (run {version.run_id}) holds no valid prediction for key {key!r}"
        else:
            where = f"key {key!r} is not in table {self.table!r} (run {version.run_id})"
        if self.mode == "hybrid":
            return f"{where}, and no features were given for the model"
        return where


def _coerce(version: PublishedVersion, key: Any) -> tuple | None:
    """The typed key, or None when it cannot exist in the table (a miss, not an error)."""
    try:
        return coerce_key(version.schema, key)
    except KeyError:
        return None


def _key_problem(version: PublishedVersion, key: Any) -> str | None:
    try:
        coerce_key(version.schema, key)
    except KeyError as exc:
        return str(exc.args[0]) if exc.args else str(exc)
    return None
