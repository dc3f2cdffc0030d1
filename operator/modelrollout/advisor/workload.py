"""Read a request log into per-key request counts and the time span it covers.

A request log is a CSV (optionally compressed: .csv.gz, .csv.bz2), a TSV, a Parquet file or a
plain text file with one key per line. Only the key column(s) and the optional timestamp column
are read, in record batches: each batch is reduced to (key, count) pairs at once and the partial
counts are merged whenever they grow large, so memory is bounded by the number of distinct keys,
not by the length of the log (10^7 rows count in a few seconds).

Keys in CSV/text are read as strings (an identifier is not a number: "007" and "7" differ);
Parquet keys keep their type. Rows whose key is null are counted and left out.
Timestamps only give the span of the log, hence the request rate (see `timestamps`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.timestamps import epoch_range

DEFAULT_KEY_COLUMN = "key"
_CSV_BLOCK_BYTES = 32 << 20
_PARQUET_BATCH_ROWS = 1 << 20
# merge partial (key, count) tables once they hold this many rows, to bound memory
_MERGE_ROWS = 4_000_000
_COUNT = "n"


@dataclass(frozen=True)
class KeyCounts:
    """What the advisor needs from a request log; `keys` rows align with `counts`."""

    keys: pa.Table
    counts: np.ndarray
    key_columns: tuple[str, ...]
    total_requests: int
    rows_without_key: int
    first_timestamp: float | None
    last_timestamp: float | None
    mean_key_bytes: float

    @property
    def distinct_keys(self) -> int:
        return int(self.counts.size)

    @property
    def span_seconds(self) -> float | None:
        """Seconds between the first and last request, None without timestamps."""
        if self.first_timestamp is None or self.last_timestamp is None:
            return None
        return self.last_timestamp - self.first_timestamp


def read_log(
    path: str | Path, *, key_columns: Sequence[str] | None = None, timestamp_column: str | None = None
) -> KeyCounts:
    """Count requests per key (composite keys: several columns) in the log at `path`."""
    path = Path(path)
    fmt = _detect_format(path)
    names = _column_names(path, fmt)
    keys = _resolve_key_columns(path, names, key_columns=key_columns, timestamp_column=timestamp_column)
    if timestamp_column is not None and timestamp_column not in names:
        raise AdvisorError(
            f"log {path} has no timestamp column {timestamp_column!r}; columns: {', '.join(names)}"
        )
    partials: list[pa.Table] = []
    partial_rows = total = without_key = 0
    first = last = None
    try:
        for batch in _batches(path, fmt, keys=keys, timestamp_column=timestamp_column):
            table = pa.Table.from_batches([batch])
            key_table = _plain(table.select(keys))
            present = key_table.drop_null()
            total += present.num_rows
            without_key += key_table.num_rows - present.num_rows
            if timestamp_column is not None:
                span = epoch_range(table.column(timestamp_column), column=timestamp_column)
                if span is not None:
                    first = span[0] if first is None else min(first, span[0])
                    last = span[1] if last is None else max(last, span[1])
            if present.num_rows:
                partials.append(
                    present.group_by(keys).aggregate([([], "count_all")]).rename_columns([*keys, _COUNT])
                )
                partial_rows += partials[-1].num_rows
            if partial_rows > _MERGE_ROWS and len(partials) > 1:
                partials = [_merge(partials, keys)]
                partial_rows = partials[0].num_rows
    except (pa.ArrowException, OSError) as err:
        raise AdvisorError(f"cannot read log {path} as {fmt}: {_first_line(err)}") from err
    if total == 0:
        detail = f" ({without_key} rows, all without a key)" if without_key else ""
        raise AdvisorError(f"log {path} has no requests{detail}")
    merged = _merge(partials, keys) if len(partials) > 1 else partials[0]
    distinct = merged.select(keys)
    return KeyCounts(
        keys=distinct,
        counts=merged.column(_COUNT).to_numpy().astype(np.int64, copy=False),
        key_columns=tuple(keys),
        total_requests=total,
        rows_without_key=without_key,
        first_timestamp=first,
        last_timestamp=last,
        mean_key_bytes=_mean_key_bytes(distinct),
    )


def head_keys(counts: KeyCounts, k: int) -> pa.Table:
    """The `k` most requested keys with their request counts, most requested first."""
    k = max(0, min(int(k), counts.distinct_keys))
    order = np.argsort(-counts.counts, kind="stable")[:k]
    head = counts.keys.take(pa.array(order))
    return head.append_column("requests", pa.array(counts.counts[order]))


def _detect_format(path: Path) -> str:
    if not path.exists():
        raise AdvisorError(f"cannot read log {path}: no such file")
    if path.is_dir():
        raise AdvisorError(f"cannot read log {path}: it is a directory")
    suffixes = [s.lower() for s in path.suffixes]
    if suffixes and suffixes[-1] in (".parquet", ".pq"):
        return "parquet"
    if suffixes and suffixes[-1] in (".txt", ".keys"):
        return "text"
    if ".tsv" in suffixes:
        return "tsv"
    try:
        with path.open("rb") as stream:
            magic = stream.read(4)
    except OSError as err:
        raise AdvisorError(f"cannot read log {path}: {err.strerror or err}") from err
    return "parquet" if magic == b"PAR1" else "csv"


def _column_names(path: Path, fmt: str) -> list[str]:
    try:
        if fmt == "parquet":
            import pyarrow.parquet as pq

            return list(pq.ParquetFile(path).schema_arrow.names)
        if fmt == "text":
            return [DEFAULT_KEY_COLUMN]
        import pyarrow.csv as pcsv

        reader = pcsv.open_csv(
            path, read_options=pcsv.ReadOptions(block_size=1 << 16), parse_options=_csv_parse(fmt)
        )
        return list(reader.schema.names)
    except (pa.ArrowException, OSError) as err:
        raise AdvisorError(f"cannot read log {path} as {fmt}: {_first_line(err)}") from err


def _resolve_key_columns(
    path: Path, names: list[str], *, key_columns: Sequence[str] | None, timestamp_column: str | None
) -> list[str]:
    if key_columns:
        keys = list(key_columns)
        if len(set(keys)) != len(keys):
            raise AdvisorError(f"key columns repeat a name: {', '.join(keys)}")
        missing = [k for k in keys if k not in names]
        if missing:
            raise AdvisorError(f"log {path} has no key column {missing[0]!r}; columns: {', '.join(names)}")
        if timestamp_column in keys:
            raise AdvisorError(f"column {timestamp_column!r} cannot be both a key and the timestamp")
        return keys
    if DEFAULT_KEY_COLUMN in names:
        return [DEFAULT_KEY_COLUMN]
    others = [n for n in names if n != timestamp_column]
    if len(others) == 1:
        return others
    raise AdvisorError(
        f"log {path} has no {DEFAULT_KEY_COLUMN!r} column: name the key with --key-column; columns: {', '.join(names)}"
    )


def _batches(
    path: Path, fmt: str, *, keys: list[str], timestamp_column: str | None
) -> Iterator[pa.RecordBatch]:
    columns = [*keys, *([timestamp_column] if timestamp_column else [])]
    if fmt == "parquet":
        import pyarrow.parquet as pq

        yield from pq.ParquetFile(path).iter_batches(batch_size=_PARQUET_BATCH_ROWS, columns=columns)
        return
    import pyarrow.csv as pcsv

    read = pcsv.ReadOptions(
        block_size=_CSV_BLOCK_BYTES, column_names=[DEFAULT_KEY_COLUMN] if fmt == "text" else None
    )
    # an empty field is a missing key; "NA", "null" and the like are keys like any other
    convert = pcsv.ConvertOptions(
        include_columns=columns,
        column_types={k: pa.string() for k in keys},
        null_values=[""],
        strings_can_be_null=True,
    )
    yield from pcsv.open_csv(path, read_options=read, parse_options=_csv_parse(fmt), convert_options=convert)


def _csv_parse(fmt: str):
    import pyarrow.csv as pcsv

    if fmt == "tsv":
        return pcsv.ParseOptions(delimiter="\t")
    if fmt == "text":  # one key per line: no delimiter, no quoting
        return pcsv.ParseOptions(delimiter="\x1f", quote_char=False)
    return pcsv.ParseOptions()


def _plain(table: pa.Table) -> pa.Table:
    """Key columns with dictionary encoding removed and CSV-inferred types turned into strings."""
    columns = []
    for column in table.columns:
        if pa.types.is_dictionary(column.type):
            column = column.cast(column.type.value_type)
        columns.append(column)
    return pa.table(columns, names=table.column_names)


def _merge(partials: list[pa.Table], keys: list[str]) -> pa.Table:
    merged = pa.concat_tables(partials).group_by(keys).aggregate([(_COUNT, "sum")])
    return merged.rename_columns([*keys, _COUNT])


def _mean_key_bytes(keys: pa.Table) -> float:
    """Mean stored size of a key: string/binary lengths, fixed widths, one separator between parts."""
    if keys.num_rows == 0:
        return 0.0
    total = float(keys.num_columns - 1)
    for column in keys.columns:
        kind = column.type
        if pa.types.is_integer(kind) or pa.types.is_floating(kind) or pa.types.is_temporal(kind):
            total += kind.bit_width / 8
            continue
        if not (pa.types.is_string(kind) or pa.types.is_large_string(kind) or pa.types.is_binary(kind)):
            column = column.cast(pa.string())
        total += float(pc.sum(pc.binary_length(column)).as_py() or 0) / keys.num_rows
    return total


def _first_line(err: BaseException) -> str:
    text = str(err).strip() or type(err).__name__
    return text.splitlines()[0]
