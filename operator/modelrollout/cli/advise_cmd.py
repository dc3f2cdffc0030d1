"""`modelrollout advise`: recommend static, dynamic or hybrid serving from a request log.

Reads a request log (CSV, TSV, Parquet or one key per line) or, with --prometheus-url, the live
figures of a running hybrid deployment; takes model facts as numbers or measures a predictor on
sample inputs; prints the figures per mode, the recommendation and the reasons, and optionally
writes a PNG of the coverage curve and JSON. Bad input exits with code 2 and one line on stderr.
Heavy imports (pyarrow, numpy, matplotlib) happen inside `run`, so `modelrollout --help` stays fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

# flag -> field of CostParams / ModelFacts; the pydantic models hold the defaults and the checks
COST_FLAGS = {
    "--storage-cost-per-gb-month": ("storage_cost_per_gb_month", "price of stored data, $ per GB-month"),
    "--cpu-cost-per-core-hour": ("cpu_cost_per_core_hour", "price of CPU, $ per core-hour"),
    "--latency-target-ms": ("latency_target_ms", "p99 latency goal in ms"),
    "--staleness-hours": ("staleness_hours", "acceptable age of a precomputed prediction; 0: always fresh"),
    "--max-unseen-share": ("max_unseen_share", "share of requests static serving may leave unanswered"),
    "--model-min-cores": ("model_min_cores", "cores an always-on model server costs even when idle"),
    "--online-cpu-utilization": ("online_cpu_utilization", "CPU utilisation autoscaled model servers run at"),
    "--batch-max-cores": ("batch_max_cores", "cores a precompute run may use"),
    "--min-hybrid-saving": ("min_hybrid_saving", "share hybrid must save over static/dynamic to be chosen"),
}
FACT_FLAGS = {
    "--model-latency-ms-p50": ("latency_p50_ms", "online model latency, median, ms"),
    "--model-latency-ms-p99": ("latency_p99_ms", "online model latency, 99th percentile, ms"),
    "--model-cpu-ms": ("cpu_ms", "CPU time per online prediction, ms"),
    "--batch-cpu-ms": (
        "batch_cpu_ms",
        "CPU time per prediction in a batch run, ms (default: --model-cpu-ms)",
    ),
    "--prediction-bytes": ("prediction_bytes", "stored size of one prediction, bytes"),
    "--lookup-latency-ms": ("lookup_p50_ms", "prediction table lookup latency, median, ms"),
    "--lookup-latency-ms-p99": ("lookup_p99_ms", "lookup latency, 99th percentile, ms (default: 3 x median)"),
}


def register(subparsers: argparse._SubParsersAction) -> None:
    from modelrollout.advisor.model_facts import ModelFacts
    from modelrollout.advisor.params import CostParams

    parser = subparsers.add_parser(
        "advise",
        help="recommend static, dynamic or hybrid serving (and the head size) from a request log",
        description=__doc__.split("\n\n")[0],
        epilog="Exit status: 0 when advice is printed (also when no mode meets the goals: mode none), "
        "2 on bad input. Hit ratios are estimated on held-out requests; the report says how k is chosen.",
    )
    parser.add_argument(
        "log", nargs="?", type=Path, help="request log: .csv[.gz], .tsv, .parquet, or .txt (one key a line)"
    )
    source = parser.add_argument_group("workload")
    source.add_argument(
        "--key-column", action="append", help="key column; repeat for composite keys (default: key)"
    )
    source.add_argument(
        "--timestamp-column", help="timestamps (ISO 8601 or epoch seconds) give the request rate"
    )
    source.add_argument(
        "--universe-size", type=int, help="number of keys that can ever be requested, if known"
    )
    source.add_argument(
        "--requests-per-second", type=float, help="request rate, instead of deriving it from the log"
    )
    source.add_argument("--assumed-log-hours", type=float, default=24.0,
                        help="span the log is taken to cover without timestamps or a rate (default: 24)")  # fmt: skip
    source.add_argument("--seed", type=int, default=0, help="seed of the held-out split (default: 0)")
    for title, flags, model in (
        ("costs and goals", COST_FLAGS, CostParams),
        ("model facts", FACT_FLAGS, ModelFacts),
    ):
        group = parser.add_argument_group(title)
        for flag, (name, text) in flags.items():
            default = model.model_fields[name].default
            shown = "" if default is None else f" (default: {default:g})"
            group.add_argument(flag, dest=name, type=float, metavar="X", help=text + shown)
    _add_measure_live_output(parser)
    parser.set_defaults(func=run)


def _add_measure_live_output(parser: argparse.ArgumentParser) -> None:
    measured = parser.add_argument_group("measure the model instead of giving its latency and CPU")
    measured.add_argument(
        "--model", metavar="MODULE:CALLABLE", help="predictor called with one sample row (a dict)"
    )
    measured.add_argument("--model-sample", type=Path, help="CSV or Parquet of sample inputs for --model")
    measured.add_argument(
        "--model-sample-rows", type=int, default=200, help="rows of the sample to use (default: 200)"
    )
    live = parser.add_argument_group("live figures of a running hybrid deployment (instead of a log)")
    live.add_argument("--prometheus-url", help="e.g. http://127.0.0.1:9090")
    live.add_argument("--deployment", help="ModelDeployment name (label modelrollout_deployment)")
    live.add_argument("--namespace", default="default", help="namespace (label namespace; default: default)")
    live.add_argument("--window", default="5m", help="rate window (default: 5m)")
    live.add_argument("--head-size", type=int, help="keys in the running table (default: read its gauge)")
    live.add_argument(
        "--insecure-skip-tls-verify",
        action="store_true",
        help="do not verify Prometheus' TLS certificate (verified by default)",
    )
    output = parser.add_argument_group("output")
    output.add_argument("--plot", type=Path, metavar="PNG", help="write the coverage curve with k marked")
    output.add_argument("--head-keys-out", type=Path, metavar="CSV", help="write the recommended head's keys")
    output.add_argument("--json", action="store_true", help="print JSON instead of the text report")


def run(args: argparse.Namespace) -> int:
    from pydantic import ValidationError

    from modelrollout.advisor.errors import AdvisorError, from_validation_error

    flag_of = {name: flag for flag, (name, _) in {**COST_FLAGS, **FACT_FLAGS}.items()}
    try:
        return _advise(args)
    except ValidationError as err:
        message = str(from_validation_error(err, names=flag_of))
    except AdvisorError as err:
        message = str(err)
    print(f"modelrollout advise: error: {message}", file=sys.stderr)
    return 2


def _advise(args: argparse.Namespace) -> int:
    from modelrollout.advisor.errors import AdvisorError
    from modelrollout.advisor.model_facts import ModelFacts
    from modelrollout.advisor.params import CostParams
    from modelrollout.advisor.recommend import recommend
    from modelrollout.advisor.report import render_text

    costs = CostParams(**_given(args, COST_FLAGS))
    facts = ModelFacts(**_given(args, FACT_FLAGS))
    if args.model:
        facts = _measure(args, base=facts)
    counts = None
    if args.prometheus_url:
        figures, facts = _live_inputs(args, facts)
    elif args.log is not None:
        from modelrollout.advisor.figures import figures_from_log
        from modelrollout.advisor.workload import read_log

        counts = read_log(args.log, key_columns=args.key_column, timestamp_column=args.timestamp_column)
        figures = figures_from_log(
            counts, universe_size=_positive(args.universe_size, "--universe-size"),
            requests_per_second=args.requests_per_second, assumed_span_hours=args.assumed_log_hours, seed=args.seed,
        )  # fmt: skip
    else:
        raise AdvisorError("give a request log, or --prometheus-url and --deployment for live figures")
    recommendation = recommend(figures, facts, costs)
    written: dict[str, str] = {}
    if args.plot is not None:
        from modelrollout.advisor.plot import plot_coverage

        written["plot"] = str(plot_coverage(figures, recommendation, args.plot))
    if args.head_keys_out is not None:
        written["headKeys"] = _write_head(args.head_keys_out, counts=counts, recommendation=recommendation)
    if args.json:
        # through pydantic's JSON: impossible modes' infinite costs become null, not bare Infinity
        document = {
            "recommendation": json.loads(recommendation.model_dump_json()),
            "status": recommendation.to_status(),
        }
        print(json.dumps({**document, "files": written}, indent=2))
    else:
        print(render_text(recommendation), end="")
        for what, path in written.items():
            print(f"wrote {what}: {path}")
    return 0


def _given(args: argparse.Namespace, flags: dict) -> dict:
    return {name: getattr(args, name) for name, _ in flags.values() if getattr(args, name) is not None}


def _positive(value: int | None, flag: str) -> int | None:
    from modelrollout.advisor.errors import AdvisorError

    if value is not None and value <= 0:
        raise AdvisorError(f"{flag} must be a positive number of keys, got {value}")
    return value


def _measure(args: argparse.Namespace, *, base):
    from modelrollout.advisor.errors import AdvisorError
    from modelrollout.advisor.model_facts import load_predictor, measure_predictor

    if args.model_sample is None:
        raise AdvisorError("--model needs --model-sample with inputs to call it on")
    rows = _positive(args.model_sample_rows, "--model-sample-rows")
    return measure_predictor(load_predictor(args.model), _sample_rows(args.model_sample, rows), base=base)


def _sample_rows(path: Path, rows: int) -> list[dict]:
    import pyarrow as pa

    from modelrollout.advisor.errors import AdvisorError

    try:
        if path.suffix.lower() in (".parquet", ".pq"):
            import pyarrow.parquet as pq

            table = pq.read_table(path)
        else:
            import pyarrow.csv as pcsv

            table = pcsv.read_csv(path)
    except (pa.ArrowException, OSError) as err:
        raise AdvisorError(f"cannot read model sample {path}: {str(err).splitlines()[0]}") from err
    return table.slice(0, rows).to_pylist()


def _live_inputs(args: argparse.Namespace, facts):
    from modelrollout.advisor.errors import AdvisorError
    from modelrollout.advisor.live import facts_from_live, figures_from_live, read_live

    if not args.deployment:
        raise AdvisorError("--prometheus-url needs --deployment")
    live = read_live(
        args.prometheus_url, deployment=args.deployment, namespace=args.namespace, window=args.window,
        head_size=_positive(args.head_size, "--head-size"), insecure_skip_verify=args.insecure_skip_tls_verify,
    )  # fmt: skip
    figures = figures_from_live(live, universe_size=_positive(args.universe_size, "--universe-size"))
    return figures, facts_from_live(live, facts)


def _write_head(path: Path, *, counts, recommendation) -> str:
    import pyarrow.csv as pcsv

    from modelrollout.advisor.errors import AdvisorError
    from modelrollout.advisor.workload import head_keys

    if counts is None:
        raise AdvisorError("--head-keys-out needs a request log: live figures do not name keys")
    k = recommendation.head_size if recommendation.mode == "hybrid" else 0
    if recommendation.mode == "static":
        k = counts.distinct_keys
    try:
        pcsv.write_csv(head_keys(counts, k), path)
    except OSError as err:
        raise AdvisorError(f"cannot write head keys {path}: {err}") from err
    return str(path)
