"""The prediction log in a SQLite file survives what happens to files (both stores: tests/integration)."""

from __future__ import annotations

from modelrollout.runtime.ground_truth.records import Origin, records
from modelrollout.runtime.store.factory import open_log_store
from modelrollout.runtime.store.sqlite import SqliteStore

V1 = Origin("iris", "v1", "stable")


def test_a_replaced_log_file_is_reopened_and_its_tables_created_again_losing_no_batch(tmp_path):
    path = tmp_path / "log.sqlite"
    now = [0.0]
    store = SqliteStore(path, busy_timeout_s=1.0, reader=False, watch_file=True, clock=lambda: now[0])
    assert store.log_predictions(records("before", ["a"], origin=V1, ts=1.0)) == 1
    for suffix in ("", "-wal", "-shm"):
        (tmp_path / f"log.sqlite{suffix}").unlink(missing_ok=True)
    now[0] += 5  # the file identity is checked at most every second
    assert store.log_predictions(records("after", ["b"], origin=V1, ts=2.0)) == 1
    with open_log_store(f"sqlite:///{path}", wait_timeout_s=1.0) as fresh:
        assert fresh.find_prediction("after", 0) is not None and fresh.find_prediction("before", 0) is None
    store.close()


def test_the_log_file_is_written_in_wal_mode_so_lookups_never_wait_for_it(tmp_path):
    with open_log_store(f"sqlite:///{tmp_path}/log.sqlite", wait_timeout_s=1.0) as store:
        store.log_predictions(records("r", ["a"], origin=V1, ts=1.0))
        conn = store._conn()
        assert conn.execute("PRAGMA journal_mode").fetchone() == ("wal",)
