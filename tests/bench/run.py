"""`make bench`: every benchmark, each printing its own tables.

    python -m tests.bench.run                 # quick defaults (a few minutes on 2 cores)
    python -m tests.bench.run batch --sizes 1e5,1e6,1e7
    python -m tests.bench.run canary --intervals 5,10
    python -m tests.bench.run reconcile --objects 1000
    python -m tests.bench.run serving --requests 5000
    python -m tests.bench.run ground-truth --predictions 1e6 --labels 1e5

Targets are checked as ratios within one run (never as timed assertions in tests).
"""

from __future__ import annotations

import sys

from tests.bench import bench_batch, bench_canary, bench_ground_truth, bench_reconcile, bench_serving

BENCHES = {
    "reconcile": bench_reconcile.main,
    "batch": bench_batch.main,
    "canary": bench_canary.main,
    "serving": bench_serving.main,
    "ground-truth": bench_ground_truth.main,
}


def main(argv: list[str] | None = None) -> int:
    argv = list(sys.argv[1:] if argv is None else argv)
    names = [argv.pop(0)] if argv and argv[0] in BENCHES else list(BENCHES)
    status = 0
    for name in names:
        print(f"\n=== {name} ===", flush=True)
        status |= BENCHES[name](argv if len(names) == 1 else [])
    return status


if __name__ == "__main__":
    sys.exit(main())
