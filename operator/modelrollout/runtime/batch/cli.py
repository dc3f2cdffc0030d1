"""``modelrollout-batch``: the batch runner's command line (the CronJob / Indexed Job entrypoint).

::

    modelrollout-batch run --input /data/users.parquet --key-columns user_id --table user_scores \\
        --predictor mybento.batch:predictor --run-id "$MODELROLLOUT_RUN_ID" \\
        --store "$MODELROLLOUT_STORE_DSN" --report-file /dev/termination-log
    modelrollout-batch publish --table user_scores --run-id R   # retry a publish (shards all done)
    modelrollout-batch status --table user_scores [--run-id R]
    modelrollout-batch cleanup --table user_scores --keep-versions 3
    modelrollout-batch labels import --input labels.csv --by request_id   # ground truth (labels_cli.py)

Every option has an environment variable default, so one pod template serves all runs:
``MODELROLLOUT_STORE_DSN`` (see :mod:`..store.factory`), ``MODELROLLOUT_RUN_ID`` (set it from the
Job's name: a retried pod then reruns the same run id, which never duplicates rows),
``MODELROLLOUT_MODEL_VERSION``, ``MODELROLLOUT_MODEL_TAG`` (a BentoML model tag when no
``--predictor``), ``MODELROLLOUT_VERIFY_THRESHOLDS`` (JSON, camelCase as in the spec),
``JOB_COMPLETION_INDEX`` (set by an Indexed Job) and ``MODELROLLOUT_SHARD_COUNT``.

Sharding: each of N shards reads the whole input, keeps the rows whose key hash falls in its
shard, writes them into the run's one staging table and records itself done; whichever shard
finds all N done (under the table's lock) verifies and publishes. ``publish`` repeats that last
step by hand. The JSON report goes to stdout and ``--report-file``; exit codes: see :mod:`.report`.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import sys
from collections.abc import Sequence
from typing import Any

from pydantic import ValidationError

from ..store.factory import open_store, redact, resolve_store_url
from ..store.naming import InvalidName, RunConflict, StoreError
from . import report as run_report
from .labels_cli import add_labels_command, cmd_labels_import
from .predictor import PredictorError, feature_order, load_bentoml_model, load_entrypoint
from .readers import InputError, InputSpec
from .runner import DEFAULT_CHUNK_ROWS, RunConfig, RunResult, make_judge, run_batch
from .verify import Thresholds

PROG = "modelrollout-batch"


def _env_int(name: str, default: int) -> int:
    value = os.environ.get(name, "")
    try:
        return int(value) if value.strip() else default
    except ValueError:
        raise SystemExit(f"{PROG}: error: environment variable {name}={value!r} is not an integer") from None


def _csv_list(text: str | None) -> tuple[str, ...] | None:
    return tuple(p.strip() for p in text.split(",") if p.strip()) if text else None


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=PROG, description="Batch predictions into a versioned prediction table."
    )
    sub = parser.add_subparsers(dest="command", required=True)
    common, verify = _parent_parsers()
    _add_run_command(sub, parents=[common, verify])
    publish = sub.add_parser(
        "publish", parents=[common, verify], help="verify and publish a run whose shards are all done"
    )
    publish.add_argument(
        "--run-id",
        default=os.environ.get("MODELROLLOUT_RUN_ID"),
        required="MODELROLLOUT_RUN_ID" not in os.environ,
    )
    status = sub.add_parser(
        "status", parents=[common], help="print the published version (and a run's state)"
    )
    status.add_argument("--run-id", default=None)
    cleanup = sub.add_parser(
        "cleanup", parents=[common], help="drop old versions and abandoned staging tables"
    )
    cleanup.add_argument("--keep-versions", type=int, default=3)
    cleanup.add_argument("--stale-after-hours", type=float, default=24.0, help="must exceed the longest run")
    add_labels_command(sub)
    return parser


def _parent_parsers() -> tuple[argparse.ArgumentParser, argparse.ArgumentParser]:
    """The flags every command shares (store, table, report file) and those of verification."""
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument(
        "--store", default=None, help="store URL (default: $MODELROLLOUT_STORE_DSN, else a SQLite file)"
    )
    common.add_argument(
        "--table",
        default=os.environ.get("MODELROLLOUT_TABLE"),
        required="MODELROLLOUT_TABLE" not in os.environ,
    )
    common.add_argument(
        "--report-file", default=None, help="also write the JSON report here (e.g. /dev/termination-log)"
    )
    verify = argparse.ArgumentParser(add_help=False)
    verify.add_argument("--thresholds", default=os.environ.get("MODELROLLOUT_VERIFY_THRESHOLDS"),
                        help='JSON, e.g. {"minRowRatio": 1.0, "maxNullShare": 0.01, "maxPsi": 0.2}')  # fmt: skip
    verify.add_argument(
        "--keep-versions", type=int, default=3, help="published versions kept for rollback/readers"
    )
    return common, verify


def _add_run_command(sub: Any, *, parents: list[argparse.ArgumentParser]) -> None:
    run = sub.add_parser("run", parents=parents, help="predict an input and publish it if it verifies")
    source = run.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="Parquet/CSV file, or a directory of them")
    source.add_argument("--input-sql", help="a query against the store's database")
    run.add_argument("--format", choices=("auto", "parquet", "csv"), default="auto")
    run.add_argument(
        "--key-columns", required=True, help="comma-separated key columns (passed through unchanged)"
    )
    run.add_argument(
        "--feature-columns", help="comma-separated feature columns (default: the model's, else all others)"
    )
    run.add_argument(
        "--key-type",
        action="append",
        default=[],
        metavar="COLUMN=int|str",
        help="read a key column as int or str",
    )
    model = run.add_mutually_exclusive_group()
    model.add_argument("--predictor", help="module:attr of an object with predict() (or a factory of one)")
    model.add_argument(
        "--bentoml-model", default=os.environ.get("MODELROLLOUT_MODEL_TAG"), help="a BentoML model tag"
    )
    run.add_argument("--model-version", default=os.environ.get("MODELROLLOUT_MODEL_VERSION"))
    run.add_argument(
        "--run-id",
        default=os.environ.get("MODELROLLOUT_RUN_ID"),
        required="MODELROLLOUT_RUN_ID" not in os.environ,
    )
    run.add_argument("--chunk-rows", type=int, default=DEFAULT_CHUNK_ROWS)
    run.add_argument("--shard-index", type=int, default=_env_int("JOB_COMPLETION_INDEX", 0))
    run.add_argument("--shard-count", type=int, default=_env_int("MODELROLLOUT_SHARD_COUNT", 1))


def parse_thresholds(text: str | None) -> Thresholds:
    if not text:
        return Thresholds()
    try:
        return Thresholds.model_validate(json.loads(text))
    except (json.JSONDecodeError, ValidationError) as exc:
        raise InputError(f"invalid --thresholds {text!r}: {exc}") from exc


def parse_key_types(items: Sequence[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for item in items:
        name, sep, kind = item.partition("=")
        if not sep or kind not in ("int", "str"):
            raise InputError(f"--key-type {item!r}: write COLUMN=int or COLUMN=str")
        out[name.strip()] = kind
    return out


def _emit(report: dict[str, Any], report_file: str | None) -> int:
    run_report.emit(report, run_report.render(report), report_file=report_file, prog=PROG)
    return run_report.exit_code(report["status"])


class Terminated(BaseException):
    """SIGTERM (pod deletion, Job deadline): unwinds through the runner, which drops what it staged."""


def _on_sigterm(signum: int, frame: Any) -> None:
    raise Terminated(f"terminated by signal {signum}; nothing was published")


def cmd_run(args: argparse.Namespace) -> int:
    store_url = resolve_store_url(args.store)
    spec = InputSpec(path=args.input, format=args.format, sql=args.input_sql)
    config: RunConfig | None = None
    result: RunResult | None = None
    exit_override = 0
    try:
        thresholds = parse_thresholds(args.thresholds)
        if not args.predictor and not args.bentoml_model:
            raise InputError("no model: pass --predictor module:attr or --bentoml-model TAG")
        predictor = (
            load_entrypoint(args.predictor) if args.predictor else load_bentoml_model(args.bentoml_model)
        )
        config = RunConfig(
            table=args.table, run_id=args.run_id, key_columns=_csv_list(args.key_columns) or (),
            model_version=args.model_version or predictor.model_version or "unversioned",
            feature_columns=_tuple(feature_order(predictor, requested=_csv_list(args.feature_columns))),
            key_types=parse_key_types(args.key_type), chunk_rows=args.chunk_rows, shard_index=args.shard_index,
            shard_count=args.shard_count, thresholds=thresholds, keep_versions=args.keep_versions,
        )  # fmt: skip
        with open_store(store_url) as store:
            result = run_batch(config, source=spec, predictor=predictor, store=store)
            status, error = result.status, None
    except (InputError, InvalidName, RunConflict) as exc:
        status, error = "invalid_input", str(exc)
    except (PredictorError, StoreError) as exc:
        status, error = "failed", str(exc)
    except Exception as exc:  # noqa: BLE001 - reported, never a traceback without a report
        status, error = "failed", f"{type(exc).__name__}: {exc}"
    except Terminated as exc:
        status, error, exit_override = "failed", str(exc), 128 + signal.SIGTERM
    report = run_report.build(config=config, result=result, status=status, store_url=_safe_redact(store_url),
                              input_description=spec.describe(), error=error)  # fmt: skip
    code = _emit(report, args.report_file)
    return exit_override or code


def _tuple(items: Sequence[str] | None) -> tuple[str, ...] | None:
    return tuple(items) if items else None


def _safe_redact(url: str) -> str:
    try:
        return redact(url)
    except StoreError:
        return "(invalid store URL)"


def cmd_publish(args: argparse.Namespace) -> int:
    try:
        judge = make_judge(parse_thresholds(args.thresholds))
        with open_store(args.store) as store:
            outcome = store.finalize(args.table, args.run_id, judge=judge, keep_versions=args.keep_versions)
        result = RunResult(outcome.status, outcome=outcome)
        report = run_report.build(config=None, result=result, status=outcome.status)
    except (InputError, StoreError) as exc:
        report = run_report.build(config=None, result=None, status="failed", error=str(exc))
    report.update(table=args.table, run_id=args.run_id)
    return _emit(report, args.report_file)


def cmd_status(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        version = store.published_version(args.table)
        out: dict[str, Any] = {"table": args.table, "published": run_report.version_summary(version)}
        if args.run_id:
            out["run"] = {"run_id": args.run_id, "state": store.run_state(args.table, args.run_id),
                          "staged_rows": store.staged_rows(args.table, args.run_id)}  # fmt: skip
    print(json.dumps(out))
    return 0


def cmd_cleanup(args: argparse.Namespace) -> int:
    with open_store(args.store) as store:
        dropped = store.cleanup(
            args.table, keep_versions=args.keep_versions, stale_after_s=args.stale_after_hours * 3600
        )
    print(json.dumps({"table": args.table, "dropped": dropped}))
    return 0


def main(argv: Sequence[str] | None = None, *, handle_sigterm: bool = True) -> int:
    """Console entry point; ``handle_sigterm=False`` when called in-process (tests keep their handler)."""
    args = build_parser().parse_args(argv)
    if args.command == "labels":
        return cmd_labels_import(args)
    if args.command == "run":
        if handle_sigterm:
            signal.signal(signal.SIGTERM, _on_sigterm)
        return cmd_run(args)
    try:
        return {"publish": cmd_publish, "status": cmd_status, "cleanup": cmd_cleanup}[args.command](args)
    except (StoreError, InvalidName) as exc:
        print(f"{PROG}: error: {exc}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
