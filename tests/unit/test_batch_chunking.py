"""Chunked input: bounded chunks from Parquet and CSV, and a column plan checked before any row."""

from __future__ import annotations

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelrollout.runtime.batch.readers import InputError, InputSpec, open_input, plan_columns


def _table(n: int) -> pa.Table:
    return pa.table(
        {"id": pa.array(range(n)), "f0": [float(i) for i in range(n)], "f1": [i % 3 for i in range(n)]}
    )


def _read(spec: InputSpec, **kw) -> tuple[list[pa.RecordBatch], object]:
    plan, chunks = open_input(spec, **kw)
    return list(chunks), plan


def test_parquet_is_read_in_chunks_no_larger_than_asked(tmp_path):
    path = tmp_path / "in.parquet"
    pq.write_table(_table(10_000), path, row_group_size=3_000)
    batches, plan = _read(InputSpec(path=str(path)), chunk_rows=1_024, key_columns=["id"])
    assert max(b.num_rows for b in batches) <= 1_024
    assert sum(b.num_rows for b in batches) == 10_000
    assert plan.features == ("f0", "f1")
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(10_000))


def test_a_directory_of_parquet_files_is_read_file_after_file(tmp_path):
    for i in range(3):
        pq.write_table(
            _table(100).set_column(0, "id", pa.array(range(i * 100, i * 100 + 100))),
            tmp_path / f"p{i}.parquet",
        )
    batches, _ = _read(InputSpec(path=str(tmp_path)), chunk_rows=64, key_columns=["id"])
    assert pa.Table.from_batches(batches).column("id").to_pylist() == list(range(300))


def test_csv_streams_in_chunks_with_text_keys_and_float_features(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,f0,f1\n" + "".join(f"{i:05d},{i},{i % 3}\n" for i in range(5_000)) + "99999,1.5,2\n")
    batches, plan = _read(InputSpec(path=str(path)), chunk_rows=700, key_columns=["id"])
    assert max(b.num_rows for b in batches) <= 700
    table = pa.Table.from_batches(batches)
    assert table.num_rows == 5_001
    assert table.column("id")[7].as_py() == "00007"  # keys pass through as written, zeros and all
    assert table.schema.field("f0").type == pa.float64()  # the late 1.5 parses
    assert plan.schema.field("id").type == pa.string()


def test_key_type_override_reads_csv_keys_as_integers(tmp_path):
    path = tmp_path / "in.csv"
    path.write_text("id,f0\n1,0.5\n2,0.25\n")
    batches, _ = _read(InputSpec(path=str(path)), chunk_rows=10, key_columns=["id"], key_types={"id": "int"})
    assert batches[0].column("id").type == pa.int64()
    assert batches[0].column("id").to_pylist() == [1, 2]


def test_explicit_feature_columns_select_and_order_the_features():
    schema = _table(1).schema
    plan = plan_columns(schema, key_columns=["id"], feature_columns=["f1", "f0"])
    assert plan.features == ("f1", "f0")


@pytest.mark.parametrize(
    ("schema", "keys", "features", "message"),
    [
        (
            pa.schema([("user", pa.string()), ("f0", pa.float64())]),
            ["id"],
            None,
            r"no key column\(s\) \['id'\]",
        ),
        (
            pa.schema([("id", pa.float64()), ("f0", pa.float64())]),
            ["id"],
            None,
            "keys must be integers or strings",
        ),
        (
            pa.schema([("id", pa.int64()), ("f0", pa.string())]),
            ["id"],
            None,
            "feature column 'f0' has type string",
        ),
        (pa.schema([("id", pa.int64())]), ["id"], None, "no feature columns"),
        (
            pa.schema([("id", pa.int64()), ("f0", pa.float64())]),
            ["id"],
            ["f9"],
            r"no feature column\(s\) \['f9'\]",
        ),
        (pa.schema([("prediction", pa.int64()), ("f0", pa.float64())]), ["prediction"], None, "reserved"),
    ],
)
def test_bad_column_plans_are_refused_with_a_message_naming_the_column(schema, keys, features, message):
    with pytest.raises(InputError, match=message):
        plan_columns(schema, key_columns=keys, feature_columns=features)


def test_empty_and_missing_files_are_refused_before_reading(tmp_path):
    empty = tmp_path / "empty.csv"
    empty.write_text("")
    with pytest.raises(InputError, match="is empty"):
        open_input(InputSpec(path=str(empty)), chunk_rows=10, key_columns=["id"])
    with pytest.raises(InputError, match="does not exist"):
        open_input(InputSpec(path=str(tmp_path / "nope.parquet")), chunk_rows=10, key_columns=["id"])
    (tmp_path / "sub").mkdir()
    with pytest.raises(InputError, match="holds no"):
        open_input(InputSpec(path=str(tmp_path / "sub")), chunk_rows=10, key_columns=["id"])
    weird = tmp_path / "in.txt"
    weird.write_text("id\n1\n")
    with pytest.raises(InputError, match="--format"):
        open_input(InputSpec(path=str(weird)), chunk_rows=10, key_columns=["id"])


def test_a_bad_value_deep_in_a_csv_fails_while_streaming_with_a_clear_error(tmp_path):
    path = tmp_path / "in.csv"
    rows = "".join(f"{i},{i * 0.5}\n" for i in range(500_000))  # past the first 4 MB block
    path.write_text("id,f0\n" + rows + "500000,not-a-number\n")
    plan, chunks = open_input(InputSpec(path=str(path)), chunk_rows=50_000, key_columns=["id"])
    assert plan.features == ("f0",)
    with pytest.raises(InputError, match="not-a-number"):
        for _ in chunks:
            pass
