"""``make demo``: the product working on this machine, step by step, with output a person can follow.

    python bentos/demo.py            # all: the cluster part when KUBECONFIG reaches a cluster, else the local parts
    python bentos/demo.py online     # train the example model, serve it, predict, send labels (one by one, in bulk)
    python bentos/demo.py batch      # batch run into SQLite, then lookups (batch and hybrid), a new run picked up
    python bentos/demo.py canary     # canary rollouts judged on Prometheus (2 pods per track): a bad model rolled
                                     # back, a good one promoted, then a bad one with late labels promoted and
                                     # rolled back by its bake
    python bentos/demo.py cluster    # CRD + operator + the sample ModelDeployment on the current cluster

Local parts need no cluster: models are trained into a temporary ``BENTOML_HOME``, every server
(``bentoml serve``, Prometheus) listens on 127.0.0.1 only, every wait is bounded, and every process
the demo starts is stopped when it ends - also on Ctrl-C or a failure. ``--keep`` keeps the work
directory (models, SQLite store, server logs) for a look afterwards.
"""

from __future__ import annotations

import argparse
import contextlib
import shutil
import signal
import sys
import tempfile
import time
from pathlib import Path

from demo_support import (
    FEEDBACK_TOKEN,
    IRIS_DIR,
    SETOSA_ROW,
    VIRGINICA_ROW,
    Console,
    DemoFailed,
    ModelSpec,
    Servers,
    metric_lines,
    metric_value,
    run_runner,
    train,
    wait_until,
)

sys.path.insert(0, str(IRIS_DIR))  # the example bento's own modules (make_sample_input)
import make_sample_input  # noqa: E402

PARTS = ("online", "batch", "canary", "cluster")
TABLE = "iris"
SAMPLE_INPUT = IRIS_DIR / "data" / "iris-input.csv"
NEW_KEY = 175  # not in the sample input (ids 1..150); in the second run's (ids 1..200)
VERSICOLOR_ROW = [6.0, 2.7, 4.2, 1.3]
PICKUP_TIMEOUT_S = 20.0


def online(console: Console, servers: Servers) -> None:
    console.section(
        "ONLINE SERVING", "the model answers on request; labels that arrive later are joined to what it said"
    )
    stable = servers.start(console, {"stable": servers.spec("v1")})["stable"]
    body = {"rows": [SETOSA_ROW, VERSICOLOR_ROW, VIRGINICA_ROW]}
    headers = {"X-Request-ID": "order-1001"}
    console.print("\nPredict three flowers (our own X-Request-ID is only logged beside the prediction):")
    console.http("POST", f"{stable.url}/predict", body, headers)
    response = stable.post("/predict", json=body, headers=headers)
    console.response(response.status_code, response.json())
    request_id = response.json()["request_id"]
    console.note(
        f"X-Request-ID: {response.headers.get('X-Request-ID')}  (assigned by the server: quote it with labels)"
    )
    console.note(f"every prediction is logged to the shared store {servers.log_url} (off the request path)")
    _labels(console, stable, request_id)
    _bulk_labels(console, servers, request_id)

    console.print(
        "\nWhat the accuracy checks read from /metrics (accuracy = correct / labelled, by model_version):"
    )
    wait_until(lambda: _figure(stable, "labelled") >= 3, timeout_s=10, what="the figures recomputed")
    for line in metric_lines(
        stable, "modelrollout_labels_total", "modelrollout_ground_truth_", "modelrollout_prediction_log_"
    ):
        console.note(line)


def _labels(console: Console, stable, request_id: str) -> None:
    auth = {"Authorization": f"Bearer {FEEDBACK_TOKEN}"}
    console.print(
        f"\nLater, true labels arrive through /feedback, with the token (MODELROLLOUT_FEEDBACK_TOKEN={FEEDBACK_TOKEN}):"
    )
    for row, label in ((0, "setosa"), (2, "versicolor"), (0, "virginica")):
        feedback = {"request_id": request_id, "row": row, "label": label}
        console.http("POST", f"{stable.url}/feedback", feedback, auth)
        answer = stable.post("/feedback", json=feedback, headers=auth)
        verdict = answer.json()
        console.note(f"<- HTTP {answer.status_code} outcome={verdict['outcome']} correct={verdict['correct']} "
                     f"(predicted {verdict['predicted']}, label {label})")  # fmt: skip
    unknown = stable.post("/feedback", json={"request_id": "never-seen", "label": "setosa"}, headers=auth)
    console.note(
        f"a label for an unknown request id: HTTP {unknown.status_code}, outcome={unknown.json()['outcome']}"
    )
    forged = stable.post("/feedback", json={"request_id": request_id, "row": 1, "label": "setosa"})
    console.note(
        f"a label without the token: HTTP {forged.status_code} ({forged.json()['error']}); nothing stored"
    )


def _bulk_labels(console: Console, servers: Servers, request_id: str) -> None:
    path = servers.workdir / "labels.csv"
    path.write_text(f"request_id,row,label\n{request_id},1,versicolor\n{request_id},0,setosa\n")
    console.print("\nOr a whole day of labels at once, from a file (CSV/Parquet) or a query:")
    for line in path.read_text().splitlines():
        console.note(line)
    args = ["labels", "import", "--input", str(path), "--by", "request_id", "--store", servers.log_url]
    console.command(["modelrollout-batch", *args])
    code, report, stderr = run_runner(args, env={})
    if code != 0:
        raise DemoFailed(
            f"labels import ended {report.get('status')} (exit {code}): {report.get('error')}\n{stderr}"
        )
    console.note(
        "<- " + ", ".join(f"{k} {report[k]}" for k in ("read", "accepted", "duplicate", "unknown", "invalid"))
    )


def _figure(server, name: str) -> float:
    return metric_value(server.metrics_text(), f"modelrollout_ground_truth_{name}")


def batch(console: Console, servers: Servers, workdir: Path) -> None:
    console.section("STATIC AND HYBRID SERVING", "predict every known key ahead of time, then serve lookups")
    store_url = f"sqlite:///{workdir / 'predictions.sqlite'}"
    head = SAMPLE_INPUT.read_text().splitlines()
    console.print(
        f"Input: {SAMPLE_INPUT.relative_to(IRIS_DIR.parents[1])} ({len(head) - 1} rows keyed by id)"
    )
    for line in head[:3]:
        console.note(line)
    _batch_run(console, run_id="demo-run-1", input_path=SAMPLE_INPUT, store_url=store_url, servers=servers)

    lookup_env = {"MODELROLLOUT_STORE_DSN": store_url, "MODELROLLOUT_TABLE": TABLE}
    with contextlib.ExitStack() as section:
        running = servers.start(
            console,
            {
                "batch": servers.spec("v1", env={**lookup_env, "MODELROLLOUT_MODE": "batch"}),
                "hybrid": servers.spec("v1", env={**lookup_env, "MODELROLLOUT_MODE": "hybrid"}),
            },
            stack=section,
        )
        static, hybrid = running["batch"], running["hybrid"]
        console.print("\nBatch mode (MODELROLLOUT_MODE=batch): answers come from the table only.")
        _lookup(console, static, {"keys": [1, 51, 150, NEW_KEY]})
        _lookup(console, static, {"keys": [NEW_KEY]})

        console.print("\nHybrid mode: the table first, the model for keys it lacks (given their features).")
        bigger = make_sample_input.sample_table(rows=200)  # the next run's input: ids 1..200
        new_row = [bigger.column(name)[NEW_KEY - 1].as_py() for name in make_sample_input.FEATURES]
        _lookup(console, hybrid, {"keys": [1, NEW_KEY], "rows": [SETOSA_ROW, new_row]})

        console.print(
            f"\nA new batch run (ids 1..200) is published while the servers run; key {NEW_KEY} is in it:"
        )
        bigger_path = make_sample_input.write(bigger, workdir / "iris-input-200.csv")
        _batch_run(console, run_id="demo-run-2", input_path=bigger_path, store_url=store_url, servers=servers)
        with console.step("waiting for the batch server to serve demo-run-2 (no restart; re-read every 5 s)"):
            wait_until(lambda: _answer(static, NEW_KEY).get("run_id") == "demo-run-2",
                       timeout_s=PICKUP_TIMEOUT_S, what="demo-run-2 served")  # fmt: skip
        _lookup(console, static, {"keys": [1, NEW_KEY]})

        console.print("\nHits and misses, as Prometheus scrapes them:")
        for name, server in (("batch", static), ("hybrid", hybrid)):
            for line in metric_lines(server, "modelrollout_lookup_total", "modelrollout_predictions_total"):
                console.note(f"{name:7s} {line}")


def _answer(server, key) -> dict:
    return server.post("/lookup", json={"keys": [key]}).json()["answers"][0]


def _batch_run(console: Console, *, run_id: str, input_path: Path, store_url: str, servers: Servers) -> None:
    env = {"BENTOML_HOME": str(servers.store.home), "PYTHONPATH": str(IRIS_DIR),
           "MODELROLLOUT_MODEL_TAG": servers.store.tag("v1"), "MODELROLLOUT_STORE_DSN": store_url}  # fmt: skip
    args = ["run", "--input", str(input_path), "--key-columns", "id", "--table", TABLE,
            "--predictor", "batch:predictor", "--run-id", run_id, "--model-version", "v1"]  # fmt: skip
    console.print()
    console.command(["modelrollout-batch", *args], env={"MODELROLLOUT_STORE_DSN": store_url})
    with console.step(f"batch run {run_id}: read, predict, verify, publish"):
        code, report, stderr = run_runner(args, env=env)
    if code != 0:
        raise DemoFailed(
            f"batch run {run_id} ended {report.get('status')} (exit {code}): {report.get('error')}\n{stderr}"
        )
    published = report["published"]
    checks = report["verification"]["checks"]
    timings = report.get("timings", {})
    console.table([
        ["status", f"{report['status']} (exit {code})"],
        ["published", f"table {report['table']} -> {published['physical_table']} (run {published['run_id']}, "
                      f"model {published['model_version']})"],
        ["rows", f"{report['rows_in']} read, {report['rows_written']} written"],
        ["checks", "; ".join(f"{c['name']} {c['verdict']} ({c['detail']})" for c in checks)],
        ["time", f"total {timings.get('total_s', 0):.2f} s (predict {timings.get('predict_s', 0):.2f} s, "
                 f"write {timings.get('write_s', 0):.3f} s)"],
    ])  # fmt: skip


def _lookup(console: Console, server, body: dict) -> None:
    console.http("POST", f"{server.url}/lookup", body)
    response = server.post("/lookup", json=body)
    payload = response.json()
    console.note(
        f"<- HTTP {response.status_code}, request_id {payload['request_id']}, mode {payload['mode']}"
    )
    rows = [["KEY", "FOUND", "PREDICTION", "SOURCE", "RUN", "MESSAGE"]]
    rows += [
        [a["key"], a["found"], a["prediction"], a["source"], a["run_id"], a["message"]]
        for a in payload["answers"]
    ]
    console.table(rows, indent=6)


def _reachable_cluster(console: Console) -> bool:
    from demo_cluster import cluster_reachable

    ok, why = cluster_reachable()
    console.note(f"cluster: {why}")
    return ok


def _interrupt(signum: int, frame: object) -> None:
    """SIGTERM stops the demo like Ctrl-C does: unwinding, so every started process is stopped."""
    raise KeyboardInterrupt


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("part", nargs="?", choices=("all", *PARTS), default="all")
    parser.add_argument("--keep", action="store_true", help="keep the work directory (models, store, logs)")
    args = parser.parse_args(argv)
    console = Console()
    signal.signal(signal.SIGTERM, _interrupt)
    console.section(
        "modelrollout demo", "Kubernetes operator + serving runtime for ML models (example: iris)"
    )
    parts = [args.part]
    if args.part == "all":
        parts = ["cluster"] if _reachable_cluster(console) else ["online", "batch", "canary"]
        if parts != ["cluster"]:
            console.note("no cluster reachable: showing the local parts (online, batch, canary)")
    workdir = Path(tempfile.mkdtemp(prefix="modelrollout-demo-"))
    console.note(f"work directory: {workdir}")
    code = 0
    with contextlib.ExitStack() as stack:
        if not args.keep:
            stack.callback(shutil.rmtree, workdir, ignore_errors=True)
        try:
            code = _run(console, parts, workdir, stack)
        except KeyboardInterrupt:
            console.print("\ninterrupted: stopping everything the demo started")
            code = 130
        except DemoFailed as exc:
            console.print(f"\ndemo failed: {exc}")
            code = 1
    console.print(f"\n{'done' if code == 0 else 'stopped'} in {console.elapsed():.0f} s; every process the demo started is stopped"
                  + (f"; files kept in {workdir}" if args.keep else ""))  # fmt: skip
    return code


def _run(console: Console, parts: list[str], workdir: Path, stack: contextlib.ExitStack) -> int:
    if parts == ["cluster"]:
        from demo_cluster import cluster_demo, cluster_reachable

        reachable, why = cluster_reachable()
        if not reachable:
            console.print(
                f"\nno cluster: {why}. Set KUBECONFIG (or `make e2e` makes a kind cluster, with Docker);"
            )
            console.print("`python bentos/demo.py` shows the local parts without one.")
            return 1

        return cluster_demo(console, workdir=workdir, stack=stack)
    models = [ModelSpec("v1")]
    if "canary" in parts:
        models += [ModelSpec("v2"), ModelSpec("v3", quality="degraded"), ModelSpec("v4", quality="degraded")]
    console.print()
    store = train(console, workdir / "bentoml", models)
    servers = Servers(stack, store=store, workdir=workdir)
    started = time.monotonic()
    for part in parts:
        if part == "online":
            online(console, servers)
        elif part == "batch":
            batch(console, servers, workdir)
        elif part == "canary":
            from demo_canary import canary

            canary(console, servers, workdir)
    console.note(f"\n(parts took {time.monotonic() - started:.0f} s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
