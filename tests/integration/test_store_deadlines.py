"""Store calls against real, blocked stores end within their deadline and give their thread back.

SQLite: a separate process holds ``BEGIN EXCLUSIVE`` on a rollback-journal file (readers wait on
it). PostgreSQL: a separate session holds ``ACCESS EXCLUSIVE`` on the published table (a reader's
``SELECT`` waits on it). In both, a store opened for serving gives up after its wait timeout
(SQLite busy timeout / PostgreSQL ``statement_timeout``), so the call fails before its deadline
and the thread is free again; the lookup service answers without the store meanwhile.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
import time
from pathlib import Path

import numpy as np
import pyarrow.parquet as pq
import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.batch.predictor import from_object
from modelrollout.runtime.batch.readers import InputSpec
from modelrollout.runtime.batch.runner import RunConfig, run_batch
from modelrollout.runtime.batch.verify import Thresholds
from modelrollout.runtime.lookup import LookupService
from modelrollout.runtime.store import open_store
from modelrollout.runtime.storecalls import StoreCalls, StoreUnavailable
from tests.integration.batch_model import FEATURES, IrisPredictor, make_table
from tests.integration.batchrun import stuck_sqlite
from tests.integration.postgres import fresh_database, postgres_dsn  # noqa: F401 - postgres_dsn is a fixture

pytestmark = pytest.mark.integration

DEADLINE_S = 1.0
WAIT_S = DEADLINE_S / 2  # what the serving pod derives: half the deadline


def publish(url: str, tmp_path: Path) -> None:
    path = tmp_path / "in.parquet"
    pq.write_table(make_table(50, seed=1), path)
    config = RunConfig(table="scores", run_id="r1", key_columns=("id",), model_version="lr-1",
                       feature_columns=FEATURES, thresholds=Thresholds(maxPsi=None))  # fmt: skip
    with open_store(url) as store:
        result = run_batch(config, source=InputSpec(path=str(path)), predictor=from_object(IrisPredictor(), description="t"), store=store)  # fmt: skip
    assert result.status == "published"


@contextlib.contextmanager
def postgres_locked(dsn: str, table: str):
    import psycopg

    with psycopg.connect(dsn) as conn:
        conn.execute(f'LOCK TABLE "{table}" IN ACCESS EXCLUSIVE MODE')  # held until the transaction ends
        yield
        conn.rollback()


def assert_bounded_failure(lookups: LookupService, calls: StoreCalls) -> None:
    started = time.perf_counter()
    with pytest.raises(StoreUnavailable) as failure:
        asyncio.run(calls.run(lookups.find, [1, 2]))
    assert time.perf_counter() - started < DEADLINE_S + 0.3
    assert failure.value.reason in ("error", "timeout")
    deadline = time.monotonic() + 3 * DEADLINE_S
    while calls.pending and time.monotonic() < deadline:
        time.sleep(0.02)
    assert calls.pending == 0  # the driver gave up by itself: the thread is free again
    rows = np.ones((2, 4))
    indices = lookups.model_rows([1, 2], None, rows)
    answers = lookups.answers([1, 2], None, lookups.predict(rows, indices), failure=failure.value)
    assert [a.source for a in answers] == ["model", "model"]


def test_a_locked_sqlite_store_fails_within_the_deadline_and_frees_its_thread(tmp_path):
    path = tmp_path / "p.sqlite"
    publish(f"sqlite:///{path}", tmp_path)
    with contextlib.closing(sqlite3.connect(path)) as conn:
        conn.execute("PRAGMA journal_mode=DELETE")
    store = open_store(f"sqlite:///{path}", wait_timeout_s=WAIT_S)
    lookups = LookupService(
        store, "scores", mode="hybrid", model=IrisPredictor().predict, registry=CollectorRegistry()
    )
    calls = StoreCalls(threads=2, deadline_s=DEADLINE_S, registry=CollectorRegistry())
    assert asyncio.run(calls.run(lookups.find, [1])).rows
    with stuck_sqlite(path):
        assert_bounded_failure(lookups, calls)
    assert asyncio.run(calls.run(lookups.find, [1])).rows  # and works again once released
    assert store.busy_timeout_s == WAIT_S < DEADLINE_S
    store.close()


def test_a_locked_postgres_table_fails_within_the_deadline_and_frees_its_thread(postgres_dsn, tmp_path):  # noqa: F811
    dsn = fresh_database(postgres_dsn)
    publish(dsn, tmp_path)
    store = open_store(dsn, wait_timeout_s=WAIT_S)
    lookups = LookupService(
        store, "scores", mode="hybrid", model=IrisPredictor().predict, registry=CollectorRegistry()
    )
    calls = StoreCalls(threads=2, deadline_s=DEADLINE_S, registry=CollectorRegistry())
    physical = asyncio.run(calls.run(lookups.find, [1])).version.physical
    with postgres_locked(dsn, physical):
        assert_bounded_failure(lookups, calls)
    assert asyncio.run(calls.run(lookups.find, [1])).rows
    store.close()
