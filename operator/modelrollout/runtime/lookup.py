"""Online answers from a published prediction table, with the model as fallback in hybrid mode.

``mode="batch"``   lookup only: a key that is not in the table gets a clear not-found answer (and
                   counts as a miss); the caller turns it into a 404.
``mode="hybrid"``  lookup first; the misses go to the model in one vectorised call. When the store
                   cannot be asked (down, too slow: see :mod:`.storecalls`), every key with a
                   feature row is answered by the model instead, and counted as a fallback.

A request is answered in three steps, so that a serving process can run each where it belongs:
:meth:`LookupService.find` (the store: run it on the store's own pool, with a deadline),
:meth:`LookupService.predict` (the model: the process's usual model threads) and
:meth:`LookupService.answers` (pure assembly). :meth:`LookupService.lookup` does all three inline.
Every answer carries an HTTP-like ``status`` of its own: 200 answered, 400 the key cannot be a key
of this table (wrong shape, an integer that is not canonical or does not fit 64 bits), 404 not in
the table (and no model answer), 503 the store could not be asked; one bad key never fails the rest.

Metrics (``prometheus_client``, registry injectable for tests):
``modelrollout_lookup_total{result="hit"|"miss"}`` per key the store was asked about,
``modelrollout_lookup_duration_seconds{path="lookup"|"model"}`` per call of each path,
``modelrollout_lookup_fallback_total{reason}`` keys the model answered because the store failed,
``modelrollout_lookup_table_keys{table}`` rows of the version served and
``modelrollout_lookup_table_info{table,run_id,model_version}`` 1 for the version served (0 for
versions served before).

The published version is cached and re-read at most every ``refresh_s`` seconds, so a newly
published table is served without a restart, and a request costs one indexed query, not two. If
the cached version's table is missing (cleanup dropped it, or the store's file was replaced), the
pointer is re-read at once and the lookup retried; a replaced SQLite file (its ``generation``
changed) forces a re-read too. Each change of the version served is logged.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from .logsafe import RateLimitedLog
from .lookup_metrics import LookupMetrics, lookup_metrics
from .store.base import PredictionStore, PublishedVersion, coerce_key
from .store.naming import validate_table_name
from .storecalls import StoreUnavailable

log = logging.getLogger(__name__)
Mode = Literal["batch", "hybrid"]
LOOKUP_TOTAL = "modelrollout_lookup_total"
LOOKUP_DURATION = "modelrollout_lookup_duration_seconds"

__all__ = ["Answer", "Found", "LookupMetrics", "LookupService", "lookup_metrics", "overall_status"]


@dataclass(frozen=True)
class Answer:
    key: Any
    found: bool
    prediction: Any = None
    source: Literal["lookup", "model"] | None = None
    model_version: str | None = None
    run_id: str | None = None
    message: str | None = None
    status: int = 200


@dataclass(frozen=True)
class Found:
    """What the store said about one request's keys."""

    version: PublishedVersion | None
    coerced: list[tuple | None]  # the typed key, None when it cannot be a key of the table
    problems: list[str | None]  # why not
    rows: dict[tuple, Any]  # stored predictions of the keys present (None: stored null)


def overall_status(answers: Sequence[Answer]) -> int:
    """The response's status: 200 when any key was answered, else the most telling key status
    (503 the store's fault, then 404 not found, then 400 every key was malformed)."""
    statuses = {a.status for a in answers}
    for status in (200, 503, 404):
        if status in statuses:
            return status
    return 400 if statuses else 404


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
        self.metrics = lookup_metrics(registry)
        self._version: PublishedVersion | None = None
        self._checked_at: float | None = None
        self._generation = getattr(store, "generation", 0)
        self._lock = threading.Lock()
        self._failures = RateLimitedLog(log, rate=0.2)

    # --- the store step (blocking: run it on the store's pool) ----------------------------------
    def version(self, *, force: bool = False, strict: bool = False) -> PublishedVersion | None:
        """The published version, re-read from the store at most every ``refresh_s`` seconds.

        A failed re-read serves the cached version (the lookup itself then shows whether the store
        works), unless ``strict`` (a health probe) or nothing was ever read. The lock only guards
        the cache, never the store call: a slow store must not queue every caller behind one read.
        """
        now = self.clock()
        generation = getattr(self.store, "generation", 0)
        with self._lock:
            due = self._checked_at is None or now - self._checked_at >= self.refresh_s
            if not (force or due or generation != self._generation):
                return self._version
        try:
            fresh = self.store.published_version(self.table)
        except Exception as exc:
            with self._lock:
                if strict or self._checked_at is None:
                    raise
                cached = self._version
            self._failures.log(logging.WARNING, "re-reading the published version of %s failed (%s); "
                               "serving the cached one", self.table, _first_line(exc))  # fmt: skip
            return cached
        with self._lock:
            previous, self._version = self._version, fresh
            self._checked_at, self._generation = now, generation
        if _identity(previous) != _identity(fresh):
            self._announce(previous, fresh)
        return fresh

    def cached_version(self) -> PublishedVersion | None:
        """The version last read, without asking the store."""
        return self._version

    def _announce(self, previous: PublishedVersion | None, fresh: PublishedVersion | None) -> None:
        if previous is not None:
            self.metrics.table_info.labels(self.table, previous.run_id, previous.model_version).set(0)
        if fresh is None:
            self.metrics.table_keys.labels(self.table).set(0)
            log.info("lookup table %s: nothing published (was run %s)", self.table, _run(previous))
            return
        self.metrics.table_info.labels(self.table, fresh.run_id, fresh.model_version).set(1)
        self.metrics.table_keys.labels(self.table).set(fresh.rows)
        log.info(
            "lookup table %s: serving run %s (model %s, %d keys, published %s; was %s)",
            self.table, fresh.run_id, fresh.model_version, fresh.rows, fresh.published_at, _run(previous),
        )  # fmt: skip

    def find(self, keys: Sequence[Any]) -> Found:
        """Check the keys against the table's key types, then query the valid ones (one round trip)."""
        version = self.version()
        for attempt in (1, 2):
            if version is None:
                return Found(None, [None] * len(keys), [None] * len(keys), {})
            coerced, problems = _coerce_all(version, keys)
            started = time.perf_counter()
            try:
                rows = self.store.lookup_version(version, [k for k in coerced if k is not None])
            except Exception as exc:
                if attempt == 2 or not self.store.is_missing_table(exc):
                    raise
                log.info(
                    "table %s of %s is gone; re-reading the published version", version.physical, self.table
                )
                version = self.version(force=True)
                continue
            self.metrics.duration.labels("lookup").observe(time.perf_counter() - started)
            return Found(version, coerced, problems, rows)
        raise AssertionError("unreachable")

    # --- the model step (blocking: the model's threads) ------------------------------------------
    def model_rows(self, keys: Sequence[Any], found: Found | None, features: Any) -> list[int]:
        """Indices of the keys the model answers: hybrid mode, with features, not in the table
        (or every valid key when the store could not be asked), and never a malformed key."""
        if self.mode != "hybrid" or features is None:
            return []
        if found is None:
            return [i for i, problem in enumerate(self._problems(keys)) if problem is None]
        return [
            i
            for i, key in enumerate(found.coerced)
            if found.problems[i] is None and (key is None or found.rows.get(key) is None)
        ]

    def predict(self, features: Any, indices: Sequence[int]) -> dict[int, Any]:
        """The model's predictions for ``features[i]``, ``i`` in ``indices``, in one call."""
        if not indices:
            return {}
        matrix = np.asarray([features[i] for i in indices], dtype=np.float64)
        started = time.perf_counter()
        predictions = np.asarray(self.model(matrix))  # type: ignore[misc]
        self.metrics.duration.labels("model").observe(time.perf_counter() - started)
        if predictions.ndim == 2 and predictions.shape[1] == 1:
            predictions = predictions[:, 0]
        if predictions.shape[:1] != (len(indices),):
            raise ValueError(f"model returned shape {predictions.shape} for {len(indices)} rows")
        return dict(zip(indices, predictions.tolist(), strict=True))

    # --- assembly (pure apart from the counters) ---------------------------------------------------
    def answers(
        self, keys: Sequence[Any], found: Found | None, predicted: dict[int, Any],
        *, failure: StoreUnavailable | None = None,
    ) -> list[Answer]:  # fmt: skip
        """One answer per key, in order. ``found`` is None when the store failed with ``failure``."""
        if found is None:
            return self._answers_without_store(keys, predicted, failure)
        version = found.version
        out: list[Answer] = []
        hits = 0
        for i, key in enumerate(keys):
            typed = found.coerced[i]
            value = found.rows.get(typed) if typed is not None else None
            if value is not None:
                hits += 1
                out.append(Answer(key, True, value, "lookup", version.model_version, version.run_id))  # type: ignore[union-attr]
            elif i in predicted:
                out.append(Answer(key, True, predicted[i], "model", self.model_version))
            elif found.problems[i] is not None:
                out.append(Answer(key, False, message=found.problems[i], status=400))
            else:
                stored_null = typed is not None and typed in found.rows
                out.append(Answer(key, False, message=self._not_found(version, key, stored_null), status=404))
        self.metrics.total.labels("hit").inc(hits)
        if len(keys) > hits:
            self.metrics.total.labels("miss").inc(len(keys) - hits)
        return out

    def _answers_without_store(
        self, keys: Sequence[Any], predicted: dict[int, Any], failure: StoreUnavailable | None
    ) -> list[Answer]:
        reason = failure.reason if failure is not None else "error"
        message = str(failure) if failure is not None else "prediction store unavailable"
        if self.mode == "hybrid":
            message += ", and no features were given for the model"
        if predicted:
            self.metrics.fallback.labels(reason).inc(len(predicted))
        problems = self._problems(keys)
        out = []
        for i, key in enumerate(keys):
            if i in predicted:
                out.append(Answer(key, True, predicted[i], "model", self.model_version))
            elif problems[i] is not None:
                out.append(Answer(key, False, message=problems[i], status=400))
            else:
                out.append(Answer(key, False, message=message, status=503))
        return out

    def _problems(self, keys: Sequence[Any]) -> list[str | None]:
        """Key problems judged against the cached version (no store call); none when none is known."""
        version = self._version
        return [None] * len(keys) if version is None else _coerce_all(version, keys)[1]

    def lookup(
        self, keys: Sequence[Any], features: Sequence[Sequence[float]] | np.ndarray | None = None
    ) -> list[Answer]:
        """All three steps inline (blocking; raises what the store raises).

        A key whose stored prediction is null (the batch model's output was invalid) is a miss:
        hybrid mode asks the model, batch mode says so.
        """
        if features is not None and len(features) != len(keys):
            raise ValueError(f"{len(features)} feature rows for {len(keys)} keys; give one row per key")
        found = self.find(keys)
        return self.answers(keys, found, self.predict(features, self.model_rows(keys, found, features)))

    def predict_one(self, key: Any, features: Sequence[float] | None = None) -> Answer:
        return self.lookup([key], None if features is None else [features])[0]

    def _not_found(self, version: PublishedVersion | None, key: Any, stored_null: bool) -> str:
        if version is None:
            where = f"table {self.table!r} has no published version yet"
        elif stored_null:
            where = f"table {self.table!r} (run {version.run_id}) holds no valid prediction for key {key!r}"
        else:
            where = f"key {key!r} is not in table {self.table!r} (run {version.run_id})"
        if self.mode == "hybrid":
            return f"{where}, and no features were given for the model"
        return where


def _coerce_all(
    version: PublishedVersion, keys: Sequence[Any]
) -> tuple[list[tuple | None], list[str | None]]:
    """Each key typed as the table stores it, or None with the reason it cannot be in the table."""
    coerced: list[tuple | None] = []
    problems: list[str | None] = []
    for key in keys:
        try:
            coerced.append(coerce_key(version.schema, key))
            problems.append(None)
        except KeyError as exc:
            coerced.append(None)
            problems.append(str(exc.args[0]) if exc.args else str(exc))
    return coerced, problems


def _identity(version: PublishedVersion | None) -> tuple | None:
    return None if version is None else (version.run_id, version.physical)


def _run(version: PublishedVersion | None) -> str:
    return "none" if version is None else version.run_id


def _first_line(exc: BaseException) -> str:
    text = str(exc).splitlines()[0] if str(exc) else ""
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__
