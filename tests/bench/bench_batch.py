"""Benchmark of the batch runner: rows/s end to end against each stage bare, peak RSS, lookup latency.

For every input size, model (logistic regression; random forest of 100 trees) and store (SQLite
file; PostgreSQL on 127.0.0.1 with durable settings) it runs ``modelrollout-batch run`` as a
subprocess (Parquet in -> store out, verified and published) and measures, on the same data:

- read:    ``ParquetFile.iter_batches`` over the whole file, nothing else;
- predict: the model's vectorised ``predict`` on the features already in memory (1M-row slices);
- write:   the same output rows, encoded as the runner encodes them, bulk-written by the store's
           fastest path: one ``executemany`` transaction (SQLite), one ``COPY`` (PostgreSQL),
           into a table of the run's schema.

End-to-end rows/s use the run's own duration from its report (read -> publish, including the
unique-index build and verification), so the interpreter's start and the sklearn import are not
counted; the wall time with them is shown too. Peak RSS is the run's own ``VmHWM`` (in its report).
Targets: end to end >= 50% of the slowest bare stage; RSS flat as the input grows.

    python tests/bench/bench_batch.py                      # 1e5 and 1e6 rows (make bench)
    python tests/bench/bench_batch.py --sizes 1e5,1e6,1e7  # minutes: 1e7 rows of a forest is slow
"""

from __future__ import annotations

import argparse
import json
import os
import pickle
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO))

from modelrollout.runtime.batch.readers import parquet_file  # noqa: E402
from modelrollout.runtime.batch.verify import Thresholds  # noqa: E402
from modelrollout.runtime.lookup import LookupService  # noqa: E402
from modelrollout.runtime.store import RunSchema, open_store  # noqa: E402
from modelrollout.runtime.store.postgres import copy_sql  # noqa: E402
from modelrollout.runtime.store.sqlite import insert_sql  # noqa: E402
from tests.integration.batch_model import FEATURES, make_features  # noqa: E402
from tests.integration.postgres import fresh_database, running_postgres  # noqa: E402

ROW_GROUP = 1_000_000
DURABLE_PG = {"fsync": "on", "synchronous_commit": "on", "full_page_writes": "on"}


class PickledModel:
    """What the runner subprocess loads: ``tests.bench.bench_batch:PickledModel`` (path in env)."""

    feature_names = FEATURES

    def __init__(self) -> None:
        with open(os.environ["BENCH_MODEL_PATH"], "rb") as fh:
            self.model = pickle.load(fh)
        self.model_version = os.environ.get("BENCH_MODEL_NAME", "bench")

    def predict(self, features: np.ndarray) -> np.ndarray:
        return self.model.predict(features)


def train_models(workdir: Path) -> dict[str, Path]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    x, y = make_features(20_000, seed=0)
    models = {
        "logreg": LogisticRegression(max_iter=500).fit(x, y),
        "forest100": RandomForestClassifier(n_estimators=100, max_depth=12, random_state=0, n_jobs=1).fit(
            x, y
        ),
    }
    paths = {}
    for name, model in models.items():
        paths[name] = workdir / f"{name}.pkl"
        paths[name].write_bytes(pickle.dumps(model))
    return paths


def make_input(path: Path, rows: int) -> None:
    """Keys 0..rows-1 and four features, written in 1M-row row groups without holding it all."""
    schema = pa.schema([("id", pa.int64()), *[(f, pa.float64()) for f in FEATURES]])
    with pq.ParquetWriter(path, schema) as writer:
        for start in range(0, rows, ROW_GROUP):
            n = min(ROW_GROUP, rows - start)
            x, _ = make_features(n, seed=start)
            columns = [pa.array(np.arange(start, start + n, dtype=np.int64))] + [
                pa.array(x[:, j]) for j in range(4)
            ]
            writer.write_table(pa.Table.from_arrays(columns, schema=schema))


def run_end_to_end(store_url: str, data: Path, model: Path, run_id: str, chunk_rows: int) -> dict:
    env = {
        **os.environ,
        "BENCH_MODEL_PATH": str(model),
        "BENCH_MODEL_NAME": model.stem,
        "PYTHONPATH": str(REPO),
    }
    cmd = [sys.executable, "-m", "modelrollout.runtime.batch.cli", "run", "--store", store_url, "--input", str(data),
           "--key-columns", "id", "--table", "bench", "--predictor", "tests.bench.bench_batch:PickledModel",
           "--run-id", run_id, "--chunk-rows", str(chunk_rows)]  # fmt: skip
    started = time.perf_counter()
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, check=False, timeout=3600)
    wall = time.perf_counter() - started
    report = json.loads(proc.stdout.strip().splitlines()[-1]) if proc.stdout.strip() else {}
    if proc.returncode != 0 or report.get("status") != "published":
        raise RuntimeError(f"benchmark run failed ({proc.returncode}): {proc.stdout} {proc.stderr}")
    # peak RSS from the run's own report (VmHWM): a child's ru_maxrss starts at the parent's size
    return {
        "run_s": report["timings"]["total_s"],
        "wall_s": wall,
        "rss_mb": report["peak_rss_mb"],
        **report["timings"],
    }


def bare_read(data: Path, chunk_rows: int) -> float:
    started = time.perf_counter()
    for _ in parquet_file(data).iter_batches(batch_size=chunk_rows):  # the runner's reader settings
        pass
    return time.perf_counter() - started


def bare_predict(model, features: np.ndarray) -> tuple[float, np.ndarray]:
    started = time.perf_counter()
    out = np.concatenate(
        [model.predict(features[i : i + ROW_GROUP]) for i in range(0, len(features), ROW_GROUP)]
    )
    return time.perf_counter() - started, out


def _chunks(ids: np.ndarray, predictions: np.ndarray, chunk_rows: int):
    """The runner's output rows for the bare write: keys, prediction, one timestamp per chunk."""
    now = pa.scalar(datetime.now(UTC), pa.timestamp("us", tz="UTC"))
    for i in range(0, len(ids), chunk_rows):
        n = len(ids[i : i + chunk_rows])
        yield pa.table({"id": ids[i : i + chunk_rows], "prediction": predictions[i : i + chunk_rows],
                        "predicted_at": pa.repeat(now, n)})  # fmt: skip


def bare_write(store_url: str, ids: np.ndarray, predictions: np.ndarray, chunk_rows: int) -> float:
    """The same rows into a table of the run's schema, by the store's fastest path, in one go:
    encoded as the runner encodes them, then one executemany transaction (SQLite) or one COPY."""
    with open_store(store_url) as store:
        schema = RunSchema(keys=(("id", "int"),), prediction="int")
        staging = store.begin_run("bare", "bare", schema=schema, model_version="bench")
        conn = store._conn()  # the benchmark measures the raw driver path on the store's connection
        started = time.perf_counter()
        encoded = (store.encode_chunk(staging, t).payload for t in _chunks(ids, predictions, chunk_rows))
        if store_url.startswith("sqlite"):
            conn.execute("BEGIN IMMEDIATE")
            for names, rows in encoded:
                conn.executemany(insert_sql(staging.physical, names), rows)
            conn.commit()
        else:
            first_names, first_data = next(encoded)
            with conn.cursor() as cur, cur.copy(copy_sql(staging.physical, first_names)) as copy:
                copy.write(first_data)
                for _, data in encoded:
                    copy.write(data)
        return time.perf_counter() - started


def lookup_latency(store_url: str, keys: int, rows: int) -> list[float]:
    rng = np.random.default_rng(7)
    with open_store(store_url) as store:
        service = LookupService(store, "bench", mode="batch", refresh_s=60, registry=_registry())
        service.predict_one(0)
        samples = []
        for key in rng.integers(0, rows, size=keys).tolist():
            started = time.perf_counter()
            answer = service.predict_one(key)
            samples.append(time.perf_counter() - started)
            assert answer.found
    return samples


def model_latency(model, calls: int) -> list[float]:
    x, _ = make_features(calls, seed=3)
    samples = []
    for row in x:
        started = time.perf_counter()
        model.predict(row.reshape(1, -1))
        samples.append(time.perf_counter() - started)
    return samples


def _registry():
    from prometheus_client import CollectorRegistry

    return CollectorRegistry()


def _pct(samples: list[float], q: float) -> float:
    return float(np.percentile(samples, q)) * 1e6


def print_table(title: str, headers: list[str], rows: list[list]) -> None:
    cells = [[f"{c:,.0f}" if isinstance(c, float) and abs(c) >= 100 else (f"{c:.2f}" if isinstance(c, float) else str(c))
              for c in row] for row in rows]  # fmt: skip
    widths = [max(len(h), *(len(r[i]) for r in cells)) for i, h in enumerate(headers)]
    print(f"\n{title}")
    print("  ".join(h.rjust(w) for h, w in zip(headers, widths, strict=True)))
    print("  ".join("-" * w for w in widths))
    for row in cells:
        print("  ".join(c.rjust(w) for c, w in zip(row, widths, strict=True)))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--sizes", default=os.environ.get("BENCH_BATCH_SIZES", "1e5,1e6"))
    parser.add_argument("--models", default="logreg,forest100")
    parser.add_argument("--stores", default="sqlite,postgres")
    parser.add_argument("--chunk-rows", type=int, default=65_536)
    parser.add_argument("--lookups", type=int, default=2_000)
    args = parser.parse_args(argv)
    sizes = [int(float(s)) for s in args.sizes.split(",")]
    stores = args.stores.split(",")
    assert Thresholds().min_row_ratio == 1.0  # runs are verified with the defaults
    e2e_rows, latency_rows = [], []
    with (
        tempfile.TemporaryDirectory(prefix="bench-batch-") as tmp,
        running_postgres(settings=DURABLE_PG) as pg,
    ):
        workdir = Path(tmp)
        models = {
            name: path for name, path in train_models(workdir).items() if name in args.models.split(",")
        }
        for rows in sizes:
            data = workdir / f"in-{rows}.parquet"
            make_input(data, rows)
            read_s = bare_read(data, args.chunk_rows)
            table = pq.read_table(data)
            ids = table.column("id").to_numpy()
            features = np.column_stack([table.column(f).to_numpy() for f in FEATURES])
            del table
            for name, path in models.items():
                model = pickle.loads(path.read_bytes())
                predict_s, predictions = bare_predict(model, features)
                for store in stores:
                    url = (
                        f"sqlite:///{workdir}/{name}-{rows}.sqlite"
                        if store == "sqlite"
                        else fresh_database(pg.dsn)
                    )
                    run = run_end_to_end(url, data, path, f"{name}-{rows}", args.chunk_rows)
                    write_s = bare_write(url, ids, predictions, args.chunk_rows)
                    slowest = max(read_s, predict_s, write_s)
                    e2e_rows.append([f"{rows:.0e}", name, store, rows / run["run_s"], run["rss_mb"], run["wall_s"],
                                     rows / read_s, rows / predict_s, rows / write_s, 100 * slowest / run["run_s"],
                                     run["finalize_s"]])  # fmt: skip
                    if name == next(iter(models)):
                        hits = lookup_latency(url, args.lookups, rows)
                        latency_rows.append(
                            [f"{rows:.0e}", store, "lookup (hit)", _pct(hits, 50), _pct(hits, 99)]
                        )
                    print(f"done: {rows} rows, {name}, {store}: {run}", file=sys.stderr, flush=True)
            del features, ids
        for name, path in models.items():
            samples = model_latency(pickle.loads(path.read_bytes()), min(args.lookups, 1_000))
            latency_rows.append(["-", "-", f"model {name}", _pct(samples, 50), _pct(samples, 99)])
    print_table(
        "Batch runner: Parquet -> store, end to end vs. each stage bare (rows/s)",
        ["rows", "model", "store", "e2e rows/s", "peak RSS MB", "wall s", "read rows/s", "predict rows/s",
         "write rows/s", "e2e % of slowest", "publish s"],
        e2e_rows,
    )  # fmt: skip
    print_table("Online answer latency (one key per call, microseconds)", ["rows", "store", "path", "p50 us", "p99 us"],
                latency_rows)  # fmt: skip
    below = [r for r in e2e_rows if r[9] < 50]
    print(
        f"\ntarget e2e >= 50% of the slowest bare stage: {'met' if not below else f'missed in {len(below)} row(s)'}"
    )
    return 0


if __name__ == "__main__":
    sys.exit(main())
