"""The prediction store's run lifecycle against SQLite and PostgreSQL, through its own API."""

from __future__ import annotations

import threading
import time
from datetime import UTC, datetime

import pyarrow as pa
import pytest

from modelrollout.runtime.store import (
    AlreadyPublished,
    Judgement,
    RunConflict,
    RunSchema,
    physical_table_name,
)
from tests.integration.postgres import postgres_dsn  # noqa: F401 - a fixture (the `store` fixture uses it)

pytestmark = pytest.mark.integration
SCHEMA = RunSchema(keys=(("region", "str"), ("id", "int")), prediction="float")
PASS = lambda facts: Judgement(True, {"passed": True, "rows": facts.rows_stored})  # noqa: E731


def rows(ids, *, value: float, regions=("eu",)) -> pa.Table:
    keys = [(r, i) for i in ids for r in regions]
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    return pa.table({"region": [k[0] for k in keys], "id": [k[1] for k in keys], "prediction": [value] * len(keys),
                     "predicted_at": pa.repeat(now, len(keys))})  # fmt: skip


def publish(
    store, run_id: str, *, value: float, ids=range(100), chunks: int = 1, table: str = "t", keep: int = 10
) -> None:
    staging = store.begin_run(table, run_id, schema=SCHEMA, model_version="v")
    ids = list(ids)
    for part in range(chunks):
        store.write_chunk(staging, rows(ids[part::chunks], value=value))
    store.finish_shard(staging, rows_in=len(ids), rows_written=len(ids), stats={})
    assert store.finalize(table, run_id, judge=PASS, keep_versions=keep).status == "published"


def test_composite_keys_are_looked_up_by_all_their_parts(store):
    staging = store.begin_run("t", "r1", schema=SCHEMA, model_version="v")
    store.write_chunk(staging, rows([1, 2], value=0.5, regions=("eu", "us")))
    store.finish_shard(staging, rows_in=4, rows_written=4, stats={})
    store.finalize("t", "r1", judge=PASS)
    found = store.lookup("t", [("eu", 1), {"region": "us", "id": "2"}, ("ap", 1), ("eu", 3)])
    assert found == {("eu", 1): 0.5, ("us", 2): 0.5}


def test_readers_see_a_whole_version_while_new_ones_are_written_and_published(store):
    publish(store, "v0", value=0.0, ids=range(2_000))
    keys = [("eu", i) for i in range(2_000)]
    seen: list[tuple[str, int, set]] = []
    stop = threading.Event()

    def read() -> None:
        deadline = time.monotonic() + 60
        while not stop.is_set() and time.monotonic() < deadline:
            version = store.published_version("t")
            found = store.lookup_version(version, keys)
            seen.append((version.run_id, len(found), set(found.values())))

    reader = threading.Thread(target=read)
    reader.start()
    try:
        for n in range(1, 4):
            publish(store, f"v{n}", value=float(n), ids=range(2_000), chunks=8)
            deadline = time.monotonic() + 10
            while not any(run == f"v{n}" for run, _, _ in seen) and time.monotonic() < deadline:
                time.sleep(0.01)  # let the reader see this version before the next one is written
    finally:
        stop.set()
        reader.join(timeout=60)
    assert {run for run, _, _ in seen} == {"v0", "v1", "v2", "v3"}
    for run_id, count, values in seen:
        assert count == 2_000, f"{run_id} answered {count} keys"
        assert values == {float(run_id[1:])}, f"{run_id} mixed versions: {values}"


def test_cleanup_keeps_the_newest_versions_and_drops_the_rest(store):
    for n in range(4):
        publish(store, f"v{n}", value=float(n), ids=range(10), keep=3)  # publishing cleans up too: keep 3
    assert store.run_state("t", "v0") == "dropped" and store.staged_rows("t", "v0") is None
    dropped = store.cleanup("t", keep_versions=2)
    assert dropped == [physical_table_name("t", "v1")]
    assert [store.run_state("t", f"v{n}") for n in range(4)] == ["dropped", "dropped", "retired", "published"]
    assert store.staged_rows("t", "v0") is None and store.staged_rows("t", "v2") == 10
    assert store.lookup("t", [("eu", 1)]) == {("eu", 1): 3.0}


def test_abandoned_staging_is_cleaned_up_and_its_run_id_cannot_come_back(store):
    publish(store, "v0", value=0.0, ids=range(10))
    staging = store.begin_run("t", "abandoned", schema=SCHEMA, model_version="v")
    store.write_chunk(staging, rows(range(5), value=1.0))
    assert store.cleanup("t", stale_after_s=3600) == []  # fresh: maybe still running
    assert store.cleanup("t", stale_after_s=0) == [physical_table_name("t", "abandoned")]
    assert store.staged_rows("t", "abandoned") is None
    with pytest.raises(RunConflict, match="cleaned up"):
        store.begin_run("t", "abandoned", schema=SCHEMA, model_version="v")
    assert store.published_version("t").run_id == "v0"


def test_a_rerun_must_match_the_runs_schema_and_a_published_run_cannot_restart(store):
    store.begin_run("t", "r1", schema=SCHEMA, model_version="v")
    other = RunSchema(keys=(("id", "int"),), prediction="float")
    with pytest.raises(RunConflict, match="must match"):
        store.begin_run("t", "r1", schema=other, model_version="v")
    with pytest.raises(RunConflict, match="must match"):
        store.begin_run("t", "r1", schema=SCHEMA, model_version="v2")
    publish(store, "r2", value=1.0)
    with pytest.raises(AlreadyPublished):
        store.begin_run("t", "r2", schema=SCHEMA, model_version="v")


def test_duplicate_keys_fail_the_publish_and_leave_the_old_version(store):
    publish(store, "v0", value=0.0, ids=range(10))
    staging = store.begin_run("t", "dup", schema=SCHEMA, model_version="v")
    store.write_chunk(staging, rows([1, 2, 3], value=1.0))
    store.write_chunk(staging, rows([3], value=1.0))
    store.finish_shard(staging, rows_in=4, rows_written=4, stats={})
    outcome = store.finalize("t", "dup", judge=PASS)
    assert outcome.status == "failed" and "duplicate keys" in outcome.error
    assert store.run_state("t", "dup") == "failed"
    assert store.published_version("t").run_id == "v0"


def test_a_rejected_run_is_judged_again_without_rewriting(store):
    staging = store.begin_run("t", "r1", schema=SCHEMA, model_version="v")
    store.write_chunk(staging, rows(range(10), value=1.0))
    store.finish_shard(staging, rows_in=10, rows_written=10, stats={})
    rejected = store.finalize("t", "r1", judge=lambda facts: Judgement(False, {"passed": False}))
    assert rejected.status == "rejected" and store.run_state("t", "r1") == "rejected"
    assert store.published_version("t") is None
    accepted = store.finalize("t", "r1", judge=PASS)
    assert accepted.status == "published" and accepted.version.rows == 10
    assert accepted.verification == {"passed": True, "rows": 10}
