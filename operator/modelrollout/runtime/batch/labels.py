"""Bulk ground truth: labels from a CSV/Parquet file or a SQL query, joined to the shared prediction log.

Two ways to say which prediction a label judges:

``by="request_id"``  the ``request_id`` the service returned and the ``row`` (default 0, or when the
    input has no row column);
``by="key"``  the lookup key and the label's time: the label goes to the latest prediction logged
    for that key at or before that time, at most ``max_lag_s`` earlier (of ``model`` only, if
    given). A fraud case closed today judges the score served when the payment was made.

The same rules as ``/feedback``: the first label of a prediction wins (a second one, from
``/feedback``, an earlier import or the same file, is a ``duplicate`` and changes nothing); a label
for no logged prediction is ``unknown`` (counted, reported, not stored). A row that cannot be a
label at all (no label, an id or row that cannot be, an unreadable time) is ``invalid``; the
first few reasons are reported. Labels are imported in chunks, one transaction each.
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import pyarrow as pa
import pyarrow.csv as pacsv

from ..ground_truth.records import key_text
from ..requestid import validate_request_id
from .readers import CSV_BLOCK_BYTES, InputError, InputSpec, input_files, parquet_file

By = Literal["request_id", "key"]
MAX_LABEL_CHARS = 4096
EXAMPLES = 5
_DURATION = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$")
_UNITS = {"": 1, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_duration(text: str) -> float:
    """``7d``, ``24h``, ``30m``, ``90s``, ``1.5h`` or plain seconds -> seconds; InputError otherwise."""
    match = _DURATION.match(text or "")
    if not match:
        raise InputError(f"invalid duration {text!r}: write e.g. 7d, 24h, 30m or 90s")
    return float(match.group(1)) * _UNITS[match.group(2)]


def parse_time(value: Any) -> float | None:
    """A label's time as Unix seconds: a number (seconds), a datetime (naive = UTC) or ISO-8601 text."""
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, datetime):
        return (value if value.tzinfo else value.replace(tzinfo=UTC)).timestamp()
    if isinstance(value, (int, float)):
        return float(value) if math.isfinite(value) else None
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        try:
            return parse_time(datetime.fromisoformat(text))
        except ValueError:
            return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class ImportSpec:
    by: By
    label_column: str = "label"
    request_id_column: str = "request_id"
    row_column: str = "row"
    key_column: str = "key"
    time_column: str | None = None
    max_lag_s: float = 7 * 86400.0
    model: str | None = None
    chunk_rows: int = 10_000

    def required(self) -> list[str]:
        names = [self.label_column, self.request_id_column if self.by == "request_id" else self.key_column]
        return names + ([self.time_column] if self.time_column else [])


@dataclass
class ImportReport:
    read: int = 0
    accepted: int = 0
    duplicate: int = 0
    unknown: int = 0
    invalid: int = 0
    invalid_examples: list[str] = field(default_factory=list)

    def add_invalid(self, reason: str) -> None:
        self.invalid += 1
        if len(self.invalid_examples) < EXAMPLES:
            self.invalid_examples.append(reason)


def check_columns(names: Sequence[str], spec: ImportSpec) -> None:
    """InputError naming what is missing, before any label is read."""
    if spec.by == "key" and not spec.time_column:
        raise InputError(
            "--by key needs --time-column: a label joins the prediction made at or before its time"
        )
    if spec.max_lag_s < 0:
        raise InputError("--max-lag must not be negative")
    missing = [c for c in spec.required() if c not in names]
    if missing:
        raise InputError(f"input has no column(s) {missing}; its columns are {list(names)}")


def label_row(record: dict[str, Any], spec: ImportSpec, *, seq: int, now: float) -> tuple | str:
    """The row for the store (seq, request_id, row, label, ts, key), or why the record is invalid."""
    label = record.get(spec.label_column)
    if label is None or (text := label if isinstance(label, str) else str(label)) == "":
        return "no label"
    if len(text) > MAX_LABEL_CHARS:
        return f"label of {len(text)} characters (at most {MAX_LABEL_CHARS})"
    ts = now
    if spec.time_column:
        ts = parse_time(record.get(spec.time_column))  # type: ignore[assignment]
        if ts is None:
            return f"unreadable time {str(record.get(spec.time_column))[:40]!r}"
    if spec.by == "key":
        key = key_text(record.get(spec.key_column))
        return f"no key in {spec.key_column!r}" if key is None else (seq, None, None, text, ts, key)
    request_id, row = record.get(spec.request_id_column), record.get(spec.row_column, 0)
    try:
        validate_request_id(request_id if isinstance(request_id, str) else str(request_id or ""))
    except ValueError as exc:
        return f"request id {str(request_id)[:40]!r}: {exc}"
    row = 0 if row is None else row
    if (
        isinstance(row, bool)
        or not isinstance(row, (int, str))
        or not str(row).isdigit()
        or int(row) > 2**31 - 1
    ):
        return f"row {str(row)[:20]!r} is not a non-negative integer"
    return (seq, str(request_id), int(row), text, ts, None)


def import_labels(
    store: Any, records: Iterable[dict[str, Any]], spec: ImportSpec, *, now: float
) -> ImportReport:
    """Validate and join every record, ``spec.chunk_rows`` at a time; the report counts each outcome."""
    report = ImportReport()
    chunk: list[tuple] = []

    def flush() -> None:
        counts = store.import_labels(
            chunk, by_key=spec.by == "key", max_lag_s=spec.max_lag_s, model=spec.model
        )
        report.accepted += counts.accepted
        report.duplicate += counts.duplicate
        report.unknown += counts.unknown
        chunk.clear()

    for record in records:
        report.read += 1
        row = label_row(record, spec, seq=report.read, now=now)
        if isinstance(row, str):
            report.add_invalid(f"record {report.read}: {row}")
            continue
        chunk.append(row)
        if len(chunk) >= spec.chunk_rows:
            flush()
    if chunk:
        flush()
    return report


def read_records(
    source: InputSpec, *, store: Any, chunk_rows: int
) -> tuple[list[str], Iterator[dict[str, Any]]]:
    """(column names, records) of a CSV/Parquet file (or directory of them) or a query on ``store``.
    CSV columns are read as text (an id like ``007`` stays ``007``)."""
    if source.sql:
        try:
            names, chunks = store.iter_query(source.sql, chunk_rows=chunk_rows)
        except Exception as exc:  # noqa: BLE001 - driver errors differ per store
            raise InputError(f"input query failed: {exc}") from exc
        return list(names), (dict(zip(names, row, strict=True)) for rows in chunks for row in rows)
    if not source.path:
        raise InputError("no input given: pass --input PATH or --input-sql QUERY")
    files, fmt = input_files(source.path, source.format)
    batches = _parquet_batches(files, chunk_rows) if fmt == "parquet" else _csv_batches(files)
    schema = next(batches)
    return list(schema.names), (record for batch in batches for record in batch.to_pylist())


def _parquet_batches(files: list[Path], chunk_rows: int) -> Iterator[Any]:
    try:
        readers = [parquet_file(f) for f in files]
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read Parquet input: {exc}") from exc
    yield readers[0].schema_arrow
    for f, reader in zip(files, readers, strict=True):
        try:
            yield from reader.iter_batches(batch_size=chunk_rows)
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read {f}: {exc}") from exc


def _csv_batches(files: list[Path]) -> Iterator[Any]:
    read = pacsv.ReadOptions(block_size=CSV_BLOCK_BYTES)
    try:
        with pacsv.open_csv(files[0], read_options=read) as probe:
            names = probe.schema.names
    except (pa.ArrowInvalid, OSError) as exc:
        raise InputError(f"cannot read CSV {files[0]}: {exc}") from exc
    yield pa.schema([pa.field(n, pa.string()) for n in names])
    convert = pacsv.ConvertOptions(column_types=dict.fromkeys(names, pa.string()), strings_can_be_null=True)
    for f in files:
        try:
            with pacsv.open_csv(f, read_options=read, convert_options=convert) as reader:
                if reader.schema.names != names:
                    raise InputError(f"{f} has columns {reader.schema.names}, {files[0]} has {names}")
                yield from reader
        except (pa.ArrowInvalid, OSError) as exc:
            raise InputError(f"cannot read CSV {f}: {exc}") from exc
