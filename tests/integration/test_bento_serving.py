"""The iris bento under a real `bentoml serve`: predictions, request ids, 400s, metrics, feedback, faults.

Two servers run for the whole module, started in parallel: ``stable`` (v1, good model, no faults)
and ``faulty`` (v2, degraded model, track canary, 200 ms injected latency, 50% injected errors).
Counters accumulate across tests, so every metric assertion compares before/after values.
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
    iris_store,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.integration

INJECTED_LATENCY_MS = 200.0
LABELS_V1 = {"model": "iris-classifier", "version": "v1", "track": "stable"}
LABELS_V2 = {"model": "iris-classifier", "version": "v2", "track": "canary"}


@pytest.fixture(scope="module")
def servers(iris_store, tmp_path_factory):  # noqa: F811
    specs = [
        BentoSpec(iris_store, "v1"),
        BentoSpec(
            iris_store, "v2", track="canary", inject_latency_ms=INJECTED_LATENCY_MS, inject_error_rate=0.5
        ),
    ]
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


def test_caller_request_id_is_echoed_in_header_and_body(stable):
    response = predict(stable, [SETOSA_ROW], **{"X-Request-ID": "order-4711"})
    assert response.headers["X-Request-ID"] == "order-4711"
    assert response.json()["request_id"] == "order-4711"


@pytest.mark.parametrize("header", [None, "has spaces", "x" * 129])
def test_missing_or_unsafe_request_id_is_replaced_by_a_generated_one(stable, header):
    headers = {} if header is None else {"X-Request-ID": header}
    response = predict(stable, [SETOSA_ROW], **headers)
    generated = response.json()["request_id"]
    assert generated != header and len(generated) == 32 and int(generated, 16) >= 0
    assert response.headers["X-Request-ID"] == generated


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


def test_feedback_joins_labels_by_request_id_and_counts_each_outcome(stable):
    def count(outcome: str) -> float:
        return stable.metric("modelrollout_feedback_total", **LABELS_V1, outcome=outcome)

    before = {o: count(o) for o in ("correct", "incorrect", "duplicate", "unknown_request")}
    predict(stable, [SETOSA_ROW, VIRGINICA_ROW], **{"X-Request-ID": "fb-1"})

    right = stable.post("/feedback", json={"request_id": "fb-1", "label": "setosa"})
    wrong = stable.post("/feedback", json={"request_id": "fb-1", "label": "setosa", "row": 1})
    again = stable.post("/feedback", json={"request_id": "fb-1", "label": "setosa"})
    unknown = stable.post("/feedback", json={"request_id": "never-predicted", "label": "setosa"})
    bad_label = stable.post("/feedback", json={"request_id": "fb-1", "label": "tulip", "row": 1})
    bad_id = stable.post("/feedback", json={"request_id": "has spaces", "label": "setosa"})

    assert (right.status_code, right.json()["outcome"], right.json()["predicted"]) == (
        200,
        "correct",
        "setosa",
    )
    assert (wrong.status_code, wrong.json()["outcome"], wrong.json()["predicted"]) == (
        200,
        "incorrect",
        "virginica",
    )
    assert (again.status_code, again.json()["outcome"]) == (200, "duplicate")
    assert (unknown.status_code, unknown.json()["outcome"]) == (404, "unknown_request")
    assert "no prediction logged" in unknown.json()["detail"]
    assert bad_label.status_code == 400  # label is an enum of the model's classes in the schema
    assert "'setosa', 'versicolor' or 'virginica'" in bad_label.json()["detail"][0]["msg"]
    assert bad_id.status_code == 400
    after = {o: count(o) for o in before}
    assert {o: after[o] - before[o] for o in before} == {
        "correct": 1,
        "incorrect": 1,
        "duplicate": 1,
        "unknown_request": 1,
    }


def _accuracy_from_counters(server: BentoServer, labels: dict, send) -> float:
    correct0 = server.metric("modelrollout_feedback_total", **labels, outcome="correct")
    incorrect0 = server.metric("modelrollout_feedback_total", **labels, outcome="incorrect")
    send()
    correct = server.metric("modelrollout_feedback_total", **labels, outcome="correct") - correct0
    incorrect = server.metric("modelrollout_feedback_total", **labels, outcome="incorrect") - incorrect0
    assert correct + incorrect > 0
    return correct / (correct + incorrect)


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
            feedback = server.post(
                "/feedback", json={"request_id": request_id, "label": truth[start + row], "row": row}
            )
            assert feedback.json()["outcome"] in ("correct", "incorrect")
            judged += 1
    return judged


def test_accuracy_from_feedback_counters_separates_good_and_degraded_models(stable, faulty):
    from sklearn.datasets import load_iris

    iris = load_iris()
    rows = iris.data.tolist()
    truth = [str(iris.target_names[t]) for t in iris.target]

    good = _accuracy_from_counters(
        stable, LABELS_V1, lambda: _predict_and_feed_back(stable, rows, truth, chunk=50)
    )
    degraded = _accuracy_from_counters(
        faulty, LABELS_V2, lambda: _predict_and_feed_back(faulty, rows, truth, chunk=10)
    )
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
    for i, response in enumerate(results):
        assert response.headers["X-Request-ID"] == f"err-{i}"
    errors = faulty.metric("bentoml_service_request_total", endpoint="/predict", http_response_code="500")
    rows = faulty.metric("modelrollout_predictions_total", **LABELS_V2, path="model")
    assert errors - errors_before == statuses.count(500)
    assert rows - rows_before == statuses.count(200)
