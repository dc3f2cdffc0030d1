"""The iris bento under a real `bentoml serve`: predictions, request ids, 400s, metrics, feedback, faults.

Two servers run for the whole module, started in parallel: ``stable`` (v1, good model, no faults)
and ``faulty`` (v2, degraded model, track canary, 200 ms injected latency, 50% injected errors).
No store is configured: each logs predictions to a file of its own process (the fallback), and
recomputes its figures every 0.5 s. Counters and figures accumulate across tests, so every metric
assertion compares before/after values. Ground truth across replicas: ``test_ground_truth.py``.
"""

from __future__ import annotations

import statistics
import time
from concurrent.futures import ThreadPoolExecutor

import httpx
import pytest

from tests.integration.bentoproc import (
    SETOSA_ROW,
    VIRGINICA_ROW,
    BentoServer,
    BentoSpec,
    bento_servers,
    feedback_headers,
    iris_store,  # noqa: F401  (fixture)
    metric_value,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

INJECTED_LATENCY_MS = 200.0
LABELS_V1 = {"model": "iris-classifier", "version": "v1", "track": "stable"}
LABELS_V2 = {"model": "iris-classifier", "version": "v2", "track": "canary"}
FAST_FIGURES = {"MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "0.5"}


@pytest.fixture(scope="module")
def servers(iris_store, tmp_path_factory):  # noqa: F811
    specs = [
        BentoSpec(iris_store, "v1", env=FAST_FIGURES),
        BentoSpec(
            iris_store, "v2", track="canary", inject_latency_ms=INJECTED_LATENCY_MS, inject_error_rate=0.5,
            env=FAST_FIGURES,
        ),
    ]  # fmt: skip
    with bento_servers(specs, workdir=tmp_path_factory.mktemp("bentos")) as running:
        yield dict(zip(("stable", "faulty"), running, strict=True))


@pytest.fixture
def stable(servers) -> BentoServer:
    return servers["stable"]


@pytest.fixture
def faulty(servers) -> BentoServer:
    return servers["faulty"]


def predict(server: BentoServer, rows, **headers) -> httpx.Response:
    return server.post("/predict", json={"rows": rows}, headers=headers)


def test_health_endpoints_answer_once_the_model_is_loaded(stable):
    for path in ("/readyz", "/livez", "/healthz"):
        assert stable.get(path).status_code == 200, path


def test_known_iris_rows_get_their_species_and_the_answering_version(stable):
    response = predict(stable, [SETOSA_ROW, VIRGINICA_ROW])
    assert response.status_code == 200
    body = response.json()
    assert body["predictions"] == ["setosa", "virginica"]
    assert {k: body[k] for k in ("model", "version", "track")} == LABELS_V1


@pytest.mark.parametrize("header", [None, "order-4711", "has spaces", "x" * 129])
def test_every_request_gets_an_id_the_server_assigns_whatever_the_caller_sends(stable, header):
    headers = {} if header is None else {"X-Request-ID": header}
    response = predict(stable, [SETOSA_ROW], **headers)
    assigned = response.json()["request_id"]
    assert assigned != header and len(assigned) == 32 and int(assigned, 16) >= 0
    assert response.headers["X-Request-ID"] == assigned


@pytest.mark.parametrize(
    "body",
    [
        {"rows": [[5.1, 3.5, 1.4]]},
        {"rows": [[5.1, 3.5, 1.4, 0.2, 9.9]]},
        {"rows": [["a", 3.5, 1.4, 0.2]]},
        {"rows": []},
        {"rows": "5.1,3.5,1.4,0.2"},
        {"features": [[5.1, 3.5, 1.4, 0.2]]},
        {"rows": [[5.1, 3.5, 1.4, 0.2]] * 1001},
    ],
    ids=["short-row", "long-row", "not-a-number", "no-rows", "not-a-list", "wrong-field", "too-many-rows"],
)
def test_invalid_input_is_a_400_with_a_reason_and_counts_nothing(stable, body):
    before = stable.metric("modelrollout_predictions_total", **LABELS_V1)
    response = stable.post("/predict", json=body)
    assert response.status_code == 400
    assert "validation error" in response.json()["error"]
    assert response.headers["X-Request-ID"]
    assert stable.metric("modelrollout_predictions_total", **LABELS_V1) == before


def test_malformed_json_is_a_400(stable):
    response = stable.post("/predict", content=b"{not json", headers={"Content-Type": "application/json"})
    assert response.status_code == 400


def test_metrics_show_bentoml_request_counts_and_runtime_prediction_rows(stable):
    requests_before = stable.metric(
        "bentoml_service_request_total", endpoint="/predict", http_response_code="200"
    )
    rows_before = stable.metric("modelrollout_predictions_total", **LABELS_V1, path="model")
    for _ in range(3):
        assert predict(stable, [SETOSA_ROW, VIRGINICA_ROW]).status_code == 200
    text = stable.metrics_text()
    assert "bentoml_service_request_duration_seconds_bucket" in text
    from tests.integration.bentoproc import metric_value

    requests_after = metric_value(
        text, "bentoml_service_request_total", endpoint="/predict", http_response_code="200"
    )
    rows_after = metric_value(text, "modelrollout_predictions_total", **LABELS_V1, path="model")
    assert requests_after - requests_before == 3
    assert rows_after - rows_before == 6


def labels_count(server: BentoServer, outcome: str) -> float:
    return server.metric("modelrollout_labels_total", outcome=outcome)


def feedback(server: BentoServer, body: dict, *, token: bool = True) -> httpx.Response:
    return server.post("/feedback", json=body, headers=feedback_headers() if token else {})


def test_feedback_joins_labels_by_request_id_and_counts_each_outcome(stable):
    outcomes = ("accepted", "duplicate", "unknown_request", "invalid", "unauthorized")
    before = {o: labels_count(stable, o) for o in outcomes}
    request_id = predict(stable, [SETOSA_ROW, VIRGINICA_ROW]).json()["request_id"]

    right = feedback(stable, {"request_id": request_id, "label": "setosa"})
    wrong = feedback(stable, {"request_id": request_id, "label": "setosa", "row": 1})
    again = feedback(stable, {"request_id": request_id, "label": "virginica"})
    unknown = feedback(stable, {"request_id": "never-predicted", "label": "setosa"})
    bad_label = feedback(stable, {"request_id": request_id, "label": "tulip", "row": 1})
    bad_id = feedback(stable, {"request_id": "has spaces", "label": "setosa"})
    no_token = feedback(stable, {"request_id": request_id, "label": "virginica", "row": 1}, token=False)

    assert (right.status_code, right.json()["outcome"], right.json()["correct"]) == (200, "accepted", True)
    assert right.json()["predicted"] == "setosa" and right.json()["version"] == "v1"
    assert (wrong.status_code, wrong.json()["correct"], wrong.json()["predicted"]) == (
        200,
        False,
        "virginica",
    )
    assert (again.status_code, again.json()["outcome"]) == (409, "duplicate")
    assert (unknown.status_code, unknown.json()["outcome"]) == (404, "unknown_request")
    assert "no prediction logged" in unknown.json()["detail"]
    assert bad_label.status_code == 400  # label is an enum of the model's classes in the schema
    assert "'setosa', 'versicolor' or 'virginica'" in bad_label.json()["detail"][0]["msg"]
    assert bad_id.status_code == 400
    assert no_token.status_code == 401 and no_token.headers["WWW-Authenticate"].startswith("Bearer")
    after = {o: labels_count(stable, o) for o in outcomes}
    assert {o: after[o] - before[o] for o in outcomes} == {
        "accepted": 2, "duplicate": 1, "unknown_request": 1, "invalid": 2, "unauthorized": 1,
    }  # fmt: skip


def test_feedback_without_a_configured_token_is_disabled(iris_store, tmp_path):  # noqa: F811
    with bento_servers([BentoSpec(iris_store, "v1", feedback_token=None)], workdir=tmp_path) as (server,):
        request_id = predict(server, [SETOSA_ROW]).json()["request_id"]
        refused = feedback(server, {"request_id": request_id, "label": "setosa"})
        assert refused.status_code == 403 and "no token configured" in refused.json()["error"]
        assert "labels (/feedback) must reach this very pod" in server.log_tail(200)  # no shared store


def _figures(server: BentoServer) -> dict[str, float]:
    asked = time.time()

    def fresh() -> dict[str, float] | None:
        text = server.metrics_text()
        values = {n: metric_value(text, f"modelrollout_ground_truth_{n}") for n in ("labelled", "correct")}
        updated = metric_value(text, "modelrollout_ground_truth_updated_timestamp_seconds")
        return values if updated > asked else None

    return wait_until(fresh, timeout=10, interval=0.2, what=f"fresh figures on {server.url}")


def _accuracy_from_figures(server: BentoServer, send) -> float:
    """correct / labelled over the labels ``send`` adds, read from the gauges the checks query."""
    before = _figures(server)
    judged = send()
    after = _figures(server)
    assert after["labelled"] - before["labelled"] == judged > 0
    return (after["correct"] - before["correct"]) / judged


def _predict_and_feed_back(server: BentoServer, rows, truth, *, chunk: int) -> int:
    """Predict ``rows`` in chunks (concurrently), send the true label of every answered row; returns rows judged."""
    chunks = [(i, rows[i : i + chunk]) for i in range(0, len(rows), chunk)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        responses = list(pool.map(lambda c: (c[0], predict(server, c[1])), chunks))
    judged = 0
    for start, response in responses:
        if response.status_code != 200:
            continue
        request_id = response.json()["request_id"]
        for row in range(len(response.json()["predictions"])):
            answer = feedback(server, {"request_id": request_id, "label": truth[start + row], "row": row})
            assert answer.json()["outcome"] == "accepted"
            judged += 1
    return judged


def test_accuracy_figures_separate_good_and_degraded_models(stable, faulty):
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = iris.data.tolist()
    truth = [str(iris.target_names[t]) for t in iris.target]

    good = _accuracy_from_figures(stable, lambda: _predict_and_feed_back(stable, rows, truth, chunk=50))
    degraded = _accuracy_from_figures(faulty, lambda: _predict_and_feed_back(faulty, rows, truth, chunk=10))
    assert good >= 0.9
    assert degraded <= 0.6


def _timed_predict(server: BentoServer, request_id: str) -> tuple[float, httpx.Response]:
    started = time.perf_counter()
    response = predict(server, [SETOSA_ROW], **{"X-Request-ID": request_id})
    return time.perf_counter() - started, response


def test_injected_latency_slows_every_response_by_at_least_the_injected_amount(stable, faulty):
    baseline = [_timed_predict(stable, f"base-{i}")[0] for i in range(5)]
    with ThreadPoolExecutor(max_workers=8) as pool:
        slow = list(pool.map(lambda i: _timed_predict(faulty, f"slow-{i}")[0], range(8)))
    assert min(slow) >= INJECTED_LATENCY_MS / 1000.0
    assert statistics.median(baseline) < min(slow)


def test_injected_errors_are_500s_with_request_ids_and_not_counted_as_predictions(faulty):
    errors_before = faulty.metric(
        "bentoml_service_request_total", endpoint="/predict", http_response_code="500"
    )
    rows_before = faulty.metric("modelrollout_predictions_total", **LABELS_V2, path="model")
    with ThreadPoolExecutor(max_workers=16) as pool:
        results = list(pool.map(lambda i: _timed_predict(faulty, f"err-{i}")[1], range(24)))
    statuses = [r.status_code for r in results]
    assert set(statuses) == {200, 500}, statuses  # 50% injected: both with overwhelming probability
    assigned = [r.headers["X-Request-ID"] for r in results]
    assert len(set(assigned)) == len(results) and "err-0" not in assigned  # every answer, 500s too
    errors = faulty.metric("bentoml_service_request_total", endpoint="/predict", http_response_code="500")
    rows = faulty.metric("modelrollout_predictions_total", **LABELS_V2, path="model")
    assert errors - errors_before == statuses.count(500)
    assert rows - rows_before == statuses.count(200)
