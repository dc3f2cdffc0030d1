"""The shared prediction log and its labels, in SQL (the same statements on SQLite and PostgreSQL).

Two tables, created on first use (idempotently, under the store's metadata lock):

``modelrollout_predictions``  one row per prediction (a request's rows, a lookup's answered keys):
    request_id, row, ts (epoch seconds), model, version, track, key (the lookup key, else NULL),
    prediction (text), client_request_id; PRIMARY KEY (request_id, row). Inserts are
    first-write-wins (``ON CONFLICT DO NOTHING``): nothing ever replaces a logged prediction.
``modelrollout_labels``  the true label of one prediction row: request_id, row, label, ts, source
    (``feedback`` | ``import``); PRIMARY KEY (request_id, row). The first label wins; a second one
    is a duplicate and changes nothing.

Retention deletes rows by time, in bounded batches (:meth:`PredictionLogTables.prune`). The
figures are read as counts of (prediction, label) pairs of one model version
(:meth:`PredictionLogTables.label_pairs`): a handful of rows for a classifier, at most one per
label for a regression, so the arithmetic (:mod:`modelrollout.runtime.ground_truth.figures`) is
the same Python code on both stores.

Dialect hooks (SQLite and PostgreSQL implement them): :meth:`_bulk_insert` and :meth:`_delete_batch`.
"""

from __future__ import annotations

from abc import abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

PREDICTIONS = "modelrollout_predictions"
LABELS = "modelrollout_labels"
INCOMING = "modelrollout_incoming_labels"
LOG_LOCK = "modelrollout_prediction_log"

# (name, PostgreSQL array type for bulk inserts). "row" and "key" are quoted: both are keywords.
PREDICTION_COLUMNS: tuple[tuple[str, str], ...] = (
    ("request_id", "text"), ('"row"', "int"), ("ts", "float8"), ("model", "text"), ("version", "text"),
    ("track", "text"), ('"key"', "text"), ("prediction", "text"), ("client_request_id", "text"),
)  # fmt: skip
INCOMING_COLUMNS: tuple[tuple[str, str], ...] = (
    ("seq", "int"), ("request_id", "text"), ('"row"', "int"), ("label", "text"), ("ts", "float8"),
    ('"key"', "text"),
)  # fmt: skip

_DDL = (
    f"""CREATE TABLE IF NOT EXISTS {PREDICTIONS} (
        request_id TEXT NOT NULL, "row" INTEGER NOT NULL, ts {{real}} NOT NULL, model TEXT NOT NULL,
        version TEXT NOT NULL, track TEXT NOT NULL, "key" TEXT, prediction TEXT NOT NULL,
        client_request_id TEXT, PRIMARY KEY (request_id, "row"))""",
    f"CREATE INDEX IF NOT EXISTS {PREDICTIONS}_version_ts ON {PREDICTIONS} (version, ts)",
    f'CREATE INDEX IF NOT EXISTS {PREDICTIONS}_key_ts ON {PREDICTIONS} ("key", ts)',
    f"CREATE INDEX IF NOT EXISTS {PREDICTIONS}_ts ON {PREDICTIONS} (ts)",  # retention's deletes
    f"""CREATE TABLE IF NOT EXISTS {LABELS} (
        request_id TEXT NOT NULL, "row" INTEGER NOT NULL, label TEXT NOT NULL, ts {{real}} NOT NULL,
        source TEXT NOT NULL, PRIMARY KEY (request_id, "row"))""",
    f"CREATE INDEX IF NOT EXISTS {LABELS}_ts ON {LABELS} (ts)",
)
_EXISTS = f'EXISTS (SELECT 1 FROM {PREDICTIONS} p WHERE p.request_id = i.request_id AND p."row" = i."row")'
# The latest prediction for the label's key at or before the label's time, within the lag.
_LATEST_FOR_KEY = (
    f'SELECT p.{{col}} FROM {PREDICTIONS} p WHERE p."key" = {INCOMING}."key" AND p.ts <= {INCOMING}.ts '
    f'AND p.ts >= {INCOMING}.ts - {{p}}{{model}} ORDER BY p.ts DESC, p.request_id DESC, p."row" DESC LIMIT 1'
)


@dataclass(frozen=True)
class LoggedPrediction:
    """What the log holds for one (request id, row)."""

    prediction: str
    model: str
    version: str
    track: str


@dataclass(frozen=True)
class ImportCounts:
    """Outcome of one chunk of imported labels."""

    accepted: int = 0
    duplicate: int = 0
    unknown: int = 0


class PredictionLogTables:
    """Mixed into the SQL stores; uses their connections, transactions and metadata lock."""

    ph: str
    log_real_type = "REAL"
    _log_ready = False

    # --- dialect hooks -------------------------------------------------------------------------
    @abstractmethod
    def _bulk_insert(
        self, cur: Any, table: str, columns: Sequence[tuple[str, str]], rows: Sequence[tuple], *,
        ignore_conflicts: bool,
    ) -> int:  # fmt: skip
        """Insert ``rows`` (tuples in ``columns`` order) with one round trip; rows inserted."""

    @abstractmethod
    def _delete_batch(self, cur: Any, table: str, *, cutoff: float, limit: int) -> int:
        """Delete at most ``limit`` rows of ``table`` with ``ts < cutoff``; rows deleted."""

    @abstractmethod
    def _create_incoming(self, cur: Any) -> None:
        """An empty per-session temporary table of :data:`INCOMING_COLUMNS`."""

    # --- schema ----------------------------------------------------------------------------------
    def ensure_log_tables(self) -> None:
        """Create both tables and their indexes once per store object (idempotent, concurrent-safe)."""
        if self._log_ready:
            return
        with self._transaction(self._conn()) as cur:  # type: ignore[attr-defined]
            self._lock_table(cur, LOG_LOCK)  # type: ignore[attr-defined]
            for ddl in _DDL:
                cur.execute(ddl.format(real=self.log_real_type))
        self._log_ready = True

    def _logged(self, fn, *args: Any) -> Any:  # noqa: ANN001
        """``fn(*args)`` with the tables in place, tried once more after a missing table (a replaced
        file, a dropped table: they are created again) or a connection the server cut (a restarted
        database: a new one), so neither costs a batch of every pod's log."""
        for attempt in (1, 2):
            try:
                self.ensure_log_tables()
                return fn(*args)
            except Exception as exc:
                if attempt == 2:
                    raise
                if self.is_missing_table(exc):  # type: ignore[attr-defined]
                    self._log_ready = False
                    continue
                conn = getattr(self._local, "conn", None)  # type: ignore[attr-defined]
                if conn is None or not self._is_broken(conn):  # type: ignore[attr-defined]
                    raise
        raise AssertionError("unreachable")

    # --- writes ----------------------------------------------------------------------------------
    def log_predictions(self, rows: Sequence[tuple]) -> int:
        """Insert prediction rows (:data:`PREDICTION_COLUMNS` order) in one transaction; a row whose
        (request_id, row) is already logged is skipped. Returns the rows inserted."""

        def write() -> int:
            with self._transaction(self._conn()) as cur:  # type: ignore[attr-defined]
                return self._bulk_insert(cur, PREDICTIONS, PREDICTION_COLUMNS, rows, ignore_conflicts=True)

        return self._logged(write) if rows else 0

    def find_prediction(self, request_id: str, row: int) -> LoggedPrediction | None:
        def read() -> LoggedPrediction | None:
            cur = self._conn().cursor()  # type: ignore[attr-defined]
            try:
                cur.execute(
                    f'SELECT prediction, model, version, track FROM {PREDICTIONS} WHERE request_id = {self.ph} AND "row" = {self.ph}',
                    (request_id, row),
                )  # fmt: skip
                found = cur.fetchone()
            finally:
                cur.close()
            return None if found is None else LoggedPrediction(*found)

        return self._logged(read)

    def add_label(
        self, request_id: str, row: int, *, label: str, ts: float, source: str
    ) -> tuple[LoggedPrediction | None, bool]:
        """Store the label of a logged prediction: (the prediction or None if unknown, whether this
        label was stored; False with a prediction means a label was there first)."""
        found = self.find_prediction(request_id, row)
        if found is None:
            return None, False

        def write() -> int:
            with self._transaction(self._conn()) as cur:  # type: ignore[attr-defined]
                columns = (("request_id", "text"), ('"row"', "int"), ("label", "text"), ("ts", "float8"), ("source", "text"))  # fmt: skip
                return self._bulk_insert(
                    cur, LABELS, columns, [(request_id, row, label, ts, source)], ignore_conflicts=True
                )

        return found, self._logged(write) == 1

    def import_labels(
        self, rows: Sequence[tuple], *, by_key: bool, max_lag_s: float = 0.0, model: str | None = None
    ) -> ImportCounts:
        """One chunk of labels (:data:`INCOMING_COLUMNS` order: seq, request_id, row, label, ts, key)
        joined in one transaction. ``by_key``: each label goes to the latest prediction of its key at
        or before its ``ts`` (within ``max_lag_s``; of ``model`` only, if given). First label wins,
        in ``seq`` order, against stored labels and within the chunk."""

        def run() -> ImportCounts:
            with self._transaction(self._conn()) as cur:  # type: ignore[attr-defined]
                self._create_incoming(cur)
                self._bulk_insert(cur, INCOMING, INCOMING_COLUMNS, rows, ignore_conflicts=False)
                if by_key:
                    self._resolve_keys(cur, max_lag_s=max_lag_s, model=model)
                cur.execute(f"SELECT COUNT(*) FROM {INCOMING} i WHERE {_EXISTS}")
                matched = int(cur.fetchone()[0])
                cur.execute(
                    f'INSERT INTO {LABELS} (request_id, "row", label, ts, source) '
                    f"SELECT i.request_id, i.\"row\", i.label, i.ts, 'import' FROM {INCOMING} i "
                    f"WHERE {_EXISTS} ORDER BY i.seq ON CONFLICT DO NOTHING"
                )
                accepted = max(0, cur.rowcount)
                cur.execute(f"DELETE FROM {INCOMING}")
            return ImportCounts(accepted=accepted, duplicate=matched - accepted, unknown=len(rows) - matched)

        return self._logged(run) if rows else ImportCounts()

    def _resolve_keys(self, cur: Any, *, max_lag_s: float, model: str | None) -> None:
        extra = f" AND p.model = {self.ph}" if model is not None else ""
        params: list[Any] = [max_lag_s] + ([model] if model is not None else [])
        rid = _LATEST_FOR_KEY.format(col="request_id", p=self.ph, model=extra)
        row = _LATEST_FOR_KEY.format(col='"row"', p=self.ph, model=extra)
        cur.execute(f'UPDATE {INCOMING} SET request_id = ({rid}), "row" = ({row})', params + params)

    def prune(self, *, cutoff: float, batch_rows: int = 5000, max_batches: int = 10) -> int:
        """Delete predictions and labels older than ``cutoff`` (epoch s), at most ``batch_rows`` per
        statement and ``max_batches`` statements per table, so a writer never holds the store long."""

        def run() -> int:
            deleted = 0
            for table in (PREDICTIONS, LABELS):
                for _ in range(max_batches):
                    with self._transaction(self._conn()) as cur:  # type: ignore[attr-defined]
                        n = self._delete_batch(cur, table, cutoff=cutoff, limit=batch_rows)
                    deleted += n
                    if n < batch_rows:
                        break
            return deleted

        return self._logged(run)

    # --- figures ---------------------------------------------------------------------------------
    def count_predictions(self, *, model: str, version: str, since: float) -> int:
        def read() -> int:
            cur = self._conn().cursor()  # type: ignore[attr-defined]
            try:
                cur.execute(
                    f"SELECT COUNT(*) FROM {PREDICTIONS} WHERE version = {self.ph} AND model = {self.ph} AND ts >= {self.ph}",
                    (version, model, since),
                )  # fmt: skip
                return int(cur.fetchone()[0])
            finally:
                cur.close()

        return self._logged(read)

    def label_pairs(self, *, model: str, version: str, since: float) -> list[tuple[str, str, int]]:
        """(prediction, label, count) over the labelled predictions of one model version since ``since``."""

        def read() -> list[tuple[str, str, int]]:
            cur = self._conn().cursor()  # type: ignore[attr-defined]
            try:
                cur.execute(
                    f"SELECT p.prediction, l.label, COUNT(*) FROM {PREDICTIONS} p JOIN {LABELS} l "
                    f'ON l.request_id = p.request_id AND l."row" = p."row" '
                    f"WHERE p.version = {self.ph} AND p.model = {self.ph} AND p.ts >= {self.ph} "
                    "GROUP BY p.prediction, l.label",
                    (version, model, since),
                )
                return [(str(p), str(lab), int(n)) for p, lab, n in cur.fetchall()]
            finally:
                cur.close()

        return self._logged(read)
