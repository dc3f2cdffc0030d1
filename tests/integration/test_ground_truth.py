"""Ground truth across replicas, stores, forgers and days, with real ``bentoml serve`` processes.

One "deployment" per store kind, for the whole module: three stable pods (v1) and three canary
pods (v2) of the iris bento in hybrid mode (lookups with feature rows are answered by the model, so
they are logged with their keys), all logging to one shared store:

- ``sqlite``: ``MODELROLLOUT_GROUND_TRUTH_DSN`` names a SQLite file (the batch store is another);
- ``postgres``: only ``MODELROLLOUT_STORE_DSN`` is set (a real PostgreSQL): the log falls back to it.

Each pod recomputes its version's figures every 0.5 s. Figures are cumulative over the module, so
every assertion compares with the value before the test's own predictions and labels.
"""

from __future__ import annotations

import contextlib
import json
import sqlite3
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass

import pytest

from modelrollout.runtime.store.factory import open_log_store
from tests.integration.bentoproc import (
    SETOSA_ROW,
    VIRGINICA_ROW,
    BentoServer,
    BentoSpec,
    base_env,
    bento_servers,
    feedback_headers,
    iris_store,  # noqa: F401  (fixture)
    metric_value,
)
from tests.integration.postgres import PostgresUnavailable, find_bindir, running_postgres, stopped
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

PERIOD_S = 0.5
PODS_PER_TRACK = 3  # the bar: a canary with 3 replicas per track judged on all its labels
VERSICOLOR_ROW = [6.0, 2.7, 4.2, 1.3]
FIGURE = "modelrollout_ground_truth_"


@dataclass
class Deployment:
    kind: str
    url: str  # the shared store
    stable: list[BentoServer]
    canary: list[BentoServer]
    postgres: object = None

    @property
    def pods(self) -> list[BentoServer]:
        return [*self.stable, *self.canary]


@pytest.fixture(scope="module", params=["sqlite", "postgres"])
def deployment(request, iris_store, tmp_path_factory) -> Iterator[Deployment]:  # noqa: F811
    work = tmp_path_factory.mktemp(f"truth-{request.param}")
    with contextlib.ExitStack() as stack:
        env = {"MODELROLLOUT_MODE": "hybrid", "MODELROLLOUT_TABLE": "iris",
               "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": str(PERIOD_S)}  # fmt: skip
        server = None
        if request.param == "sqlite":
            url = f"sqlite:///{work}/truth.sqlite"
            env.update(
                MODELROLLOUT_GROUND_TRUTH_DSN=url, MODELROLLOUT_STORE_DSN=f"sqlite:///{work}/batch.sqlite"
            )
        else:
            try:
                find_bindir()
            except PostgresUnavailable as exc:
                pytest.skip(str(exc))
            server = stack.enter_context(running_postgres())
            url = server.dsn
            env.update(MODELROLLOUT_STORE_DSN=url)
        specs = [BentoSpec(iris_store, "v1", env=env)] * PODS_PER_TRACK + [
            BentoSpec(iris_store, "v2", track="canary", env=env)
        ] * PODS_PER_TRACK
        pods = stack.enter_context(bento_servers(specs, workdir=work))
        yield Deployment(request.param, url, pods[:PODS_PER_TRACK], pods[PODS_PER_TRACK:], server)


# --- helpers -------------------------------------------------------------------------------------


def predict(server: BentoServer, rows, **headers) -> str:
    return predictions(server, rows, **headers)[0]


def predictions(server: BentoServer, rows, **headers) -> tuple[str, list[str]]:
    response = server.post("/predict", json={"rows": rows}, headers=headers)
    assert response.status_code == 200, response.text
    assert response.headers["X-Request-ID"] == response.json()["request_id"]
    return response.json()["request_id"], response.json()["predictions"]


def other(species: str) -> str:
    return "virginica" if species != "virginica" else "setosa"


def label(server: BentoServer, request_id: str, value: str, *, row: int = 0, headers=None):
    body = {"request_id": request_id, "label": value, "row": row}
    return server.post("/feedback", json=body, headers=feedback_headers() if headers is None else headers)


def figures(server: BentoServer) -> dict[str, float]:
    text = server.metrics_text()
    names = ("predictions", "labelled", "correct", "updated_timestamp_seconds")
    return {name: metric_value(text, FIGURE + name) for name in names}


def fresh_figures(pod: BentoServer) -> dict[str, float]:
    """The pod's figures as computed after this call: a baseline no earlier test's labels can move."""
    asked = time.time()
    return wait_until(
        lambda: (f := figures(pod))["updated_timestamp_seconds"] > asked and f,
        timeout=10, interval=0.1, what=f"a computation after {asked} on {pod.url}",
    )  # fmt: skip


def wait_figures(pods: list[BentoServer], **at_least: float) -> None:
    """Every pod of the version shows at least these figures (each recomputes every PERIOD_S)."""
    for pod in pods:
        wait_until(
            lambda pod=pod: all(figures(pod)[k] >= v for k, v in at_least.items()),
            timeout=15, interval=0.2, what=f"{at_least} on {pod.url} (now {figures(pod)})",
        )  # fmt: skip


def logged(url: str, request_id: str, row: int = 0):
    with open_log_store(url, wait_timeout_s=5.0) as store:
        return store.find_prediction(request_id, row)


# --- the tests ---------------------------------------------------------------------------------


def test_a_label_sent_to_another_replica_of_another_track_counts_on_every_pod_of_the_version(deployment):
    before = fresh_figures(deployment.canary[1])
    stable_before = fresh_figures(deployment.stable[0])
    request_id, said = predictions(deployment.canary[0], [SETOSA_ROW, VIRGINICA_ROW, VERSICOLOR_ROW])
    # written within ~0.1 s by the pod that answered; only then can another pod find it
    wait_until(
        lambda: logged(deployment.url, request_id, 2), timeout=10, interval=0.1, what="the rows logged"
    )
    right = label(deployment.stable[1], request_id, said[0])  # a stable pod takes a canary label
    wrong = label(deployment.canary[1], request_id, other(said[1]), row=1)
    third = label(deployment.canary[2], request_id, said[2], row=2)  # and the third canary replica
    assert (right.status_code, right.json()["outcome"], right.json()["correct"]) == (200, "accepted", True)
    assert (right.json()["version"], right.json()["track"]) == ("v2", "canary")
    assert (wrong.status_code, wrong.json()["correct"], wrong.json()["predicted"]) == (200, False, said[1])
    assert (third.status_code, third.json()["correct"]) == (200, True)
    wait_figures(deployment.canary, predictions=before["predictions"] + 3, labelled=before["labelled"] + 3,
                 correct=before["correct"] + 2)  # fmt: skip
    for pod in deployment.canary:  # one figure per version, whichever replica answered or was told
        after = figures(pod)
        assert (after["labelled"] - before["labelled"], after["correct"] - before["correct"]) == (3, 2)
    assert figures(deployment.stable[0])["labelled"] == stable_before["labelled"]  # v1 judged apart


def test_a_second_label_for_the_same_prediction_is_a_409_and_never_counts_twice(deployment):
    request_id = predict(deployment.stable[0], [SETOSA_ROW])
    assert label(deployment.stable[0], request_id, "setosa").status_code == 200  # the pod flushes first
    again = label(deployment.canary[0], request_id, "virginica")
    assert again.status_code == 409 and again.json()["outcome"] == "duplicate"
    unknown = label(deployment.canary[1], uuid.uuid4().hex, "setosa")
    assert unknown.status_code == 404 and unknown.json()["outcome"] == "unknown_request"
    text = deployment.canary[0].metrics_text()
    assert metric_value(text, "modelrollout_labels_total", outcome="duplicate") >= 1


def test_a_caller_reusing_a_logged_id_cannot_replace_its_prediction(deployment):
    client_id = f"order-{uuid.uuid4().hex[:8]}"
    victim = predict(deployment.stable[0], [SETOSA_ROW], **{"X-Request-ID": client_id})
    forged = [predict(deployment.stable[1], [VIRGINICA_ROW], **{"X-Request-ID": header})
              for header in (client_id, victim)]  # fmt: skip
    for request_id in (victim, *forged):
        wait_until(
            lambda r=request_id: logged(deployment.url, r), timeout=10, interval=0.1, what="rows logged"
        )
    assert victim not in forged and len(set(forged)) == 2  # every request gets its own server id
    verdict = label(deployment.canary[0], victim, "setosa")
    assert verdict.json()["outcome"] == "accepted" and verdict.json()["predicted"] == "setosa"
    sql = (
        f"SELECT request_id, prediction FROM modelrollout_predictions WHERE client_request_id = '{client_id}'"
    )
    with open_log_store(deployment.url, wait_timeout_s=5.0) as store:
        _, chunks = store.iter_query(sql, chunk_rows=10)
        rows = [tuple(row) for chunk in chunks for row in chunk]
    assert sorted(rows) == sorted([(victim, "setosa"), (forged[0], "virginica")])


def test_forged_feedback_without_the_token_is_refused_and_changes_no_figure(deployment):
    request_id = predict(deployment.stable[0], [SETOSA_ROW])
    wait_until(
        lambda: logged(deployment.url, request_id), timeout=10, interval=0.2, what="the prediction logged"
    )
    target = deployment.stable[1]
    refused0 = metric_value(target.metrics_text(), "modelrollout_labels_total", outcome="unauthorized")
    before = fresh_figures(target)
    for headers in ({}, {"Authorization": "Bearer not-the-token"}, {"Authorization": "Basic eDp5"}) * 10:
        forged = label(target, request_id, "virginica", headers=headers)
        assert forged.status_code == 401 and "Bearer" in forged.json()["error"]
    assert fresh_figures(target)["labelled"] == before["labelled"]
    assert (
        metric_value(target.metrics_text(), "modelrollout_labels_total", outcome="unauthorized")
        == refused0 + 30
    )
    real = label(target, request_id, "setosa")  # the forger pre-empted nothing
    assert real.json()["outcome"] == "accepted" and real.json()["correct"] is True


def test_a_flood_of_large_requests_evicts_nothing_inside_retention(deployment):
    victim = predict(deployment.stable[0], [SETOSA_ROW])
    wait_until(lambda: logged(deployment.url, victim), timeout=10, interval=0.2, what="the victim logged")
    pod = deployment.stable[0]
    text = pod.metrics_text()
    accounted0 = metric_value(text, "modelrollout_prediction_log_written_total") + metric_value(
        text, "modelrollout_prediction_log_dropped_total"
    )
    with ThreadPoolExecutor(max_workers=8) as pool:
        ids = list(pool.map(lambda _: predict(pod, [VERSICOLOR_ROW] * 1000), range(40)))
    assert len(set(ids)) == 40
    verdict = label(deployment.stable[1], victim, "setosa")
    assert verdict.status_code == 200 and verdict.json()["outcome"] == "accepted"

    def accounted() -> float:
        text = pod.metrics_text()
        return metric_value(text, "modelrollout_prediction_log_written_total") + metric_value(
            text, "modelrollout_prediction_log_dropped_total"
        )

    # every flooded row was written or counted as dropped: nothing vanished silently
    wait_until(
        lambda: accounted() - accounted0 >= 40_000, timeout=30, interval=0.5, what="the flood accounted"
    )


def test_with_the_store_stopped_the_service_keeps_answering_and_counts_the_drops(deployment, tmp_path):
    pod = deployment.canary[0]
    dropped0 = metric_value(
        pod.metrics_text(), "modelrollout_prediction_log_dropped_total", reason="store_error"
    )
    known = predict(pod, [SETOSA_ROW])
    wait_until(lambda: logged(deployment.url, known), timeout=10, interval=0.2, what="a prediction logged")
    with _store_down(deployment):
        started = time.monotonic()
        for _ in range(20):
            predict(pod, [SETOSA_ROW])
        assert time.monotonic() - started < 10  # answered without waiting for the store
        wait_until(lambda: metric_value(pod.metrics_text(), "modelrollout_prediction_log_dropped_total",
                                        reason="store_error") > dropped0, timeout=20, interval=0.3,
                   what="the dropped rows counted")  # fmt: skip
        answer = label(deployment.canary[1], known, "setosa")  # the label cannot be stored now
        assert answer.status_code == 503 and answer.json()["outcome"] == "unavailable"
        assert pod.get("/readyz").status_code == 200
    request_id = predict(pod, [SETOSA_ROW])  # the store is back: logging resumes by itself

    def accepted() -> bool:
        return label(deployment.stable[0], request_id, "setosa").json()["outcome"] in (
            "accepted",
            "duplicate",
        )

    wait_until(accepted, timeout=20, interval=0.5, what="a label accepted after the outage")


@contextlib.contextmanager
def _store_down(deployment: Deployment) -> Iterator[None]:
    """PostgreSQL: the server stopped. SQLite: a writer holding the file's write lock."""
    if deployment.kind == "postgres":
        with stopped(deployment.postgres):
            yield
        return
    path = deployment.url.removeprefix("sqlite:///")
    holder = sqlite3.connect(path, isolation_level=None, timeout=10)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        yield
    finally:
        holder.execute("ROLLBACK")
        holder.close()


def test_labels_imported_in_bulk_hours_later_count(deployment, tmp_path):
    """By request id, and by key + time (the lookups' keys); the import's clock is hours ahead."""
    t0 = time.time()
    before = fresh_figures(deployment.canary[1])
    tag = uuid.uuid4().hex[:8]
    keys = [f"user-a-{tag}", f"user-b-{tag}", f"user-c-{tag}"]
    lookup = deployment.canary[0].post(
        "/lookup", json={"keys": keys, "rows": [SETOSA_ROW, VIRGINICA_ROW, SETOSA_ROW]}
    )
    assert lookup.status_code == 200 and [a["source"] for a in lookup.json()["answers"]] == ["model"] * 3
    request_id = predict(deployment.canary[1], [SETOSA_ROW, VIRGINICA_ROW])
    wait_until(
        lambda: logged(deployment.url, request_id, 1), timeout=10, interval=0.2, what="the rows logged"
    )

    by_id = tmp_path / "labels.csv"
    by_id.write_text(f"request_id,row,label\n{request_id},0,setosa\n{request_id},1,setosa\n"
                     f"{request_id},0,virginica\n{uuid.uuid4().hex},0,setosa\n")  # fmt: skip
    report = _import(deployment.url, "--input", str(by_id), "--by", "request_id", "--now", str(t0 + 6 * 3600))
    assert (report["accepted"], report["duplicate"], report["unknown"]) == (2, 1, 1), report

    cases = tmp_path / "cases.csv"
    hours = lambda h: t0 + h * 3600  # noqa: E731
    cases.write_text(f"user,outcome,closed_at\n{keys[0]},setosa,{hours(5)}\n{keys[1]},setosa,{hours(5)}\n"
                     f"{keys[2]},setosa,{hours(72)}\nuser-never-{tag},setosa,{hours(5)}\n")  # fmt: skip
    report = _import(deployment.url, "--input", str(cases), "--by", "key", "--key-column", "user",
                     "--label-column", "outcome", "--time-column", "closed_at", "--max-lag", "1d")  # fmt: skip
    assert (report["accepted"], report["unknown"]) == (2, 2), report  # user-c: 3 days late; user-never
    wait_figures(deployment.canary, labelled=before["labelled"] + 4, correct=before["correct"] + 2)


def _import(url: str, *args: str) -> dict:
    result = subprocess.run(
        [sys.executable, "-m", "modelrollout.runtime.batch.cli", "labels", "import", "--store", url, *args],
        env=base_env(), capture_output=True, text=True, timeout=60, check=False,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_the_served_spec_documents_the_token_and_every_feedback_status(deployment):
    spec = deployment.stable[0].get("/docs.json").json()
    operation = spec["paths"]["/feedback"]["post"]
    assert set(operation["responses"]) >= {"200", "400", "401", "403", "404", "409", "503"}
    assert operation["security"] == [{"feedbackToken": []}]
    assert spec["components"]["securitySchemes"]["feedbackToken"] == {"type": "http", "scheme": "bearer"}
