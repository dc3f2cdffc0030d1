"""Reading request logs into key counts, and rejecting logs that cannot be read."""

from __future__ import annotations

import gzip

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelrollout.advisor import workload
from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.workload import head_keys, read_log


def as_dict(counts) -> dict:
    rows = counts.keys.to_pylist()
    return {
        tuple(r.values()) if len(r) > 1 else next(iter(r.values())): int(n)
        for r, n in zip(rows, counts.counts, strict=True)
    }


def test_csv_composite_keys_are_counted_and_keyless_rows_left_out(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text(
        "user,item,ts\n"
        "1,a,2024-01-01T00:00:00\n"
        "1,a,2024-01-01T01:00:00\n"
        "007,NA,2024-01-01T02:00:00\n"
        "7,NA,2024-01-01T00:30:00\n"
        ",b,2024-01-01T00:10:00\n"
    )
    counts = read_log(log, key_columns=["user", "item"], timestamp_column="ts")
    # keys are identifiers: "007" is not 7, "NA" is a key, an empty field is a missing key
    assert as_dict(counts) == {("1", "a"): 2, ("007", "NA"): 1, ("7", "NA"): 1}
    assert counts.total_requests == 4 and counts.rows_without_key == 1
    assert counts.span_seconds == 2 * 3600
    assert counts.mean_key_bytes == pytest.approx((2 + 5 + 3) / 3 + 1)


def test_single_other_column_is_the_key_and_epoch_milliseconds_are_recognised(tmp_path):
    log = tmp_path / "log.csv"
    log.write_text("customer,ts\nx,1700000000000\ny,1700000360000\nx,1700000180000\n")
    counts = read_log(log, timestamp_column="ts")
    assert counts.key_columns == ("customer",)
    assert as_dict(counts) == {"x": 2, "y": 1}
    assert counts.first_timestamp == 1_700_000_000.0 and counts.span_seconds == 360.0


def test_parquet_keeps_key_types_and_reads_timestamps(tmp_path):
    log = tmp_path / "log.parquet"
    stamps = pa.array([0, 30, 90, 45], type=pa.timestamp("s", tz="UTC"))
    pq.write_table(pa.table({"key": [5, 5, 6, None], "at": stamps}), log)
    counts = read_log(log, timestamp_column="at")
    assert as_dict(counts) == {5: 2, 6: 1}
    assert counts.rows_without_key == 1 and counts.span_seconds == 90.0
    assert counts.mean_key_bytes == 8.0


def test_plain_key_list_and_compressed_csv(tmp_path):
    text = tmp_path / "keys.txt"
    text.write_text('a,b\n"q"\na,b\n\n')
    assert as_dict(read_log(text)) == {"a,b": 2, '"q"': 1}
    packed = tmp_path / "log.csv.gz"
    packed.write_bytes(gzip.compress(b"key\nu\nv\nu\n"))
    counts = read_log(packed)
    assert as_dict(counts) == {"u": 2, "v": 1} and counts.span_seconds is None


def test_streamed_counts_equal_a_direct_count(tmp_path, monkeypatch):
    # tiny blocks and merge threshold force many batches and several merges of partial counts
    monkeypatch.setattr(workload, "_CSV_BLOCK_BYTES", 4096)
    monkeypatch.setattr(workload, "_MERGE_ROWS", 500)
    keys = np.random.default_rng(5).zipf(1.3, size=50_000) % 3000
    log = tmp_path / "log.csv"
    log.write_text("key\n" + "\n".join(map(str, keys)) + "\n")
    counts = read_log(log)
    distinct, expected = np.unique(keys.astype(str), return_counts=True)
    assert as_dict(counts) == dict(zip(distinct.tolist(), expected.tolist(), strict=True))
    top = head_keys(counts, 3)
    assert top.column("requests").to_pylist() == sorted(expected, reverse=True)[:3]


@pytest.mark.parametrize(
    ("content", "kwargs", "message"),
    [
        ("", {}, "cannot read log"),
        ("key,ts\n", {}, "has no requests"),
        ("key\n\n", {}, "has no requests"),
        ("id,other\n1,2\n", {"key_columns": ["key"]}, "has no key column 'key'; columns: id, other"),
        ("id,other,third\n1,2,3\n", {}, "name the key with --key-column"),
        ("key,ts\n1,yesterday\n", {"timestamp_column": "ts"}, "timestamp column 'ts'"),
        ("key\n1\n", {"timestamp_column": "when"}, "no timestamp column 'when'"),
        ("key,a\n1,2\n3,4,5\n", {}, "cannot read log"),
        ("key,ts\n1,1\n", {"key_columns": ["key", "key"]}, "repeat"),
    ],
    ids=[
        "empty",
        "header-only",
        "no-rows",
        "missing-key",
        "ambiguous-key",
        "bad-timestamps",
        "missing-timestamp",
        "ragged",
        "repeated-key",
    ],  # fmt: skip
)
def test_bad_logs_are_rejected_with_a_clear_message(tmp_path, content, kwargs, message):
    log = tmp_path / "log.csv"
    log.write_text(content)
    with pytest.raises(AdvisorError, match=message):
        read_log(log, **kwargs)


def test_unreadable_files_are_rejected(tmp_path):
    with pytest.raises(AdvisorError, match="no such file"):
        read_log(tmp_path / "absent.csv")
    with pytest.raises(AdvisorError, match="is a directory"):
        read_log(tmp_path)
    corrupt = tmp_path / "log.parquet"
    corrupt.write_bytes(b"PAR1" + bytes(range(256)) * 4)
    with pytest.raises(AdvisorError, match="cannot read log .* as parquet"):
        read_log(corrupt)
