"""`modelrollout advise` through argparse: output, files written, exit codes on bad input."""

from __future__ import annotations

import argparse
import json

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from modelrollout.cli import advise_cmd

DAY = 86_400


def advise(*argv: str) -> int:
    parser = argparse.ArgumentParser(prog="modelrollout")
    advise_cmd.register(parser.add_subparsers(dest="command", required=True))
    args = parser.parse_args(["advise", *argv])
    return args.func(args)


@pytest.fixture(scope="module")
def zipf_log(tmp_path_factory):
    """One day of Zipf(1.1) traffic over 10^5 keys, as Parquet with string keys and timestamps."""
    rng = np.random.default_rng(11)
    p = np.arange(1, 10**5 + 1, dtype=float) ** -1.1
    keys = rng.choice(10**5, size=3 * 10**5, p=p / p.sum())
    stamps = np.sort(rng.integers(0, DAY, size=keys.size)) + 1_700_000_000
    path = tmp_path_factory.mktemp("logs") / "requests.parquet"
    table = pa.table({"user": pa.array(keys.astype(str)), "at": pa.array(stamps, type=pa.int64())})
    pq.write_table(table, path)
    return path


def test_text_report_plot_and_head_keys(zipf_log, tmp_path, capsys):
    plot, head = tmp_path / "coverage.png", tmp_path / "head.csv"
    code = advise(
        str(zipf_log), "--key-column", "user", "--timestamp-column", "at", "--staleness-hours", "2",
        "--plot", str(plot), "--head-keys-out", str(head),
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0
    assert "Recommendation: HYBRID" in out
    for row in (
        "storage GB",
        "compute $/day",
        "latency p99 ms",
        "max age of answer h",
        "top 1% of keys serve",
        "top 1 key serve",
        "top 1,000 keys serve",
    ):
        assert row in out
    assert "timestamps (" in out and "How k is chosen:" in out
    assert f"wrote plot: {plot}" in out and plot.read_bytes().startswith(b"\x89PNG")
    k = int(out.split("head size k = ")[1].split(" keys")[0].replace(",", ""))
    lines = head.read_text().splitlines()
    assert lines[0] == '"user","requests"' and len(lines) == k + 1
    assert lines[1].startswith('"0",')  # the most requested key of a Zipf workload is rank 0


def test_json_output_carries_the_recommendation_and_its_status_form(zipf_log, capsys):
    code = advise(
        str(zipf_log), "--key-column", "user", "--timestamp-column", "at", "--staleness-hours", "2", "--json"
    )
    document = json.loads(capsys.readouterr().out)
    assert code == 0
    assert document["recommendation"]["mode"] == "hybrid" == document["status"]["mode"]
    assert document["status"]["headSize"] == document["recommendation"]["head_size"] > 0
    assert {e["mode"] for e in document["recommendation"]["estimates"]} == {"static", "dynamic", "hybrid"}
    assert document["recommendation"]["workload"]["requests_per_day"] == pytest.approx(3e5, rel=0.01)


def test_json_of_impossible_modes_is_strict_json(tmp_path, capsys):
    log = tmp_path / "keys.txt"
    log.write_text("a\nb\na\n")
    assert advise(str(log), "--staleness-hours", "0", "--json") == 0

    def reject(constant):
        raise AssertionError(f"not JSON: {constant}")

    document = json.loads(capsys.readouterr().out, parse_constant=reject)
    static = next(e for e in document["recommendation"]["estimates"] if e["mode"] == "static")
    assert static["feasible"] is False and static["total_cost_per_day"] is None
    assert document["status"]["mode"] == "dynamic"


def test_model_is_measured_on_a_sample(tmp_path, capsys):
    log = tmp_path / "keys.txt"
    log.write_text("\n".join(str(i % 20) for i in range(2000)) + "\n")
    sample = tmp_path / "sample.csv"
    sample.write_text("a,b\n" + "".join(f"{i},{i * 2}\n" for i in range(40)))
    code = advise(
        str(log), "--model", "json:dumps", "--model-sample", str(sample), "--model-sample-rows", "30"
    )
    out = capsys.readouterr().out
    assert code == 0 and "measured on 30 samples" in out
    assert "Recommendation: STATIC" in out


@pytest.mark.parametrize(
    ("setup", "flags", "message"),
    [
        ("empty", [], "cannot read log"),
        ("header", [], "has no requests"),
        ("good", ["--key-column", "customer"], "has no key column 'customer'"),
        ("corrupt", [], "as parquet"),
        ("absent", [], "no such file"),
        (
            "good",
            ["--storage-cost-per-gb-month", "-1"],
            "--storage-cost-per-gb-month: Input should be greater than 0",
        ),
        (
            "good",
            ["--cpu-cost-per-core-hour", "0"],
            "--cpu-cost-per-core-hour: Input should be greater than 0",
        ),
        ("good", ["--latency-target-ms", "0"], "--latency-target-ms: Input should be greater than 0"),
        ("good", ["--latency-target-ms", "nan"], "--latency-target-ms: Input should be a finite number"),
        (
            "good",
            ["--staleness-hours", "-3"],
            "--staleness-hours: Input should be greater than or equal to 0",
        ),
        ("good", ["--model-latency-ms-p50", "90"], "model latency p99 (60.0 ms) is below its p50 (90.0 ms)"),
        ("good", ["--universe-size", "1"], "universe size 1 is smaller than the 2 distinct keys"),
        ("good", ["--model", "json:dumps"], "--model needs --model-sample"),
        ("none", [], "give a request log"),
    ],
)
def test_bad_input_exits_2_with_one_clear_line(tmp_path, capsys, setup, flags, message):
    paths = {
        "empty": ("log.csv", b""),
        "header": ("log.csv", b"key,ts\n"),
        "good": ("log.csv", b"key\na\nb\na\n"),
        "corrupt": ("log.parquet", b"PAR1 this is not parquet at all"),
    }
    argv = []
    if setup in paths:
        name, data = paths[setup]
        (tmp_path / name).write_bytes(data)
        argv.append(str(tmp_path / name))
    elif setup == "absent":
        argv.append(str(tmp_path / "absent.csv"))
    code = advise(*argv, *flags)
    captured = capsys.readouterr()
    assert code == 2
    assert captured.out == ""
    assert captured.err.startswith("modelrollout advise: error: ") and message in captured.err
    assert captured.err.count("\n") == 1 and "Traceback" not in captured.err
