"""The PostgreSQL prediction store (psycopg 3), bulk-loading with COPY.

Connection settings come from a libpq DSN/URL or, when that is empty, from libpq's own environment
variables, which is how a Kubernetes Secret reaches the pod::

    env:
      - {name: PGHOST, value: predictions-db}
      - {name: PGDATABASE, value: predictions}
      - {name: PGUSER, valueFrom: {secretKeyRef: {name: predictions-db, key: username}}}
      - {name: PGPASSWORD, valueFrom: {secretKeyRef: {name: predictions-db, key: password}}}

(or one ``MODELROLLOUT_STORE_DSN`` from a Secret key; see :mod:`.factory`).

Chunks are written with ``COPY ... FROM STDIN (FORMAT csv)`` fed by Arrow's C++ CSV writer: the
fastest path that needs no per-row Python work. Arrow quotes every string and leaves nulls
unquoted and empty, which is exactly how PostgreSQL's CSV format tells NULL from ''. Writers of
one logical table serialise on a transaction-scoped advisory lock.
"""

from __future__ import annotations

import io
import math
from collections.abc import Iterator
from typing import Any

import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
from psycopg import errors

from .naming import quote_ident
from .predlog import INCOMING, INCOMING_COLUMNS, PredictionLogTables
from .runs import SqlStore
from .urls import redact

_CSV = pacsv.WriteOptions(include_header=False, batch_size=8192)


class PostgresStore(PredictionLogTables, SqlStore):
    ph = "%s"
    log_real_type = "DOUBLE PRECISION"
    column_types = {"int": "BIGINT", "float": "DOUBLE PRECISION", "str": "TEXT", "bool": "BOOLEAN"}
    ts_type = "TIMESTAMPTZ"
    shard_type = "SMALLINT"

    def __init__(self, dsn: str = "", *, statement_timeout_s: float | None = None) -> None:
        super().__init__(redact(dsn or "postgresql:"))
        self.dsn = dsn
        self.statement_timeout_s = statement_timeout_s

    def _open(self) -> psycopg.Connection:
        extra: dict[str, Any] = {}
        if self.statement_timeout_s is not None:
            # libpq counts whole seconds and treats anything below 2 as 2
            extra["connect_timeout"] = max(2, math.ceil(self.statement_timeout_s))
        conn = psycopg.connect(self.dsn, autocommit=True, application_name="modelrollout", **extra)
        conn.execute("SET TIME ZONE 'UTC'")  # COPY sends naive UTC timestamps (see csv_bytes)
        if self.statement_timeout_s is not None:
            conn.execute(f"SET statement_timeout = {max(1, round(self.statement_timeout_s * 1000))}")
        return conn

    def _is_broken(self, conn: Any) -> bool:
        return bool(conn.closed or conn.broken)

    def _transaction(self, conn: psycopg.Connection) -> Any:
        return _Transaction(conn)

    def _lock_table(self, cur: Any, table: str) -> None:
        cur.execute("SELECT pg_advisory_xact_lock(hashtextextended(%s, 0))", ("modelrollout:" + table,))

    def _encode(self, rows: pa.Table, constants: dict[str, Any]) -> tuple[list[str], memoryview]:
        n = rows.num_rows
        for name, value in constants.items():
            rows = rows.append_column(name, pa.repeat(value, n))
        return rows.schema.names, csv_bytes(rows)

    def _write_encoded(
        self, conn: psycopg.Connection, physical: str, payload: tuple[list[str], memoryview]
    ) -> None:
        names, data = payload
        with conn.cursor() as cur, cur.copy(copy_sql(physical, names)) as copy:
            copy.write(data)

    def _ts(self, moment: Any) -> Any:
        return moment

    def _is_missing_table(self, exc: BaseException) -> bool:
        return isinstance(exc, errors.UndefinedTable)

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, errors.UniqueViolation)

    def _table_exists(self, cur: Any, physical: str) -> bool:
        cur.execute(
            "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = %s",
            (physical,),
        )
        return cur.fetchone() is not None

    def _before_seal(self, cur: Any) -> None:
        cur.execute("SET LOCAL maintenance_work_mem = '256MB'")

    def _after_seal(self, cur: Any, physical: str) -> None:
        cur.execute(f"ANALYZE {quote_ident(physical)}")

    def _bulk_insert(self, cur: Any, table: str, columns: Any, rows: Any, *, ignore_conflicts: bool) -> int:
        """One INSERT of column arrays (``unnest``): one round trip and one statement for any count."""
        names = ", ".join(name for name, _ in columns)
        arrays = ", ".join(f"%s::{kind}[]" for _, kind in columns)
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        values = [list(column) for column in zip(*rows, strict=True)] if rows else [[] for _ in columns]
        cur.execute(f"INSERT INTO {table} ({names}) SELECT * FROM unnest({arrays}){conflict}", values)
        return cur.rowcount

    def _delete_batch(self, cur: Any, table: str, *, cutoff: float, limit: int) -> int:
        cur.execute(
            f"DELETE FROM {table} WHERE ctid = ANY(ARRAY(SELECT ctid FROM {table} WHERE ts < %s LIMIT %s))",
            (cutoff, limit),
        )
        return cur.rowcount

    def _create_incoming(self, cur: Any) -> None:
        cols = ", ".join(f"{name} {'DOUBLE PRECISION' if kind == 'float8' else 'INTEGER' if kind == 'int' else 'TEXT'}"
                         for name, kind in INCOMING_COLUMNS)  # fmt: skip
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {INCOMING} ({cols})")
        cur.execute(f"DELETE FROM {INCOMING}")

    def iter_query(self, sql: str, *, chunk_rows: int) -> tuple[list[str], Iterator[list[tuple]]]:
        """A server-side cursor in a read-only transaction on a connection of its own."""
        conn = psycopg.connect(self.dsn, application_name="modelrollout-input")
        try:
            conn.read_only = True
            cur = conn.cursor(name="modelrollout_input")
            cur.itersize = chunk_rows
            cur.execute(sql)
            names = [d.name for d in cur.description or ()]
        except Exception:
            conn.close()
            raise

        def rows() -> Iterator[list[tuple]]:
            try:
                yield from self._iter_rows(cur, chunk_rows)
            finally:
                conn.close()

        return names, rows()


class _Transaction:
    """``conn.transaction()`` plus a cursor, closing both in the right order."""

    def __init__(self, conn: psycopg.Connection) -> None:
        self._tx = conn.transaction()
        self._cur = conn.cursor()

    def __enter__(self) -> psycopg.Cursor:
        self._tx.__enter__()
        return self._cur

    def __exit__(self, *exc: Any) -> bool | None:
        try:
            return self._tx.__exit__(*exc)
        finally:
            self._cur.close()


def copy_sql(physical: str, names: list[str]) -> str:
    """One COPY per chunk (one transaction each); with :func:`csv_bytes` also the bare write path."""
    return (
        f"COPY {quote_ident(physical)} ({', '.join(quote_ident(n) for n in names)}) FROM STDIN (FORMAT csv)"
    )


def csv_bytes(rows: pa.Table) -> memoryview:
    """Arrow's C++ CSV writer: strings quoted, nulls unquoted and empty, as COPY's CSV format wants.

    Zone-aware timestamps are written as naive UTC (the session's time zone is UTC): Arrow formats
    those 8x faster than it formats a zone suffix.
    """
    for i, field in enumerate(rows.schema):
        if pa.types.is_timestamp(field.type) and field.type.tz is not None:
            rows = rows.set_column(i, field.name, rows.column(i).cast(pa.timestamp(field.type.unit)))
    sink = io.BytesIO()
    pacsv.write_csv(rows, sink, _CSV)
    return sink.getbuffer()
