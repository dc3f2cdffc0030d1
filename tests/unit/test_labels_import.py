"""`modelrollout-batch labels import`: a day of ground truth at once, by request id or by key + time."""

from __future__ import annotations

import json

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelrollout.runtime.batch.cli import main
from modelrollout.runtime.batch.labels import ImportSpec, label_row, parse_duration, parse_time
from modelrollout.runtime.batch.readers import InputError
from modelrollout.runtime.ground_truth.records import Origin, records
from modelrollout.runtime.store.factory import open_log_store

T0 = 1_800_000_000.0  # predictions are logged at T0; labels arrive hours later
HOUR = 3600.0


@pytest.fixture
def store_url(tmp_path):
    url = f"sqlite:///{tmp_path}/log.sqlite"
    with open_log_store(url, wait_timeout_s=5.0) as store:
        store.log_predictions(
            records("r1", ["setosa", "virginica"], origin=Origin("iris", "v1", "stable"), ts=T0)
        )
        store.log_predictions(records("r2", ["yes", "no"], origin=Origin("risk", "v1", "stable"), ts=T0,
                                      keys=["user-1", "user-2"]))  # fmt: skip
        store.log_predictions(records("r3", ["no"], origin=Origin("risk", "v1", "stable"), ts=T0 + 2 * HOUR,
                                      keys=["user-1"]))  # fmt: skip
    return url


def run(capsys, *args: str) -> tuple[int, dict]:
    code = main(["labels", "import", *args])
    return code, json.loads(capsys.readouterr().out.strip().splitlines()[-1])


def pairs(url: str, model: str) -> list[tuple[str, str, int]]:
    with open_log_store(url, wait_timeout_s=5.0) as store:
        return store.label_pairs(model=model, version="v1", since=0)


def test_labels_by_request_id_from_csv_count_each_outcome(tmp_path, store_url, capsys):
    path = tmp_path / "labels.csv"
    path.write_text(
        "request_id,row,label\nr1,0,setosa\nr1,1,setosa\nr1,0,virginica\nnope,0,x\nr1,-1,x\n,0,x\nr1,0,\n"
    )
    code, report = run(capsys, "--input", str(path), "--by", "request_id", "--store", store_url)
    assert code == 0 and report["status"] == "ok"
    assert {k: report[k] for k in ("read", "accepted", "duplicate", "unknown", "invalid")} == {
        "read": 7, "accepted": 2, "duplicate": 1, "unknown": 1, "invalid": 3,
    }  # fmt: skip
    assert any("row '-1'" in reason for reason in report["invalid_examples"])
    assert pairs(store_url, "iris") == [("setosa", "setosa", 1), ("virginica", "setosa", 1)]
    code, again = run(capsys, "--input", str(path), "--by", "request_id", "--store", store_url)
    assert (again["accepted"], again["duplicate"]) == (0, 3)  # a re-run counts nothing twice


def test_labels_by_key_join_the_latest_prediction_at_or_before_their_time(tmp_path, store_url, capsys):
    """Labels hours later: each goes to the key's prediction served before it, within the lag."""
    table = pa.table({
        "user_id": ["user-1", "user-1", "user-2", "user-2", "user-9"],
        "closed_at": [T0 + 1 * HOUR, T0 + 5 * HOUR, T0 + 30 * HOUR, T0 - HOUR, T0 + HOUR],
        "fraud": ["yes", "no", "no", "no", "yes"],
    })  # fmt: skip
    path = tmp_path / "cases.parquet"
    pq.write_table(table, path)
    code, report = run(capsys, "--input", str(path), "--by", "key", "--key-column", "user_id",
                       "--time-column", "closed_at", "--label-column", "fraud", "--max-lag", "1d",
                       "--store", store_url)  # fmt: skip
    assert code == 0, report
    # user-1 @+1h -> r2 row 0 (the +2h prediction is later); @+5h -> r3; user-2 @+30h: beyond 1d;
    # user-2 @-1h: before any prediction; user-9: never predicted.
    assert (report["accepted"], report["duplicate"], report["unknown"]) == (2, 0, 3)
    assert pairs(store_url, "risk") == [("no", "no", 1), ("yes", "yes", 1)]


def test_labels_by_key_can_be_restricted_to_one_model(tmp_path, store_url, capsys):
    path = tmp_path / "cases.csv"
    path.write_text(f"key,label,t\nuser-1,yes,{T0 + HOUR}\n")
    code, report = run(capsys, "--input", str(path), "--by", "key", "--time-column", "t", "--model", "iris",
                       "--store", store_url)  # fmt: skip
    assert code == 0 and report["unknown"] == 1 and report["accepted"] == 0


def test_labels_from_a_query_on_the_store(store_url, capsys):
    sql = "SELECT request_id, row, prediction AS label FROM modelrollout_predictions WHERE model = 'iris'"
    code, report = run(
        capsys, "--input-sql", sql, "--format", "sql", "--by", "request_id", "--store", store_url
    )
    assert code == 0 and report["accepted"] == 2
    assert pairs(store_url, "iris") == [("setosa", "setosa", 1), ("virginica", "virginica", 1)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--by", "key"], "--by key needs --time-column"),
        (["--by", "request_id", "--label-column", "truth"], "no column(s) ['truth']"),
        (["--by", "request_id", "--max-lag", "soon"], "invalid duration 'soon'"),
        (["--by", "request_id", "--now", "yesterday"], "--now 'yesterday'"),
        (["--by", "request_id", "--store", "mysql://db"], "unknown scheme"),
    ],
)
def test_bad_input_exits_2_with_the_reason_and_imports_nothing(tmp_path, store_url, capsys, args, message):
    path = tmp_path / "labels.csv"
    path.write_text("request_id,row,label\nr1,0,setosa\n")
    store = [] if "--store" in args else ["--store", store_url]
    code, report = run(capsys, "--input", str(path), *store, *args)
    assert code == 2 and report["status"] == "invalid_input" and message in report["error"]
    assert pairs(store_url, "iris") == []


def test_no_store_configured_is_bad_input(tmp_path, capsys, monkeypatch):
    for var in ("MODELROLLOUT_GROUND_TRUTH_DSN", "MODELROLLOUT_STORE_DSN"):
        monkeypatch.delenv(var, raising=False)
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nr1,setosa\n")
    code, report = run(capsys, "--input", str(path), "--by", "request_id")
    assert code == 2 and "no store" in report["error"]


def test_the_store_defaults_to_the_ground_truth_dsn(tmp_path, store_url, capsys, monkeypatch):
    monkeypatch.setenv("MODELROLLOUT_GROUND_TRUTH_DSN", store_url)
    path = tmp_path / "labels.csv"
    path.write_text("request_id,label\nr1,setosa\n")  # no row column: row 0
    code, report = run(capsys, "--input", str(path), "--by", "request_id")
    assert code == 0 and report["accepted"] == 1


@pytest.mark.parametrize(
    ("text", "seconds"), [("7d", 604800), ("24h", 86400), ("30m", 1800), ("90", 90), ("1.5h", 5400)]
)
def test_durations(text, seconds):
    assert parse_duration(text) == seconds


@pytest.mark.parametrize(
    ("value", "expected"),
    [(1700000000, 1700000000.0), ("1700000000.5", 1700000000.5), ("2023-11-14T22:13:20Z", 1700000000.0),
     ("2023-11-14T22:13:20", 1700000000.0), ("2023-11-14T23:13:20+01:00", 1700000000.0), ("later", None),
     (None, None), (float("nan"), None), (True, None)],
)  # fmt: skip
def test_label_times(value, expected):
    assert parse_time(value) == expected


def test_a_label_row_says_why_it_is_invalid():
    spec = ImportSpec(by="request_id")
    assert label_row({"request_id": "r", "label": "a"}, spec, seq=1, now=5.0) == (1, "r", 0, "a", 5.0, None)
    assert label_row({"request_id": "r", "label": 1.5, "row": "2"}, spec, seq=2, now=5.0)[2:4] == (2, "1.5")
    assert "no label" in label_row({"request_id": "r"}, spec, seq=3, now=0)
    assert "visible ASCII" in label_row({"request_id": "a b", "label": "x"}, spec, seq=4, now=0)
    assert "characters" in label_row({"request_id": "r", "label": "x" * 5000}, spec, seq=5, now=0)
    with pytest.raises(InputError):
        parse_duration("-1d")
