"""Batch runs end to end against real stores: SQLite files and a local PostgreSQL server.

Runs go through ``modelrollout-batch``'s ``main`` in-process (sklearn is imported once); the
killed-run test starts it as a subprocess and SIGKILLs it mid-write.
"""

from __future__ import annotations

import json
import os
import signal
import sqlite3
import subprocess
import sys
import time
import uuid
from pathlib import Path

import numpy as np
import psycopg
import pyarrow as pa
import pyarrow.csv as pacsv
import pyarrow.parquet as pq
import pytest

from modelrollout.runtime.batch import cli
from modelrollout.runtime.store import open_store, physical_table_name, store_kind
from tests.integration.batch_model import FEATURES, IrisPredictor, make_table
from tests.integration.postgres import fresh_database, postgres_dsn  # noqa: F401 - postgres_dsn is a fixture

pytestmark = pytest.mark.integration
REPO = Path(__file__).resolve().parents[2]
PREDICTOR = "tests.integration.batch_model:predictor"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path):
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path}/predictions.sqlite"
    return fresh_database(request.getfixturevalue("postgres_dsn"))


def run_cli(store_url: str, tmp_path: Path, *args: str, expect: int = 0) -> dict:
    report_file = tmp_path / f"report-{uuid.uuid4().hex[:8]}.json"
    code = cli.main(
        ["run", "--store", store_url, "--report-file", str(report_file), *args], handle_sigterm=False
    )
    report = json.loads(report_file.read_text())
    assert code == expect, report
    return report


def write_parquet(tmp_path: Path, table: pa.Table, name: str = "in.parquet", **kw) -> str:
    path = tmp_path / name
    pq.write_table(table, path, **kw)
    return str(path)


def stored_rows(store_url: str, table: str, run_id: str) -> list[tuple]:
    with open_store(store_url) as store:
        names, chunks = store.iter_query(
            f'SELECT * FROM "{physical_table_name(table, run_id)}"', chunk_rows=10_000
        )
        return [dict(zip(names, row, strict=True)) for chunk in chunks for row in chunk]


def expected_predictions(table: pa.Table) -> np.ndarray:
    features = np.column_stack([table.column(f).to_numpy() for f in FEATURES])
    return IrisPredictor().predict(features)


def test_a_full_run_publishes_every_row_with_its_key_prediction_version_and_time(store_url, tmp_path):
    data = make_table(5_000, seed=1)
    report = run_cli(store_url, tmp_path, "--input", write_parquet(tmp_path, data), "--key-columns", "id",
                     "--table", "scores", "--predictor", PREDICTOR, "--run-id", "run-1", "--chunk-rows", "1000")  # fmt: skip
    assert report["status"] == "published" and report["rows_in"] == report["rows_written"] == 5_000
    assert report["published"]["run_id"] == "run-1" and report["published"]["model_version"] == "lr-1"
    assert report["verification"]["passed"] is True
    rows = stored_rows(store_url, "scores", "run-1")
    assert len(rows) == 5_000
    by_id = {r["id"]: r for r in rows}
    expected = expected_predictions(data)
    assert [by_id[i]["prediction"] for i in range(5_000)] == expected.tolist()
    assert {(r["model_version"], r["run_id"]) for r in rows} == {("lr-1", "run-1")}
    assert all(r["predicted_at"] for r in rows)
    with open_store(store_url) as store:
        assert store.lookup("scores", [0, "1", 4_999, 5_000]) == {
            (0,): expected[0],
            (1,): expected[1],
            (4_999,): expected[-1],
        }


def test_composite_and_text_keys_are_passed_through_unchanged(store_url, tmp_path):
    composite = make_table(900, seed=2, key="composite")
    run_cli(store_url, tmp_path, "--input", write_parquet(tmp_path, composite), "--key-columns", "region,id",
            "--table", "by_region", "--predictor", PREDICTOR, "--run-id", "c1", "--chunk-rows", "128")  # fmt: skip
    stored = {(r["region"], r["id"]) for r in stored_rows(store_url, "by_region", "c1")}
    assert stored == set(
        zip(composite.column("region").to_pylist(), composite.column("id").to_pylist(), strict=True)
    )
    text = make_table(300, seed=3, key="str")
    csv_path = tmp_path / "users.csv"
    pacsv.write_csv(text.set_column(0, "user", pa.array([f"00{i}" for i in range(300)])), csv_path)
    run_cli(store_url, tmp_path, "--input", str(csv_path), "--key-columns", "user", "--table", "by_user",
            "--predictor", PREDICTOR, "--run-id", "u1")  # fmt: skip
    assert {r["user"] for r in stored_rows(store_url, "by_user", "u1")} == {f"00{i}" for i in range(300)}


BENTO_SCRIPT = """
import sys, bentoml
from modelrollout.runtime.batch import cli
from tests.integration.batch_model import _model
bentoml.sklearn.save_model("iris_lr", _model(), labels={"version": "v9"})
sys.exit(cli.main(sys.argv[1:]))
"""


def test_a_bentoml_model_tag_is_a_predictor_with_its_version_label(tmp_path):
    # a subprocess: BentoML reads BENTOML_HOME once, at import
    store_url = f"sqlite:///{tmp_path}/p.sqlite"
    env = {**os.environ, "BENTOML_HOME": str(tmp_path / "bentoml"), "BENTOML_DO_NOT_TRACK": "True",
           "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}  # fmt: skip
    args = ["run", "--store", store_url, "--input", write_parquet(tmp_path, make_table(500, seed=1)), "--key-columns",
            "id", "--table", "scores", "--bentoml-model", "iris_lr:latest", "--run-id", "b1"]  # fmt: skip
    proc = subprocess.run([sys.executable, "-c", BENTO_SCRIPT, *args], env=env, capture_output=True, text=True,
                          timeout=120, check=False)  # fmt: skip
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout.strip().splitlines()[-1])
    assert report["status"] == "published" and report["model_version"] == "v9"
    by_id = {r["id"]: r["prediction"] for r in stored_rows(store_url, "scores", "b1")}
    assert [by_id[i] for i in range(500)] == expected_predictions(make_table(500, seed=1)).tolist()


def test_rerunning_a_published_run_id_writes_nothing_again(store_url, tmp_path):
    path = write_parquet(tmp_path, make_table(2_000, seed=1))
    args = (
        "--input",
        path,
        "--key-columns",
        "id",
        "--table",
        "scores",
        "--predictor",
        PREDICTOR,
        "--run-id",
        "r1",
    )
    first = run_cli(store_url, tmp_path, *args)
    again = run_cli(store_url, tmp_path, *args)
    assert again["status"] == "already_published" and again["rows_written"] == 0
    assert again["published"]["published_at"] == first["published"]["published_at"]
    assert len(stored_rows(store_url, "scores", "r1")) == 2_000


def start_slow_run(store_url: str, args: list[str]) -> subprocess.Popen:
    """The CLI as a subprocess, with a model that sleeps 50 ms per chunk so it can be caught mid-write."""
    env = {
        **os.environ,
        "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
        "BATCH_MODEL_DELAY_S": "0.05",
    }
    cmd = [sys.executable, "-m", "modelrollout.runtime.batch.cli", "run", "--store", store_url, *args]
    return subprocess.Popen(cmd, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)


def signal_mid_write(proc: subprocess.Popen, store, *, run_id: str, rows: int, signum: int) -> None:
    """Send ``signum`` once the run has staged ``rows`` rows (bounded wait); reap the process."""
    try:
        deadline = time.monotonic() + 60
        while (store.staged_rows("scores", run_id) or 0) < rows:
            assert proc.poll() is None, proc.stderr.read()
            assert time.monotonic() < deadline, "the run never got to write"
            time.sleep(0.05)
        proc.send_signal(signum)
        proc.wait(timeout=30)
    finally:
        proc.kill()
        proc.wait(timeout=30)


def test_a_run_killed_mid_write_publishes_nothing_and_a_rerun_stores_each_row_once(store_url, tmp_path):
    base = write_parquet(tmp_path, make_table(1_000, seed=1), "base.parquet")
    run_cli(store_url, tmp_path, "--input", base, "--key-columns", "id", "--table", "scores", "--predictor", PREDICTOR,
            "--run-id", "old")  # fmt: skip
    big = write_parquet(tmp_path, make_table(60_000, seed=5), "big.parquet")
    args = ["--input", big, "--key-columns", "id", "--table", "scores", "--predictor", PREDICTOR, "--run-id", "new",
            "--chunk-rows", "1000"]  # fmt: skip
    with open_store(store_url) as store:
        signal_mid_write(
            start_slow_run(store_url, args), store, run_id="new", rows=5_000, signum=signal.SIGKILL
        )
        assert 5_000 <= store.staged_rows("scores", "new") < 60_000  # really killed mid-write
        assert store.published_version("scores").run_id == "old"
        assert store.run_state("scores", "new") == "staging"
        assert store.lookup("scores", [0]) == {(0,): expected_predictions(make_table(1, seed=1))[0]}
    rerun = run_cli(store_url, tmp_path, *args)
    assert rerun["status"] == "published" and rerun["rows_written"] == 60_000
    ids = [r["id"] for r in stored_rows(store_url, "scores", "new")]
    assert len(ids) == len(set(ids)) == 60_000


def test_a_terminated_run_drops_what_it_staged_and_reports_why(tmp_path):
    store_url = f"sqlite:///{tmp_path}/p.sqlite"
    big = write_parquet(tmp_path, make_table(60_000, seed=5), "big.parquet")
    args = ["--input", big, "--key-columns", "id", "--table", "scores", "--predictor", PREDICTOR, "--run-id", "t1",
            "--chunk-rows", "1000"]  # fmt: skip
    proc = start_slow_run(store_url, args)
    with open_store(store_url) as store:
        signal_mid_write(proc, store, run_id="t1", rows=3_000, signum=signal.SIGTERM)
        assert proc.returncode == 128 + signal.SIGTERM
        report = json.loads(proc.stdout.read().strip().splitlines()[-1])
        assert report["status"] == "failed" and "terminated by signal" in report["error"]
        assert store.staged_rows("scores", "t1") is None and store.run_state("scores", "t1") == "failed"
        assert store.published_version("scores") is None


def test_drift_beyond_max_psi_is_rejected_and_the_old_version_keeps_serving(store_url, tmp_path):
    run_cli(store_url, tmp_path, "--input", write_parquet(tmp_path, make_table(3_000, seed=1), "a.parquet"),
            "--key-columns", "id", "--table", "scores", "--predictor", PREDICTOR, "--run-id", "good")  # fmt: skip
    drifted = write_parquet(tmp_path, make_table(3_000, seed=2, shift=1.5), "b.parquet")
    report = run_cli(store_url, tmp_path, "--input", drifted, "--key-columns", "id", "--table", "scores",
                     "--predictor", PREDICTOR, "--run-id", "drifted", "--thresholds", '{"maxPsi": 0.2}', expect=3)  # fmt: skip
    assert report["status"] == "rejected" and report["published"] is None
    psi = {c["name"]: c for c in report["verification"]["checks"]}["psi"]
    assert psi["verdict"] == "fail" and psi["value"] > 0.2 and psi["threshold"] == 0.2
    with open_store(store_url) as store:
        assert store.published_version("scores").run_id == "good"
        assert store.run_state("scores", "drifted") == "rejected"
    accept = [
        "publish",
        "--store",
        store_url,
        "--table",
        "scores",
        "--run-id",
        "drifted",
        "--thresholds",
        '{"maxPsi": null}',
    ]
    assert cli.main(accept) == 0  # an operator accepts the drift: judged again, published without recomputing
    with open_store(store_url) as store:
        assert store.published_version("scores").run_id == "drifted"


def test_status_and_cleanup_commands_describe_and_tidy_a_table(store_url, tmp_path, capsys):
    for run in ("a", "b"):
        run_cli(store_url, tmp_path, "--input", write_parquet(tmp_path, make_table(100, seed=1)), "--key-columns", "id",
                "--table", "scores", "--predictor", PREDICTOR, "--run-id", run, "--thresholds", '{"maxPsi": null}')  # fmt: skip
    capsys.readouterr()
    assert cli.main(["status", "--store", store_url, "--table", "scores", "--run-id", "a"]) == 0
    status = json.loads(capsys.readouterr().out)
    assert status["published"]["run_id"] == "b" and status["run"] == {
        "run_id": "a",
        "state": "retired",
        "staged_rows": 100,
    }
    assert cli.main(["cleanup", "--store", store_url, "--table", "scores", "--keep-versions", "1"]) == 0
    assert json.loads(capsys.readouterr().out)["dropped"] == [physical_table_name("scores", "a")]


def test_invalid_predictions_over_the_null_share_are_rejected(store_url, tmp_path):
    report = run_cli(store_url, tmp_path, "--input", write_parquet(tmp_path, make_table(2_000, seed=1)),
                     "--key-columns", "id", "--table", "probs", "--predictor", "tests.integration.batch_model:nan_predictor",
                     "--run-id", "n1", "--thresholds", '{"maxNullShare": 0.05}', expect=3)  # fmt: skip
    nulls = {c["name"]: c for c in report["verification"]["checks"]}["null_share"]
    assert nulls["verdict"] == "fail" and 0.05 < nulls["value"] < 1
    with open_store(store_url) as store:
        assert store.published_version("probs") is None


def _parquet(table: pa.Table):
    return lambda tmp: ["--input", write_parquet(tmp, table, "bad.parquet")]


def _csv(text: str, *extra: str):
    def build(tmp: Path) -> list[str]:
        (tmp / "bad.csv").write_text(text)
        return ["--input", str(tmp / "bad.csv"), *extra]

    return build


GOOD = make_table(100, seed=1)
LATE_BAD_VALUE = (
    "id,f0,f1,f2,f3\n" + "".join(f"{i},5.0,3.0,1.5,0.2\n" for i in range(250_000)) + "x,oops,1,1,1\n"
)
BAD_INPUTS = {  # case: (arguments built in tmp_path, what the error must say)
    "missing key column": (_parquet(GOOD.drop(["id"])), "no key column"),
    "float key": (
        _parquet(GOOD.set_column(0, "id", pa.array(np.arange(100) * 0.5))),
        "keys must be integers or strings",
    ),
    "text feature": (
        _parquet(GOOD.set_column(1, "f0", pa.array(["x"] * 100))),
        "feature column 'f0' has type string",
    ),
    "empty csv": (_csv(""), "is empty"),
    "no rows": (_parquet(GOOD.slice(0, 0)), "no rows"),
    # past the CSV reader's 4 MB first block, after 25 chunks were staged: those must go again
    "bad value deep in a csv": (_csv(LATE_BAD_VALUE, "--chunk-rows", "10000"), "oops"),
}


@pytest.mark.parametrize("case", list(BAD_INPUTS))
def test_bad_input_fails_clearly_and_publishes_nothing(store_url, tmp_path, case):
    run_cli(store_url, tmp_path, "--input", write_parquet(tmp_path, make_table(500, seed=1), "ok.parquet"),
            "--key-columns", "id", "--table", "scores", "--predictor", PREDICTOR, "--run-id", "before")  # fmt: skip
    build, message = BAD_INPUTS[case]
    args = build(tmp_path)
    report = run_cli(store_url, tmp_path, *args, "--key-columns", "id", "--table", "scores", "--predictor", PREDICTOR,
                     "--run-id", "bad", expect=2)  # fmt: skip
    assert report["status"] == "invalid_input" and message in report["error"]
    with open_store(store_url) as store:
        assert store.published_version("scores").run_id == "before"
        assert store.staged_rows("scores", "bad") is None  # nothing left behind either
        assert store.run_state("scores", "bad") in (None, "failed")


def test_shards_write_their_part_and_the_last_one_to_finish_publishes(store_url, tmp_path):
    data = make_table(4_000, seed=1, key="str")
    path = write_parquet(tmp_path, data)
    common = ["--input", path, "--key-columns", "user", "--table", "sharded", "--predictor", PREDICTOR,
              "--run-id", "s1", "--shard-count", "3", "--chunk-rows", "700"]  # fmt: skip
    reports = [run_cli(store_url, tmp_path, *common, "--shard-index", str(i)) for i in (2, 0)]
    assert [r["status"] for r in reports] == ["waiting", "waiting"]
    assert reports[1]["waiting"] == {"shards_done": 2, "shard_count": 3}
    with open_store(store_url) as store:
        assert store.published_version("sharded") is None
    last = run_cli(store_url, tmp_path, *common, "--shard-index", "1")
    assert last["status"] == "published" and last["published"]["rows"] == 4_000
    assert sum(r["rows_written"] for r in [*reports, last]) == 4_000
    users = [r["user"] for r in stored_rows(store_url, "sharded", "s1")]
    assert sorted(users) == sorted(data.column("user").to_pylist())


def seed_input_table(store_url: str, data: pa.Table) -> None:
    """An input table in the store's database, written with the plain driver."""
    kind, target = store_kind(store_url)
    ddl = 'CREATE TABLE input_rows (id BIGINT, f0 REAL, f1 REAL, f2 REAL, f3 REAL, "ignored" TEXT)'
    rows = [(*r.values(), "x") for r in data.to_pylist()]
    if kind == "sqlite":
        with sqlite3.connect(target) as conn:
            conn.execute(ddl)
            conn.executemany("INSERT INTO input_rows VALUES (?, ?, ?, ?, ?, ?)", rows)
    else:
        with psycopg.connect(target) as conn, conn.cursor() as cur:
            cur.execute(ddl)
            cur.executemany("INSERT INTO input_rows VALUES (%s, %s, %s, %s, %s, %s)", rows)


def test_a_sql_query_against_the_store_is_an_input(store_url, tmp_path):
    data = make_table(1_500, seed=4)
    seed_input_table(store_url, data)
    report = run_cli(store_url, tmp_path, "--input-sql", "SELECT id, f0, f1, f2, f3 FROM input_rows", "--key-columns",
                     "id", "--table", "from_sql", "--predictor", PREDICTOR, "--run-id", "q1", "--chunk-rows", "400")  # fmt: skip
    assert report["status"] == "published" and report["rows_written"] == 1_500
    by_id = {r["id"]: r["prediction"] for r in stored_rows(store_url, "from_sql", "q1")}
    assert [by_id[i] for i in range(1_500)] == expected_predictions(data).tolist()
