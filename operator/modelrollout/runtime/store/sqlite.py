"""The embedded prediction store: one SQLite file, in WAL mode.

WAL lets the lookup service read the published version while a batch run writes the next one, and
``BEGIN IMMEDIATE`` takes the single writer lock at the start of every write transaction, so the
publishing transaction is serialised against other writers without a separate lock table.

Each chunk is one ``executemany`` in one transaction: a killed run loses at most the chunk in
flight, and everything it did write stays in its own staging table, never in the published one.

A serving pod opens the store as a *reader* (``busy_timeout_s`` given): it never changes the
file's journal mode, waits at most that long for a lock, and notices when the file at the path is
replaced (deleted and re-created, or renamed over): connections hold the file they opened, so
without a check they would serve the deleted file's old run forever. The path's inode and device
are compared at most every :data:`REOPEN_CHECK_S`; on a change every thread re-opens lazily and
:attr:`SqliteStore.generation` counts up (the lookup service then re-reads the pointer at once).
"""

from __future__ import annotations

import itertools
import logging
import os
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc

from .naming import StoreError, quote_ident
from .predlog import INCOMING, INCOMING_COLUMNS, PredictionLogTables
from .runs import SqlStore

BUSY_TIMEOUT_S = 60.0  # writers (batch runs): wait long for the single writer lock
REOPEN_CHECK_S = 1.0
log = logging.getLogger(__name__)


class SqliteStore(PredictionLogTables, SqlStore):
    ph = "?"
    column_types = {"int": "INTEGER", "float": "REAL", "str": "TEXT", "bool": "INTEGER"}
    ts_type = "TEXT"
    shard_type = "INTEGER"

    def __init__(
        self, path: str | Path, *, busy_timeout_s: float | None = None, clock=time.monotonic,
        reader: bool | None = None, watch_file: bool | None = None,
    ) -> None:  # fmt: skip
        """``reader`` (default: whether ``busy_timeout_s`` is given) opens the file for serving
        lookups; the prediction log passes ``reader=False`` with a short busy timeout: it writes,
        but never waits long for the lock. ``watch_file`` (default: ``reader``) re-opens the file
        when it is replaced, so a long-lived process never keeps using a deleted file."""
        path = Path(path)
        if str(path) in ("", ":memory:"):
            raise StoreError("the SQLite store needs a file path (each thread opens its own connection)")
        super().__init__(f"sqlite:///{path}")
        self.path = path
        self.reader = busy_timeout_s is not None if reader is None else reader
        self.watch_file = self.reader if watch_file is None else watch_file
        self.busy_timeout_s = BUSY_TIMEOUT_S if busy_timeout_s is None else busy_timeout_s
        self.generation = 0
        self._clock = clock
        self._file: tuple[int, int] | None = None
        self._file_checked_at: float | None = None
        self._file_lock = threading.Lock()

    def _open(self) -> sqlite3.Connection:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        conn = sqlite3.connect(
            self.path, isolation_level=None, check_same_thread=False, timeout=self.busy_timeout_s
        )
        if not self.reader:
            conn.execute("PRAGMA journal_mode=WAL")
            conn.execute("PRAGMA synchronous=NORMAL")
        return conn

    def _conn(self) -> sqlite3.Connection:
        """This thread's connection, re-opened when the file at the path is no longer the one it opened."""
        if self.watch_file:
            generation = self._check_file()
            if getattr(self._local, "generation", generation) != generation:
                self.release_thread()
            self._local.generation = generation
        conn = super()._conn()
        if self.watch_file and self._file is None:  # checked before the file existed: the one opened
            with self._file_lock:
                self._file = self._file or file_identity(self.path)
        return conn

    def _check_file(self) -> int:
        """The current generation; stats the path at most every REOPEN_CHECK_S (one syscall)."""
        now = self._clock()
        if self._file_checked_at is not None and now - self._file_checked_at < REOPEN_CHECK_S:
            return self.generation
        with self._file_lock:
            if self._file_checked_at is not None and now - self._file_checked_at < REOPEN_CHECK_S:
                return self.generation
            self._file_checked_at = now
            current = file_identity(self.path)
            if self._file is not None and current != self._file:
                self.generation += 1
                log.info(
                    "prediction store %s was replaced (inode %s -> %s); re-opening it",
                    self.path, self._file[1], "none" if current is None else current[1],
                )  # fmt: skip
            self._file = current
            return self.generation

    @contextmanager
    def _transaction(self, conn: sqlite3.Connection) -> Iterator[sqlite3.Cursor]:
        cur = conn.cursor()
        cur.execute("BEGIN IMMEDIATE")
        try:
            yield cur
        except BaseException:
            conn.rollback()
            raise
        else:
            conn.commit()
        finally:
            cur.close()

    def _lock_table(self, cur: Any, table: str) -> None:
        """Nothing to do: BEGIN IMMEDIATE already holds the database's single writer lock."""

    def _encode(self, rows: pa.Table, constants: dict[str, Any]) -> tuple[list[str], list[tuple]]:
        columns: dict[str, Any] = {}
        for name, column in zip(rows.schema.names, rows.columns, strict=True):
            if pa.types.is_timestamp(column.type):
                low_high = pc.min_max(column)
                if low_high["min"] == low_high["max"]:  # one timestamp per chunk: one string
                    columns[name] = utc_text(column.slice(0, 1))[0].as_py()
                    continue
                column = utc_text(column)
            columns[name] = column
        columns.update(constants)
        return list(columns), list(row_values(columns, rows.num_rows))

    def _write_encoded(
        self, conn: sqlite3.Connection, physical: str, payload: tuple[list[str], list[tuple]]
    ) -> None:
        names, rows = payload
        conn.execute("BEGIN IMMEDIATE")
        try:
            conn.executemany(insert_sql(physical, names), rows)
        except BaseException:
            conn.rollback()
            raise
        conn.commit()

    def _is_missing_table(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.OperationalError) and "no such table" in str(exc)

    def _is_unique_violation(self, exc: BaseException) -> bool:
        return isinstance(exc, sqlite3.IntegrityError) and "UNIQUE" in str(exc)

    def _table_exists(self, cur: Any, physical: str) -> bool:
        cur.execute("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", (physical,))
        return cur.fetchone() is not None

    def _bulk_insert(self, cur: Any, table: str, columns: Any, rows: Any, *, ignore_conflicts: bool) -> int:
        names = ", ".join(name for name, _ in columns)
        conflict = " ON CONFLICT DO NOTHING" if ignore_conflicts else ""
        before = cur.connection.total_changes
        cur.executemany(
            f"INSERT INTO {table} ({names}) VALUES ({', '.join('?' * len(columns))}){conflict}", rows
        )
        return cur.connection.total_changes - before

    def _delete_batch(self, cur: Any, table: str, *, cutoff: float, limit: int) -> int:
        cur.execute(
            f"DELETE FROM {table} WHERE rowid IN (SELECT rowid FROM {table} WHERE ts < ? LIMIT ?)",
            (cutoff, limit),
        )
        return cur.rowcount

    def _create_incoming(self, cur: Any) -> None:
        cols = ", ".join(f"{name} {'TEXT' if kind == 'text' else 'INTEGER' if kind == 'int' else 'REAL'}"
                         for name, kind in INCOMING_COLUMNS)  # fmt: skip
        cur.execute(f"CREATE TEMP TABLE IF NOT EXISTS {INCOMING} ({cols})")
        cur.execute(f"DELETE FROM {INCOMING}")

    def _decode_prediction(self, kind: str, value: Any) -> Any:
        return bool(value) if kind == "bool" and value is not None else value

    def iter_query(self, sql: str, *, chunk_rows: int) -> tuple[list[str], Iterator[list[tuple]]]:
        conn = sqlite3.connect(f"file:{self.path}?mode=ro", uri=True, timeout=self.busy_timeout_s)
        try:
            cur = conn.execute(sql)
        except Exception:
            conn.close()
            raise
        names = [d[0] for d in cur.description or ()]

        def rows() -> Iterator[list[tuple]]:
            try:
                yield from self._iter_rows(cur, chunk_rows)
            finally:
                conn.close()

        return names, rows()


def file_identity(path: Path) -> tuple[int, int] | None:
    """(device, inode) of the file at ``path``, or None when there is none."""
    try:
        stat = os.stat(path)
    except FileNotFoundError:
        return None
    return stat.st_dev, stat.st_ino


def utc_text(column: pa.ChunkedArray | pa.Array) -> pa.ChunkedArray | pa.Array:
    """``YYYY-MM-DD HH:MM:SS.ffffffZ`` (sorts as time; SQLite's date functions read it).

    Going through a naive timestamp is 20x faster than Arrow's zone-aware cast to text.
    """
    naive = pc.cast(column, pa.timestamp("us"))
    return pc.binary_join_element_wise(pc.cast(naive, pa.string()), "Z", "")


def insert_sql(physical: str, names: list[str]) -> str:
    """The executemany statement; with :func:`row_values` also the benchmark's bare write path."""
    marks = ", ".join("?" * len(names))
    return (
        f"INSERT INTO {quote_ident(physical)} ({', '.join(quote_ident(n) for n in names)}) VALUES ({marks})"
    )


def row_values(columns: dict[str, Any], n: int) -> Iterator[tuple]:
    """Row tuples from Arrow columns, or from plain values repeated on every row (run id, shard)."""
    values = [
        c.to_pylist() if isinstance(c, (pa.Array, pa.ChunkedArray)) else itertools.repeat(c, n)
        for c in columns.values()
    ]
    return zip(*values, strict=False)  # repeats are unsized
