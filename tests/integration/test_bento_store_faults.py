"""A stuck, failing or replaced prediction store under a real ``bentoml serve`` of the iris bento.

Two servers share one SQLite store published before they start (ids 1..150, integer keys): a
``hybrid`` and a lookup-only ``batch`` server, with a 1 s store deadline, unready after the store
has failed for 2 s, and JSON log lines. The store file is switched to the rollback journal after
publishing, so that a separate process holding ``BEGIN EXCLUSIVE`` on it really blocks readers
(WAL readers never wait for a writer): that is the stuck store. Tests run in file order: the
store is stuck, released, then replaced on disk.
"""

from __future__ import annotations

import contextlib
import json
import os
import sqlite3
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from tests.integration.batchrun import run_batch, stuck_sqlite, write_input
from tests.integration.bentoproc import (
    SETOSA_ROW,
    VIRGINICA_ROW,
    BentoServer,
    BentoSpec,
    bento_servers,
    iris_store,  # noqa: F401  (fixture)
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

DEADLINE_S = 1.0
UNREADY_AFTER_S = 2.0
PICKUP_S = 5.0  # the README's promise for a newly published (or re-published) table
TAIL_KEY = 500


@pytest.fixture(scope="module")
def store_file(iris_store, tmp_path_factory) -> Path:  # noqa: F811
    work = tmp_path_factory.mktemp("faults")
    path = work / "predictions.sqlite"
    run_batch(
        iris_store, f"sqlite:///{path}", run_id="r1", input_path=write_input(work / "in.parquet", rows=150)
    )
    with contextlib.closing(sqlite3.connect(path)) as conn:
        assert conn.execute("PRAGMA journal_mode=DELETE").fetchone() == ("delete",)
    return path


@pytest.fixture(scope="module")
def servers(iris_store, store_file, tmp_path_factory):  # noqa: F811
    env = {
        "MODELROLLOUT_TABLE": "iris", "MODELROLLOUT_STORE_DSN": f"sqlite:///{store_file}",
        "MODELROLLOUT_STORE_TIMEOUT_S": str(DEADLINE_S), "MODELROLLOUT_STORE_UNREADY_AFTER_S": str(UNREADY_AFTER_S),
        "MODELROLLOUT_LOG_FORMAT": "json",
        # the prediction log elsewhere: writing it would switch the store file to WAL, where the
        # holder of BEGIN EXCLUSIVE no longer blocks readers
        "MODELROLLOUT_GROUND_TRUTH_DSN": f"sqlite:///{store_file.parent / 'ground-truth.sqlite'}",
    }  # fmt: skip
    specs = [
        BentoSpec(iris_store, "v1", env={**env, "MODELROLLOUT_MODE": mode}) for mode in ("hybrid", "batch")
    ]
    with bento_servers(specs, workdir=tmp_path_factory.mktemp("fault-bentos")) as running:
        yield dict(zip(("hybrid", "batch"), running, strict=True))


def lookup(server: BentoServer, keys, rows=None):
    return server.post("/lookup", json={"keys": keys} if rows is None else {"keys": keys, "rows": rows})


def timed(call) -> tuple[float, object]:
    started = time.perf_counter()
    result = call()
    return time.perf_counter() - started, result


def json_lines(server: BentoServer) -> list[dict]:
    """The worker's log records (the JSON lines of the serve log)."""
    lines = server.log_path.read_text(errors="replace").splitlines()
    return [json.loads(line) for line in lines if line.startswith("{")]


def test_log_lines_of_the_worker_are_json_when_asked(servers):
    hybrid = servers["hybrid"]
    hybrid.get("/no-such-path%0Aforged")
    wait_until(
        lambda: any("no-such-path" in r["message"] for r in json_lines(hybrid)),
        timeout=10,
        what="access log",
    )
    records = json_lines(hybrid)
    assert {"time", "level", "logger", "message"} <= set(records[0])
    assert any(r["message"].startswith("lookup table iris: serving run r1") for r in records)
    assert any("no-such-path\\nforged" in r["message"] for r in records)


def test_stuck_store_does_not_delay_predict(servers, store_file):
    hybrid = servers["hybrid"]
    with stuck_sqlite(store_file), ThreadPoolExecutor(max_workers=24) as pool:
        lookups = [pool.submit(lookup, hybrid, [1, TAIL_KEY], [SETOSA_ROW, VIRGINICA_ROW]) for _ in range(48)]
        time.sleep(0.2)  # the store pool is full and calls are queueing now
        predictions = [timed(lambda: hybrid.post("/predict", json={"rows": [SETOSA_ROW]})) for _ in range(10)]
        answered = [f.result(timeout=30) for f in lookups]
    assert all(r.status_code == 200 for _, r in predictions)
    assert max(seconds for seconds, _ in predictions) < DEADLINE_S  # never waited for the store
    assert {r.status_code for r in answered} == {200}
    assert {r.json()["answers"][0]["source"] for r in answered} == {"model"}  # the store was stuck throughout


def test_hybrid_falls_back_to_model_when_store_stuck(servers, store_file):
    hybrid = servers["hybrid"]
    fallback0 = hybrid.metric("modelrollout_lookup_fallback_total")
    errors0 = hybrid.metric("modelrollout_store_errors_total")
    with stuck_sqlite(store_file):
        seconds, response = timed(
            lambda: lookup(hybrid, [1, TAIL_KEY, 2], [SETOSA_ROW, VIRGINICA_ROW, SETOSA_ROW])
        )
        without_rows = lookup(hybrid, [1])
    assert response.status_code == 200 and seconds < DEADLINE_S + 0.5
    answers = response.json()["answers"]
    assert [(a["source"], a["prediction"], a["status"]) for a in answers] == [
        ("model", "setosa", 200), ("model", "virginica", 200), ("model", "setosa", 200),
    ]  # fmt: skip
    assert hybrid.metric("modelrollout_lookup_fallback_total") - fallback0 == 3
    assert hybrid.metric("modelrollout_store_errors_total") - errors0 >= 1
    assert without_rows.status_code == 503
    assert without_rows.json()["answers"][0]["message"].startswith("prediction store unavailable")
    assert "no features were given" in without_rows.json()["answers"][0]["message"]


def test_readyz_turns_unready_when_store_fails_past_threshold(servers, store_file):
    """Lookup-only pods leave the Service's endpoints while their store fails; hybrid pods stay (the
    model answers); both come back by themselves once the store answers again."""
    batch, hybrid = servers["batch"], servers["hybrid"]
    with stuck_sqlite(store_file):
        response = lookup(batch, [1, 2])
        assert response.status_code == 503 and response.json()["message"].startswith(
            "prediction store unavailable"
        )
        assert {a["status"] for a in response.json()["answers"]} == {503}
        assert batch.get("/readyz").status_code == 200  # failing for less than the threshold

        def unready() -> bool:
            lookup(batch, [1])
            return batch.get("/readyz").status_code == 503

        wait_until(unready, timeout=UNREADY_AFTER_S + 10, what="batch pod unready")
        assert hybrid.get("/readyz").status_code == 200
        assert batch.post("/predict", json={"rows": [SETOSA_ROW]}).status_code == 200
    wait_until(lambda: batch.get("/readyz").status_code == 200, timeout=10, what="batch pod ready again")
    assert lookup(batch, [1]).json()["answers"][0]["source"] == "lookup"


def republished(server: BentoServer, run_id: str, key: int) -> bool:
    answer = lookup(server, [key]).json()["answers"][0]
    return answer["status"] == 200 and answer["run_id"] == run_id


def test_replaced_sqlite_file_is_served_within_5s(servers, store_file, iris_store, tmp_path):  # noqa: F811
    """A new file renamed over the served one (a rotation): its run is served within 5 s, the
    switch is logged and the served version is a metric."""
    batch, hybrid = servers["batch"], servers["hybrid"]
    assert republished(batch, "r1", 1)
    fresh = tmp_path / "rotated.sqlite"
    run_batch(
        iris_store,
        f"sqlite:///{fresh}",
        run_id="r2",
        input_path=write_input(tmp_path / "in.parquet", rows=200),
    )
    os.replace(fresh, store_file)
    wait_until(  # the timeout is the promise: both serve the new run within 5 s of the rename
        lambda: all(republished(s, "r2", 175) for s in (batch, hybrid)),
        timeout=PICKUP_S,
        interval=0.25,
        what="run r2 served by both",
    )
    assert batch.metric("modelrollout_lookup_table_info", run_id="r2", table="iris") == 1
    assert batch.metric("modelrollout_lookup_table_info", run_id="r1", table="iris") == 0
    assert batch.metric("modelrollout_lookup_table_keys", table="iris") == 200
    messages = [r["message"] for r in json_lines(batch)]
    assert any("was replaced" in m and str(store_file) in m for m in messages)
    assert any(m.startswith("lookup table iris: serving run r2") and "was r1" in m for m in messages)


def test_deleted_and_recreated_sqlite_file_is_served_within_5s(servers, store_file, iris_store, tmp_path):  # noqa: F811
    batch = servers["batch"]
    for suffix in ("", "-wal", "-shm"):
        Path(f"{store_file}{suffix}").unlink(missing_ok=True)
    run_batch(
        iris_store,
        f"sqlite:///{store_file}",
        run_id="r3",
        input_path=write_input(tmp_path / "in.parquet", rows=180),
    )
    wait_until(lambda: republished(batch, "r3", 175), timeout=PICKUP_S, interval=0.25, what="run r3 served")
    assert batch.metric("modelrollout_lookup_table_keys", table="iris") == 180
