r"""The life of a batch run in SQL: stage, record shards, then seal, judge and publish atomically.

State machine of a run (``modelrollout_runs.state``)::

    staging --finalize: judge passes--> published --a newer run publishes--> retired --cleanup--> dropped
       |  \--finalize: judge fails--> rejected        (a rerun of the same run id goes back to staging;
       |                                               finalize may judge it again, e.g. with relaxed thresholds)
       \--a shard fails--> failed     (its rows are dropped; a retried shard goes back to staging)
    staging/rejected/failed, untouched for ``stale_after_s`` --cleanup--> dropped

Publishing (:mod:`.publishing`) is one transaction under the table's lock.
"""

from __future__ import annotations

import dataclasses
import json
from datetime import UTC, datetime, timedelta
from typing import Any

import pyarrow as pa

from .base import EncodedChunk, RunSchema, Staging
from .naming import (
    MODEL_VERSION,
    PREDICTED_AT,
    PREDICTION,
    RUN_ID,
    SHARD,
    AlreadyPublished,
    RunConflict,
    StoreError,
    physical_table_name,
    quote_ident,
    validate_run_id,
    validate_table_name,
)
from .publishing import Publishing


class SqlStore(Publishing):
    """Writers on top of the shared SQL readers; the dialect classes derive from this."""

    def begin_run(
        self,
        table: str,
        run_id: str,
        *,
        schema: RunSchema,
        model_version: str,
        shard_index: int = 0,
        shard_count: int = 1,
    ) -> Staging:
        validate_table_name(table)
        validate_run_id(run_id)
        if shard_count < 1 or not 0 <= shard_index < shard_count:
            raise StoreError(f"shard index {shard_index} is outside 0..{shard_count - 1}")
        self._ensure_metadata()
        staging = Staging(
            table, run_id, physical_table_name(table, run_id), schema, model_version, shard_index, shard_count
        )
        now = self._ts(datetime.now(UTC))
        with self._transaction(self._conn()) as cur:
            self._lock_table(cur, table)
            cur.execute(
                self._sql(
                    "SELECT state, run_schema, model_version, shard_count, reference_run_id FROM modelrollout_runs "
                    "WHERE logical = {p} AND run_id = {p}"
                ),
                (table, run_id),
            )
            row = cur.fetchone()
            if row is None:
                reference_run = self._new_run(cur, staging, now)
            else:
                reference_run = self._reset_run(cur, staging, row, now)
            cur.execute(
                self._sql(
                    "DELETE FROM modelrollout_shards WHERE logical = {p} AND run_id = {p} AND shard_index = {p}"
                ),
                (table, run_id, shard_index),
            )
            cur.execute(
                self._sql(
                    "INSERT INTO modelrollout_shards (logical, run_id, shard_index, state, updated_at) "
                    "VALUES ({p}, {p}, {p}, 'running', {p})"
                ),
                (table, run_id, shard_index, now),
            )
            reference = self._version(cur, table, reference_run) if reference_run else None
        return dataclasses.replace(staging, reference=reference)

    def _new_run(self, cur: Any, staging: Staging, now: Any) -> str | None:
        """Insert the run row (its drift reference is what is published now) and create its table."""
        reference_run = self._pointer(cur, staging.table)
        values = (
            staging.table,
            staging.run_id,
            staging.physical,
            staging.schema.to_json(),
            staging.model_version,
        )
        cur.execute(
            self._sql(
                "INSERT INTO modelrollout_runs (logical, run_id, physical, state, run_schema, model_version, "
                "shard_count, reference_run_id, created_at, updated_at) "
                "VALUES ({p}, {p}, {p}, 'staging', {p}, {p}, {p}, {p}, {p}, {p})"
            ),
            (*values, staging.shard_count, reference_run, now, now),
        )
        cur.execute(f"DROP TABLE IF EXISTS {quote_ident(staging.physical)}")
        self._create_physical(cur, staging.physical, staging.schema)
        return reference_run

    def _reset_run(self, cur: Any, staging: Staging, row: tuple, now: Any) -> str | None:
        """A rerun: refuse if published or different; else drop what this shard (or the run) staged."""
        state, schema_json, old_version, old_shards, reference_run = row
        name = f"run {staging.run_id!r} of table {staging.table!r}"
        if state in ("published", "retired"):
            raise AlreadyPublished(f"{name} is already published ({state})")
        if state == "dropped":
            raise RunConflict(f"{name} was cleaned up; use a new run id")
        before = (RunSchema.from_json(schema_json), old_version, int(old_shards))
        if before != (staging.schema, staging.model_version, staging.shard_count):
            raise RunConflict(
                f"{name} exists with schema {schema_json}, model version {old_version!r} and {old_shards} "
                "shard(s); a rerun must match them (or use a new run id)"
            )
        if staging.shard_count == 1:  # the only writer: start the table afresh, against today's reference
            reference_run = self._pointer(cur, staging.table)
            cur.execute(f"DROP TABLE IF EXISTS {quote_ident(staging.physical)}")
            self._create_physical(cur, staging.physical, staging.schema)
        else:  # other shards keep their rows and the run keeps its reference
            cur.execute(
                self._sql(f"DELETE FROM {quote_ident(staging.physical)} WHERE {SHARD} = {{p}}"),
                (staging.shard_index,),
            )
        cur.execute(
            self._sql(
                "UPDATE modelrollout_runs SET state = 'staging', reference_run_id = {p}, updated_at = {p}, "
                "error = NULL, verification = NULL WHERE logical = {p} AND run_id = {p}"
            ),
            (reference_run, now, staging.table, staging.run_id),
        )
        return reference_run

    def _create_physical(self, cur: Any, physical: str, schema: RunSchema) -> None:
        columns = [f"{quote_ident(name)} {self.column_types[kind]} NOT NULL" for name, kind in schema.keys]
        columns += [
            f"{PREDICTION} {self.column_types[schema.prediction]}",
            f"{MODEL_VERSION} TEXT NOT NULL",
            f"{RUN_ID} TEXT NOT NULL",
            f"{PREDICTED_AT} {self.ts_type} NOT NULL",
            f"{SHARD} {self.shard_type} NOT NULL",
        ]
        cur.execute(f"CREATE TABLE {quote_ident(physical)} ({', '.join(columns)})")

    def encode_chunk(self, staging: Staging, rows: pa.Table) -> EncodedChunk:
        expected = staging.schema.arrow_schema()
        if rows.schema.names != expected.names:
            raise StoreError(f"chunk columns {rows.schema.names} differ from the run's {expected.names}")
        rows = rows.cast(expected, safe=True)
        constants = {MODEL_VERSION: staging.model_version, RUN_ID: staging.run_id, SHARD: staging.shard_index}
        return EncodedChunk(rows.num_rows, self._encode(rows, constants) if rows.num_rows else None)

    def write_encoded(self, staging: Staging, chunk: EncodedChunk) -> int:
        if chunk.rows:
            self._write_encoded(self._conn(), staging.physical, chunk.payload)
        return chunk.rows

    def finish_shard(
        self, staging: Staging, *, rows_in: int, rows_written: int, stats: dict[str, Any]
    ) -> None:
        self._set_shard(
            staging, state="done", rows_in=rows_in, rows_written=rows_written, stats=stats, error=None
        )

    def abort_shard(self, staging: Staging, *, error: str) -> None:
        with self._transaction(self._conn()) as cur:
            self._lock_table(cur, staging.table)
            if staging.shard_count == 1:
                cur.execute(f"DROP TABLE IF EXISTS {quote_ident(staging.physical)}")
            else:
                cur.execute(
                    self._sql(f"DELETE FROM {quote_ident(staging.physical)} WHERE {SHARD} = {{p}}"),
                    (staging.shard_index,),
                )
        self._set_shard(staging, state="failed", rows_in=None, rows_written=None, stats=None, error=error)

    def _set_shard(self, staging: Staging, *, state: str, rows_in, rows_written, stats, error) -> None:  # noqa: ANN001
        now = self._ts(datetime.now(UTC))
        with self._transaction(self._conn()) as cur:
            self._lock_table(cur, staging.table)
            cur.execute(
                self._sql(
                    "UPDATE modelrollout_shards SET state = {p}, rows_in = {p}, rows_written = {p}, stats = {p}, "
                    "error = {p}, updated_at = {p} WHERE logical = {p} AND run_id = {p} AND shard_index = {p}"
                ),
                (state, rows_in, rows_written, None if stats is None else json.dumps(stats), error, now,
                 staging.table, staging.run_id, staging.shard_index),
            )  # fmt: skip
            if state == "failed":
                cur.execute(
                    self._sql(
                        "UPDATE modelrollout_runs SET state = 'failed', error = {p}, updated_at = {p} "
                        "WHERE logical = {p} AND run_id = {p} AND state = 'staging'"
                    ),
                    (error[:2000] if error else None, now, staging.table, staging.run_id),
                )

    def cleanup(self, table: str, *, keep_versions: int = 3, stale_after_s: float = 24 * 3600) -> list[str]:
        validate_table_name(table)
        self._ensure_metadata()
        cutoff = self._ts(datetime.now(UTC) - timedelta(seconds=stale_after_s))
        with self._transaction(self._conn()) as cur:
            self._lock_table(cur, table)
            cur.execute(
                self._sql(
                    "SELECT physical FROM modelrollout_runs WHERE logical = {p} AND state = 'retired' "
                    "ORDER BY published_at DESC"
                ),
                (table,),
            )
            doomed = [r[0] for r in cur.fetchall()][max(keep_versions - 1, 0) :]
            cur.execute(
                self._sql(
                    "SELECT physical FROM modelrollout_runs WHERE logical = {p} "
                    "AND state IN ('staging', 'rejected', 'failed') AND updated_at < {p}"
                ),
                (table, cutoff),
            )
            doomed += [r[0] for r in cur.fetchall()]
            for physical in doomed:
                cur.execute(f"DROP TABLE IF EXISTS {quote_ident(physical)}")
                cur.execute(
                    self._sql(
                        "UPDATE modelrollout_runs SET state = 'dropped' WHERE logical = {p} AND physical = {p}"
                    ),
                    (table, physical),
                )
        return doomed
