"""``modelrollout-batch labels import``: load a day of ground truth into the shared prediction log.

::

    modelrollout-batch labels import --input labels.csv --by request_id          # request_id,row,label
    modelrollout-batch labels import --input cases.parquet --by key --key-column user_id \\
        --time-column closed_at --label-column fraud --max-lag 7d
    modelrollout-batch labels import --input-sql "SELECT id AS key, outcome AS label, ts FROM cases" \\
        --by key --time-column ts --store "$MODELROLLOUT_GROUND_TRUTH_DSN"

The store is ``--store``, else ``MODELROLLOUT_GROUND_TRUTH_DSN``, else ``MODELROLLOUT_STORE_DSN``
(the serving pods' own). Prints one JSON report: ``read``, ``accepted``, ``duplicate``,
``unknown`` (no such prediction), ``invalid`` (with the first reasons). Exit 0 when the labels
were read (whatever their outcomes), 2 on bad input (flags, file, columns; nothing imported),
1 when the store failed (chunks imported before the failure stay; re-running is safe: labels
already stored count as duplicates).
"""

from __future__ import annotations

import argparse
import json
import os
import time
from typing import Any

from ..store.factory import open_log_store, redact, store_kind
from ..store.naming import StoreError
from .labels import ImportSpec, check_columns, import_labels, parse_duration, parse_time, read_records
from .readers import InputError, InputSpec
from .report import emit

PROG = "modelrollout-batch labels import"
STORE_VARS = ("MODELROLLOUT_GROUND_TRUTH_DSN", "MODELROLLOUT_STORE_DSN")
STORE_TIMEOUT_S = 60.0


def add_labels_command(sub: Any) -> None:
    """``labels import`` under the ``modelrollout-batch`` parser's subcommands."""
    labels = sub.add_parser("labels", help="ground-truth labels for the shared prediction log")
    commands = labels.add_subparsers(dest="labels_command", required=True)
    cmd = commands.add_parser(
        "import", help="import labels from a file or a query (by request id or by key + time)"
    )
    source = cmd.add_mutually_exclusive_group(required=True)
    source.add_argument("--input", help="CSV/Parquet file, or a directory of them")
    source.add_argument("--input-sql", help="a query against the store's database")
    cmd.add_argument("--format", choices=("auto", "csv", "parquet", "sql"), default="auto")
    cmd.add_argument(
        "--store", default=None, help=f"store URL (default: ${STORE_VARS[0]}, else ${STORE_VARS[1]})"
    )
    cmd.add_argument(
        "--by", choices=("request_id", "key"), required=True, help="how a label names its prediction"
    )
    cmd.add_argument("--label-column", default="label")
    cmd.add_argument("--request-id-column", default="request_id")
    cmd.add_argument("--row-column", default="row", help="row of the request (absent column: row 0)")
    cmd.add_argument("--key-column", default="key")
    cmd.add_argument("--time-column", default=None, help="the label's time (Unix seconds or ISO-8601); "
                     "required with --by key; default for --by request_id: --now")  # fmt: skip
    cmd.add_argument(
        "--max-lag", default="7d", help="--by key: how much earlier the prediction may be (7d, 24h)"
    )
    cmd.add_argument("--model", default=None, help="--by key: join only predictions of this model name")
    cmd.add_argument("--now", default=None, help="the import's time (Unix seconds or ISO-8601; default: now)")
    cmd.add_argument("--chunk-rows", type=int, default=10_000)
    cmd.add_argument("--report-file", default=None, help="also write the JSON report here")


def store_url(flag: str | None) -> str:
    for value in (flag, *(os.environ.get(v) for v in STORE_VARS)):
        if value and value.strip():
            try:
                store_kind(value.strip())
            except StoreError as exc:
                raise InputError(str(exc)) from None
            return value.strip()
    raise InputError(f"no store: pass --store URL or set {' or '.join(STORE_VARS)}")


def spec_from(args: argparse.Namespace) -> ImportSpec:
    if args.chunk_rows < 1:
        raise InputError(f"--chunk-rows must be positive, got {args.chunk_rows}")
    return ImportSpec(
        by=args.by, label_column=args.label_column, request_id_column=args.request_id_column,
        row_column=args.row_column, key_column=args.key_column, time_column=args.time_column,
        max_lag_s=parse_duration(args.max_lag), model=args.model, chunk_rows=args.chunk_rows,
    )  # fmt: skip


def now_from(text: str | None) -> float:
    if text is None:
        return time.time()
    value = parse_time(text)
    if value is None:
        raise InputError(f"--now {text!r} is neither Unix seconds nor ISO-8601")
    return value


def cmd_labels_import(args: argparse.Namespace) -> int:
    report: dict[str, Any] = {"command": "labels import", "by": args.by}
    status, code = "ok", 0
    try:
        if args.format == "sql" and not args.input_sql:
            raise InputError("--format sql needs --input-sql")
        spec, now, url = spec_from(args), now_from(args.now), store_url(args.store)
        report["store"] = redact(url)
        source = InputSpec(
            path=args.input, format="auto" if args.format == "sql" else args.format, sql=args.input_sql
        )
        report["input"] = source.describe()
        store = open_log_store(url, wait_timeout_s=STORE_TIMEOUT_S)
        try:
            names, records = read_records(source, store=store, chunk_rows=spec.chunk_rows)
            check_columns(names, spec)
            result = import_labels(store, records, spec, now=now)
        finally:
            store.close()
        report.update(vars(result))
    except InputError as exc:
        status, code, report["error"] = "invalid_input", 2, str(exc)
    except StoreError as exc:
        status, code, report["error"] = "failed", 1, str(exc)
    except Exception as exc:  # noqa: BLE001 - reported as JSON, never a bare traceback
        status, code, report["error"] = (
            "failed",
            1,
            f"{type(exc).__name__}: {str(exc).splitlines()[0] if str(exc) else ''}",
        )
    report["status"] = status
    return _emit(report, args.report_file, code)


def _emit(report: dict[str, Any], report_file: str | None, code: int) -> int:
    emit(report, json.dumps(report, sort_keys=True), report_file=report_file, prog=PROG)
    return code
