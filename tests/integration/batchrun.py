"""Publish prediction tables for bento tests the way the operator's CronJob does: the real
``modelrollout-batch run`` CLI with the iris bento's predictor, in a subprocess.

Also the small helpers the lookup tests share: sample inputs and a stuck SQLite store.
"""

from __future__ import annotations

import contextlib
import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

from tests.integration.bentoproc import IRIS_DIR, ModelStore, base_env

RUN_TIMEOUT_S = 90.0


def runner_command() -> list[str]:
    """The console script the CronJob runs (the venv's), else the module it wraps."""
    script = Path(sys.executable).with_name("modelrollout-batch")
    return [str(script)] if script.exists() else [sys.executable, "-m", "modelrollout.runtime.batch.cli"]


def run_batch(store: ModelStore, db_url: str, *, run_id: str, input_path: Path, table: str = "iris") -> dict:
    """``modelrollout-batch run`` with the bento's predictor (importable via PYTHONPATH, as in the image)."""
    env = base_env(
        BENTOML_HOME=str(store.home),
        PYTHONPATH=str(IRIS_DIR),
        MODELROLLOUT_MODEL_TAG=store.tag("v1"),
        MODELROLLOUT_STORE_DSN=db_url,
    )
    args = ["run", "--input", str(input_path), "--key-columns", "id", "--table", table,
            "--predictor", "batch:predictor", "--run-id", run_id, "--model-version", "1.0.0"]  # fmt: skip
    result = subprocess.run(
        runner_command() + args, env=env, capture_output=True, text=True, timeout=RUN_TIMEOUT_S, check=False
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    return json.loads(result.stdout.strip().splitlines()[-1])


def write_input(path: Path, *, rows: int, start_id: int = 1) -> Path:
    """The sample input (ids ``start_id``..); Parquet keeps ``id`` an integer column, CSV makes it text."""
    subprocess.run(
        [sys.executable, str(IRIS_DIR / "make_sample_input.py"), "--rows", str(rows),
         "--start-id", str(start_id), "--output", str(path)],
        env=base_env(), capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return path


@contextlib.contextmanager
def stuck_sqlite(path: Path) -> Iterator[None]:
    """A separate process holding ``BEGIN EXCLUSIVE`` on the SQLite file until the block ends.

    Readers wait on it only in the rollback journal (``PRAGMA journal_mode=DELETE``): in WAL mode
    readers never wait for a writer. The holder ends when its stdin closes, so it cannot outlive us.
    """
    code = (
        "import sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None, timeout=10)\n"
        "conn.execute('BEGIN EXCLUSIVE')\n"
        "print('locked', flush=True)\n"
        "sys.stdin.read()\n"
    )
    holder = subprocess.Popen(
        [sys.executable, "-c", code, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout.readline().strip() == "locked"
        yield
    finally:
        holder.stdin.close()
        try:
            holder.wait(timeout=10)
        except subprocess.TimeoutExpired:
            holder.kill()
            holder.wait(timeout=10)
