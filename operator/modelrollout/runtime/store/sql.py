"""The part of a prediction store that is the same SQL on SQLite and PostgreSQL.

Three metadata tables carry the state, so every decision survives a killed process:

``modelrollout_runs``       one row per (logical table, run id): physical table, state, schema,
                            reference run (for drift), verification and distribution once judged.
``modelrollout_shards``     one row per shard of a run: running/done/failed and its statistics.
``modelrollout_published``  the pointer: logical table -> the physical table readers use.

A dialect subclass supplies connections, transactions, the table lock, bulk writes and error
classification; everything here only uses ``cursor.execute`` with the dialect's placeholder.
"""

from __future__ import annotations

import contextlib
import json
import threading
from abc import abstractmethod
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager
from datetime import datetime
from typing import Any

import pyarrow as pa

from .base import PredictionStore, PublishedVersion, RunSchema
from .naming import PREDICTION, physical_table_name, quote_ident, validate_table_name

LOOKUP_BATCH = 400
_META_DDL = (
    """CREATE TABLE IF NOT EXISTS modelrollout_runs (
        logical TEXT NOT NULL, run_id TEXT NOT NULL, physical TEXT NOT NULL, state TEXT NOT NULL,
        run_schema TEXT NOT NULL, model_version TEXT NOT NULL, shard_count INTEGER NOT NULL,
        reference_run_id TEXT, created_at {ts} NOT NULL, updated_at {ts} NOT NULL, published_at {ts},
        rows_stored BIGINT, verification TEXT, distribution TEXT, error TEXT,
        PRIMARY KEY (logical, run_id))""",
    """CREATE TABLE IF NOT EXISTS modelrollout_shards (
        logical TEXT NOT NULL, run_id TEXT NOT NULL, shard_index INTEGER NOT NULL, state TEXT NOT NULL,
        rows_in BIGINT, rows_written BIGINT, stats TEXT, error TEXT, updated_at {ts} NOT NULL,
        PRIMARY KEY (logical, run_id, shard_index))""",
    """CREATE TABLE IF NOT EXISTS modelrollout_published (
        logical TEXT PRIMARY KEY, run_id TEXT NOT NULL, physical TEXT NOT NULL,
        model_version TEXT NOT NULL, rows_stored BIGINT NOT NULL, published_at {ts} NOT NULL)""",
)
_VERSION_SQL = """SELECT r.run_id, r.physical, r.model_version, r.rows_stored, r.published_at,
    r.run_schema, r.distribution FROM modelrollout_runs r WHERE r.logical = {p} AND r.run_id = {p}"""


class SqlBase(PredictionStore):
    ph = "?"
    column_types: dict[str, str] = {}
    ts_type = "TEXT"
    shard_type = "INTEGER"

    def __init__(self, url: str) -> None:
        self.url = url
        self._local = threading.local()
        self._connections: list[Any] = []
        self._guard = threading.Lock()
        self._meta_ready = False

    # --- dialect hooks -------------------------------------------------------------------------
    @abstractmethod
    def _open(self) -> Any: ...

    @abstractmethod
    def _transaction(self, conn: Any) -> AbstractContextManager[Any]:
        """A write transaction yielding a cursor; commits on success, rolls back on any exception."""

    @abstractmethod
    def _lock_table(self, cur: Any, table: str) -> None:
        """Serialise writers of one logical table's metadata until the transaction ends."""

    @abstractmethod
    def _encode(self, rows: pa.Table, constants: dict[str, Any]) -> Any:
        """The rows plus the per-run constant columns, ready for :meth:`_write_encoded` (no I/O)."""

    @abstractmethod
    def _write_encoded(self, conn: Any, physical: str, payload: Any) -> None:
        """Append an encoded chunk in one committed transaction by the store's fastest path."""

    @abstractmethod
    def _is_missing_table(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def _is_unique_violation(self, exc: BaseException) -> bool: ...

    @abstractmethod
    def _table_exists(self, cur: Any, physical: str) -> bool: ...

    def _is_broken(self, conn: Any) -> bool:
        return False

    def is_missing_table(self, exc: BaseException) -> bool:
        return self._is_missing_table(exc)

    def _before_seal(self, cur: Any) -> None:
        """Session settings for the index build (PostgreSQL raises maintenance_work_mem)."""

    def _after_seal(self, cur: Any, physical: str) -> None:
        """Planner statistics for the new table (PostgreSQL runs ANALYZE)."""

    def _ts(self, moment: datetime) -> Any:
        return moment.isoformat(timespec="microseconds")

    def _ts_text(self, value: Any) -> str:
        return value.isoformat(timespec="microseconds") if isinstance(value, datetime) else str(value)

    def _decode_prediction(self, kind: str, value: Any) -> Any:
        return value

    # --- connections ---------------------------------------------------------------------------
    def _conn(self) -> Any:
        conn = getattr(self._local, "conn", None)
        if conn is None or self._is_broken(conn):
            conn = self._open()
            with self._guard:
                self._connections.append(conn)
            self._local.conn = conn
        return conn

    def release_thread(self) -> None:
        conn = getattr(self._local, "conn", None)
        if conn is not None:
            self._local.conn = None
            with self._guard:
                self._connections = [c for c in self._connections if c is not conn]
            with contextlib.suppress(Exception):
                conn.close()

    def close(self) -> None:
        with self._guard:
            conns, self._connections = self._connections, []
        for conn in conns:
            with contextlib.suppress(Exception):  # closing is best effort
                conn.close()
        self._local = threading.local()

    def _sql(self, text: str) -> str:
        return text.format(p=self.ph, ts=self.ts_type)

    def _ensure_metadata(self) -> None:
        if self._meta_ready:
            return
        with self._transaction(self._conn()) as cur:
            self._lock_table(cur, "modelrollout_metadata")
            for ddl in _META_DDL:
                cur.execute(self._sql(ddl))
        self._meta_ready = True

    # --- readers -------------------------------------------------------------------------------
    def _pointer(self, cur: Any, table: str) -> str | None:
        cur.execute(self._sql("SELECT run_id FROM modelrollout_published WHERE logical = {p}"), (table,))
        row = cur.fetchone()
        return None if row is None else row[0]

    def _version(self, cur: Any, table: str, run_id: str) -> PublishedVersion | None:
        cur.execute(self._sql(_VERSION_SQL), (table, run_id))
        row = cur.fetchone()
        if row is None:
            return None
        run, physical, model_version, rows, published_at, schema_json, distribution = row
        return PublishedVersion(
            table=table, run_id=run, physical=physical, model_version=model_version, rows=int(rows or 0),
            published_at=self._ts_text(published_at), schema=RunSchema.from_json(schema_json),
            distribution=None if distribution is None else json.loads(distribution),
        )  # fmt: skip

    def _read(self, fn):  # noqa: ANN001, ANN202
        """Run a read on this thread's connection; None if the metadata does not exist yet."""
        conn = self._conn()
        try:
            cur = conn.cursor()
            try:
                return fn(cur)
            finally:
                cur.close()
        except Exception as exc:
            if self._is_missing_table(exc):
                return None
            raise

    def published_version(self, table: str) -> PublishedVersion | None:
        validate_table_name(table)

        def read(cur: Any) -> PublishedVersion | None:
            run_id = self._pointer(cur, table)
            return None if run_id is None else self._version(cur, table, run_id)

        return self._read(read)

    def run_state(self, table: str, run_id: str) -> str | None:
        def read(cur: Any) -> str | None:
            cur.execute(
                self._sql("SELECT state FROM modelrollout_runs WHERE logical = {p} AND run_id = {p}"),
                (table, run_id),
            )
            row = cur.fetchone()
            return None if row is None else row[0]

        return self._read(read)

    def staged_rows(self, table: str, run_id: str) -> int | None:
        physical = physical_table_name(table, run_id)

        def read(cur: Any) -> int:
            cur.execute(f"SELECT COUNT(*) FROM {quote_ident(physical)}")
            return int(cur.fetchone()[0])

        return self._read(read)

    def lookup_version(self, version: PublishedVersion, keys: Sequence[tuple]) -> dict[tuple, Any]:
        """Raises the driver's missing-table error if the version was dropped meanwhile (callers refresh)."""
        names = version.schema.key_names
        cols = ", ".join(quote_ident(n) for n in names)
        kind = version.schema.prediction
        found: dict[tuple, Any] = {}
        cur = self._conn().cursor()
        try:
            for start in range(0, len(keys), LOOKUP_BATCH):
                batch = keys[start : start + LOOKUP_BATCH]
                if len(names) == 1:
                    where = f"{cols} IN ({', '.join([self.ph] * len(batch))})"
                    params: list[Any] = [k[0] for k in batch]
                else:
                    row = "(" + ", ".join([self.ph] * len(names)) + ")"
                    where = f"({cols}) IN (VALUES {', '.join([row] * len(batch))})"
                    params = [v for k in batch for v in k]
                cur.execute(
                    f"SELECT {cols}, {PREDICTION} FROM {quote_ident(version.physical)} WHERE {where}", params
                )
                for r in cur.fetchall():
                    found[tuple(r[:-1])] = self._decode_prediction(kind, r[-1])
        finally:
            cur.close()
        return found

    def _iter_rows(self, cur: Any, chunk_rows: int) -> Iterator[list[tuple]]:
        while rows := cur.fetchmany(chunk_rows):
            yield rows
