"""Write the sample input of the iris batch run: iris rows keyed by ``id`` (CSV or Parquet).

The committed ``data/iris-input.csv`` is ``python bentos/iris/make_sample_input.py`` (the 150 iris
rows, ids 1..150). ``--rows N`` beyond 150 cycles through the data set again with small seeded
noise on every feature (so a bigger, still iris-shaped input exists for demos and benchmarks);
``--start-id`` shifts the ids, e.g. to produce keys the first run did not have.

    python bentos/iris/make_sample_input.py                                   # data/iris-input.csv
    python bentos/iris/make_sample_input.py --rows 200 --output /tmp/in.parquet

Columns: ``id`` (the key the lookup serves by) and the four features the batch predictor reads
(:data:`batch.FEATURES`): sepal length, sepal width, petal length, petal width in cm.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DEFAULT_OUTPUT = HERE / "data" / "iris-input.csv"
FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
NOISE_CM = 0.05


def sample_table(*, rows: int = 150, start_id: int = 1, seed: int = 0):
    """The input as a pyarrow Table: ``id`` then the four features (rounded to 0.1 mm)."""
    import numpy as np
    import pyarrow as pa
    from sklearn.datasets import load_iris

    if rows < 1:
        raise ValueError(f"rows must be at least 1, got {rows}")
    data = load_iris().data
    index = np.arange(rows) % len(data)
    features = data[index].astype(np.float64)
    repeated = np.arange(rows) >= len(data)
    if repeated.any():  # rows after the first pass get a little noise: same shape, new values
        noise = np.random.default_rng(seed).normal(0.0, NOISE_CM, size=features.shape)
        features[repeated] = np.clip(features[repeated] + noise[repeated], 0.1, None)
    columns = {"id": pa.array(np.arange(start_id, start_id + rows, dtype=np.int64))}
    for j, name in enumerate(FEATURES):
        columns[name] = pa.array(np.round(features[:, j], 2))
    return pa.table(columns)


def write(table, output: Path) -> Path:
    """Parquet for ``.parquet``, CSV for ``.csv``; the parent folder is created."""
    output.parent.mkdir(parents=True, exist_ok=True)
    if output.suffix == ".parquet":
        import pyarrow.parquet as pq

        pq.write_table(table, output)
    elif output.suffix == ".csv":
        import pyarrow.csv as pacsv

        pacsv.write_csv(table, output, pacsv.WriteOptions(quoting_style="none", quoting_header="none"))
    else:
        raise ValueError(f"output {output} must end in .csv or .parquet")
    return output


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--output", type=Path, default=DEFAULT_OUTPUT, help="a .csv or .parquet file")
    parser.add_argument("--rows", type=int, default=150, help="rows to write (default: the 150 iris rows)")
    parser.add_argument("--start-id", type=int, default=1, help="id of the first row (default 1)")
    parser.add_argument("--seed", type=int, default=0, help="seed of the noise on rows beyond 150")
    args = parser.parse_args(argv)
    try:
        path = write(sample_table(rows=args.rows, start_id=args.start_id, seed=args.seed), args.output)
    except ValueError as exc:
        parser.error(str(exc))
    print(path)
    return 0


if __name__ == "__main__":
    sys.exit(main())
