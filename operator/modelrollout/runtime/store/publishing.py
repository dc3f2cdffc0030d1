"""Publishing a staged run: seal, judge and move the pointer in one transaction.

Under the logical table's lock: check every shard is done, build the unique key index (after the
bulk load it is cheaper than maintaining it per row, and it is the duplicate check), count the
rows, ask the judge, then retire the old version and point the logical name at the new one. If
the judge says no, the transaction rolls back (index and all) and the run is marked rejected in
a second one; readers never see anything but a complete, verified version.

Class chain: :class:`.sql.SqlBase` (hooks, readers) -> :class:`Publishing` -> :class:`.runs.SqlStore`.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

from .base import FinalizeOutcome, Judge, RunFacts, RunSchema, ShardReport
from .naming import DuplicateKeys, StoreError, quote_ident
from .sql import SqlBase


class _Rejected(Exception):
    """Raised inside the publishing transaction to roll the seal back when the judge says no."""


class Publishing(SqlBase):
    """``finalize`` and its parts, on the dialect hooks of :class:`.sql.SqlBase`."""

    def finalize(self, table: str, run_id: str, *, judge: Judge, keep_versions: int = 3) -> FinalizeOutcome:
        self._ensure_metadata()
        try:
            with self._transaction(self._conn()) as cur:
                self._lock_table(cur, table)
                outcome = self._finalize_locked(cur, table, run_id, judge)
        except _Rejected as rejected:
            verification = rejected.args[0]
            self._mark(table, run_id, state="rejected", verification=verification, error=None)
            return FinalizeOutcome(status="rejected", verification=verification)
        except DuplicateKeys as exc:
            self._mark(table, run_id, state="failed", verification=None, error=str(exc))
            return FinalizeOutcome(status="failed", error=str(exc))
        if outcome.status == "published":
            self.cleanup(table, keep_versions=keep_versions)
        return outcome

    def _finalize_locked(self, cur: Any, table: str, run_id: str, judge: Judge) -> FinalizeOutcome:
        cur.execute(
            self._sql(
                "SELECT state, physical, shard_count, reference_run_id, run_schema, error FROM modelrollout_runs "
                "WHERE logical = {p} AND run_id = {p}"
            ),
            (table, run_id),
        )
        row = cur.fetchone()
        if row is None:
            raise StoreError(f"run {run_id!r} of table {table!r} was never started")
        state, physical, shard_count, reference_run, schema_json, error = row
        if state in ("published", "retired"):
            return FinalizeOutcome(status="already_published", version=self._version(cur, table, run_id))
        # a rejected run may be judged again (e.g. with relaxed thresholds); nothing else may
        if state not in ("staging", "rejected"):
            why = f"run {run_id!r} of table {table!r} is {state}" + (f": {error}" if error else "")
            return FinalizeOutcome(status="failed", error=why + "; rerun it (same run id) before publishing")
        shards = self._done_shards(cur, table, run_id)
        if len(shards) < int(shard_count):
            return FinalizeOutcome(status="waiting", shards_done=len(shards), shard_count=int(shard_count))
        schema = RunSchema.from_json(schema_json)
        self._seal(cur, physical, schema)
        cur.execute(f"SELECT COUNT(*) FROM {quote_ident(physical)}")
        rows_stored = int(cur.fetchone()[0])
        reference = self._version(cur, table, reference_run) if reference_run else None
        facts = RunFacts(table, run_id, sum(s.rows_in for s in shards), rows_stored, shards, reference)
        judgement = judge(facts)
        if not judgement.passed:
            raise _Rejected(judgement.verification)
        self._move_pointer(cur, table, run_id, rows_stored=rows_stored, judgement=judgement)
        return FinalizeOutcome(
            status="published", version=self._version(cur, table, run_id), verification=judgement.verification,
            shards_done=len(shards), shard_count=int(shard_count),
        )  # fmt: skip

    def _done_shards(self, cur: Any, table: str, run_id: str) -> tuple[ShardReport, ...]:
        cur.execute(
            self._sql(
                "SELECT shard_index, rows_in, rows_written, stats FROM modelrollout_shards "
                "WHERE logical = {p} AND run_id = {p} AND state = 'done' ORDER BY shard_index"
            ),
            (table, run_id),
        )
        return tuple(
            ShardReport(int(i), int(r_in), int(r_out), json.loads(s or "{}"))
            for i, r_in, r_out, s in cur.fetchall()
        )

    def _move_pointer(self, cur: Any, table: str, run_id: str, *, rows_stored: int, judgement: Any) -> None:
        """Retire the published run, mark this one published and point the table at it (same transaction)."""
        now = self._ts(datetime.now(UTC))
        cur.execute(
            self._sql(
                "UPDATE modelrollout_runs SET state = 'retired' WHERE logical = {p} AND state = 'published'"
            ),
            (table,),
        )
        cur.execute(
            self._sql(
                "UPDATE modelrollout_runs SET state = 'published', published_at = {p}, updated_at = {p}, rows_stored = {p}, "
                "verification = {p}, distribution = {p} WHERE logical = {p} AND run_id = {p}"
            ),
            (now, now, rows_stored, json.dumps(judgement.verification),
             None if judgement.distribution is None else json.dumps(judgement.distribution), table, run_id),
        )  # fmt: skip
        cur.execute(self._sql("DELETE FROM modelrollout_published WHERE logical = {p}"), (table,))
        cur.execute(
            self._sql(
                "INSERT INTO modelrollout_published (logical, run_id, physical, model_version, rows_stored, published_at) "
                "SELECT logical, run_id, physical, model_version, rows_stored, published_at FROM modelrollout_runs "
                "WHERE logical = {p} AND run_id = {p}"
            ),
            (table, run_id),
        )

    def _seal(self, cur: Any, physical: str, schema: RunSchema) -> None:
        """Build the unique key index after the bulk load (faster than maintaining it per row).

        It is also the duplicate check: a key that occurs twice fails the build.
        """
        keys = ", ".join(quote_ident(name) for name in schema.key_names)
        if not self._table_exists(cur, physical):
            raise StoreError(
                f"staging table {physical} is gone (cleaned up as abandoned?); rerun with a new run id"
            )
        self._before_seal(cur)
        try:
            cur.execute(
                f"CREATE UNIQUE INDEX IF NOT EXISTS {quote_ident(physical + '_key')} ON {quote_ident(physical)} ({keys})"
            )
        except Exception as exc:
            if self._is_unique_violation(exc):
                raise DuplicateKeys(
                    f"the input holds duplicate keys ({', '.join(schema.key_names)}): {exc}"
                ) from exc
            raise
        self._after_seal(cur, physical)

    def _mark(
        self, table: str, run_id: str, *, state: str, verification: dict | None, error: str | None
    ) -> None:
        with self._transaction(self._conn()) as cur:
            self._lock_table(cur, table)
            cur.execute(
                self._sql(
                    "UPDATE modelrollout_runs SET state = {p}, verification = {p}, error = {p}, updated_at = {p} "
                    "WHERE logical = {p} AND run_id = {p} AND state IN ('staging', 'rejected')"
                ),
                (state, None if verification is None else json.dumps(verification), error,
                 self._ts(datetime.now(UTC)), table, run_id),
            )  # fmt: skip
