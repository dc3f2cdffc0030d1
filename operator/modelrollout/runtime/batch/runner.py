"""The batch run: read a chunk, predict it, hand it to a writer thread; then verify and publish.

Memory stays bounded by a few chunks whatever the input size: the reader streams, predictions
are made per chunk, and the writer queue holds at most ``WRITE_QUEUE_DEPTH`` chunks (so a slow
store slows reading down instead of buffering the input). This thread reads, predicts and
encodes a chunk for the store (row tuples for SQLite, CSV for COPY) while the writer thread
sends the previous one, so the database works while Python prepares the next chunk.

Key columns are copied from the input batch to the output untouched (same values, same Arrow
type family); the output rows are ``keys..., prediction, model_version, run_id, predicted_at``.

A shard's run ends with ``finish_shard`` and then ``finalize``: the store takes the table's lock,
and if every shard is done it seals, verifies (the judge below, pure math from :mod:`.verify`)
and publishes in one transaction. So with N shards the last one to finish publishes, and the
others report ``waiting``. Any error before that drops what this shard staged; nothing is
published, and the previously published version keeps serving.
"""

from __future__ import annotations

import contextlib
import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime

import pyarrow as pa

from ..store.base import (
    EncodedChunk,
    FinalizeOutcome,
    Judgement,
    PredictionStore,
    RunFacts,
    RunSchema,
    Staging,
    arrow_kind,
)
from ..store.naming import validate_run_id, validate_table_name
from . import stats as run_stats
from .chunks import check_keys, feature_matrix, output_table, prediction_array
from .predictor import LoadedPredictor, PredictorError, as_predictions
from .readers import ColumnPlan, InputError, InputSpec, open_input
from .sharding import shard_mask
from .verify import Thresholds, evaluate

WRITE_QUEUE_DEPTH = 2
DEFAULT_CHUNK_ROWS = 65_536


@dataclass(frozen=True)
class RunConfig:
    table: str
    run_id: str
    key_columns: tuple[str, ...]
    model_version: str
    feature_columns: tuple[str, ...] | None = None
    key_types: Mapping[str, str] = field(default_factory=dict)
    chunk_rows: int = DEFAULT_CHUNK_ROWS
    shard_index: int = 0
    shard_count: int = 1
    thresholds: Thresholds = field(default_factory=Thresholds)
    keep_versions: int = 3


@dataclass
class RunResult:
    status: str
    rows_in: int = 0
    rows_written: int = 0
    outcome: FinalizeOutcome | None = None
    timings: dict[str, float] = field(default_factory=dict)


def make_judge(thresholds: Thresholds):  # noqa: ANN201 - returns a store Judge
    """The publish decision: merge the shards' statistics and run every check of :mod:`.verify`."""

    def judge(facts: RunFacts) -> Judgement:
        merged = run_stats.merge(s.stats for s in facts.shards if s.stats)
        reference = facts.reference.distribution if facts.reference else None
        verification = evaluate(
            thresholds=thresholds,
            rows_in=facts.rows_in,
            rows_stored=facts.rows_stored,
            current=merged,
            reference=reference,
        )
        return Judgement(
            verification.passed,
            verification.to_dict(),
            run_stats.distribution(merged, bins=thresholds.psi_bins),
        )

    return judge


class _ChunkWriter:
    """A thread writing queued chunks; the first error stops writing and is re-raised to the producer."""

    def __init__(self, store: PredictionStore, staging: Staging) -> None:
        self.store, self.staging = store, staging
        self.rows = 0
        self.seconds = 0.0
        self.error: BaseException | None = None
        self._queue: queue.Queue[EncodedChunk | None] = queue.Queue(maxsize=WRITE_QUEUE_DEPTH)
        self._thread = threading.Thread(target=self._loop, name="modelrollout-writer", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        try:
            while (item := self._queue.get()) is not None:
                if self.error is not None:
                    continue
                started = time.perf_counter()
                try:
                    self.rows += self.store.write_encoded(self.staging, item)
                except BaseException as exc:  # noqa: BLE001 - handed to the producer thread
                    self.error = exc
                self.seconds += time.perf_counter() - started
        finally:
            self.store.release_thread()

    def put(self, chunk: EncodedChunk) -> None:
        while True:
            if self.error is not None:
                raise self.error
            try:
                self._queue.put(chunk, timeout=0.5)
                return
            except queue.Full:
                continue

    def close(self) -> None:
        self._queue.put(None)
        self._thread.join()
        if self.error is not None:
            raise self.error


def _timed(batches: Iterator[pa.RecordBatch], timings: dict[str, float]) -> Iterator[pa.RecordBatch]:
    while True:
        started = time.perf_counter()
        batch = next(batches, None)
        timings["read_s"] += time.perf_counter() - started
        if batch is None:
            return
        yield batch


def run_batch(
    config: RunConfig, *, source: InputSpec, predictor: LoadedPredictor, store: PredictionStore
) -> RunResult:
    """One shard of one run, end to end. Raises InputError/PredictorError/StoreError with nothing published."""
    started = time.perf_counter()
    validate_table_name(config.table)
    validate_run_id(config.run_id)
    if store.run_state(config.table, config.run_id) in ("published", "retired"):
        version = store.published_version(config.table)
        return RunResult("already_published", outcome=FinalizeOutcome("already_published", version=version))
    plan, chunks = open_input(
        source, chunk_rows=config.chunk_rows, key_columns=config.key_columns, feature_columns=config.feature_columns,
        key_types=config.key_types, store=store,
    )  # fmt: skip
    result = RunResult("running", timings={"read_s": 0.0, "predict_s": 0.0, "encode_s": 0.0})
    shard = _Shard(config, plan, predictor, store, result)
    try:
        for batch in _timed(iter(chunks), result.timings):
            shard.add(batch)
        shard.finish()
    except BaseException as exc:
        shard.abort(exc)
        raise
    result.timings["write_s"] = shard.writer.seconds if shard.writer else 0.0
    finalize_started = time.perf_counter()
    outcome = store.finalize(
        config.table, config.run_id, judge=make_judge(config.thresholds), keep_versions=config.keep_versions
    )
    result.timings["finalize_s"] = time.perf_counter() - finalize_started
    result.timings["total_s"] = time.perf_counter() - started
    result.outcome = outcome
    result.status = outcome.status
    return result


class _Shard:
    """The per-chunk state of a running shard; begins the store run lazily at its first rows."""

    def __init__(self, config: RunConfig, plan: ColumnPlan, predictor: LoadedPredictor, store: PredictionStore,
                 result: RunResult) -> None:  # fmt: skip
        self.config, self.plan, self.predictor, self.store, self.result = (
            config,
            plan,
            predictor,
            store,
            result,
        )
        self.kind: str | None = None
        self.staging: Staging | None = None
        self.writer: _ChunkWriter | None = None
        self.stats: run_stats.PredictionStats | None = None
        self.rows_seen = 0
        self.probe: pa.RecordBatch | None = None

    def _predict(self, batch: pa.RecordBatch) -> pa.Array:
        started = time.perf_counter()
        try:
            raw = self.predictor.predict(feature_matrix(batch, self.plan.features))
        except Exception as exc:
            raise PredictorError(
                f"{self.predictor.description} failed on the chunk at row {self.rows_seen}: {exc}"
            ) from exc
        predictions, self.kind = prediction_array(as_predictions(raw, rows=batch.num_rows), kind=self.kind)
        self.result.timings["predict_s"] += time.perf_counter() - started
        return predictions

    def _begin(self, batch: pa.RecordBatch) -> None:
        keys = tuple((k, arrow_kind(batch.schema.field(k).type)) for k in self.plan.keys)
        schema = RunSchema(keys=keys, prediction=self.kind)  # type: ignore[arg-type]
        c = self.config
        self.staging = self.store.begin_run(
            c.table, c.run_id, schema=schema, model_version=c.model_version, shard_index=c.shard_index,
            shard_count=c.shard_count,
        )  # fmt: skip
        reference = self.staging.reference.distribution if self.staging.reference else None
        self.stats = run_stats.PredictionStats(
            kind=run_stats.stats_kind(self.kind or "float"), edges=run_stats.reference_edges(reference),
            seed=run_stats.seed_for(c.run_id, c.shard_index),
        )  # fmt: skip
        self.writer = _ChunkWriter(self.store, self.staging)

    def add(self, batch: pa.RecordBatch) -> None:
        offset = self.rows_seen
        self.rows_seen += batch.num_rows
        if self.probe is None and batch.num_rows:
            self.probe = batch.slice(0, 1)
        if self.config.shard_count > 1 and batch.num_rows:
            check_keys(batch, self.plan.keys, offset=offset)
            mask = shard_mask([batch.column(k) for k in self.plan.keys], shard_index=self.config.shard_index,
                              shard_count=self.config.shard_count)  # fmt: skip
            batch = batch.filter(mask)
        if batch.num_rows == 0:
            return
        check_keys(batch, self.plan.keys, offset=offset)
        predictions = self._predict(batch)
        if self.staging is None:
            self._begin(batch)
        assert self.writer is not None and self.stats is not None
        self.stats.add(predictions)
        rows = output_table(batch, keys=self.plan.keys, predictions=predictions, now=datetime.now(UTC))
        started = time.perf_counter()
        encoded = self.store.encode_chunk(self.staging, rows)  # here, so it overlaps the previous write
        self.result.timings["encode_s"] += time.perf_counter() - started
        self.writer.put(encoded)
        self.result.rows_in += batch.num_rows

    def finish(self) -> None:
        if self.rows_seen == 0:
            raise InputError("the input has no rows")
        if self.staging is None:  # this shard owns none of the rows: register it as done and empty
            assert self.probe is not None
            self._predict(self.probe)
            self._begin(self.probe)
        assert self.writer is not None and self.stats is not None and self.staging is not None
        self.writer.close()
        self.result.rows_written = self.writer.rows
        self.store.finish_shard(
            self.staging,
            rows_in=self.result.rows_in,
            rows_written=self.writer.rows,
            stats=self.stats.to_dict(),
        )

    def abort(self, exc: BaseException) -> None:
        if self.writer is not None:
            with contextlib.suppress(BaseException):  # the original error is the one to report
                self.writer.close()
        if self.staging is not None:
            with contextlib.suppress(Exception):  # best effort; stale staging is cleaned up later
                self.store.abort_shard(self.staging, error=f"{type(exc).__name__}: {exc}"[:2000])
