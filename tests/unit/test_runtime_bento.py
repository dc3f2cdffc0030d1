"""`modelrollout.runtime.bento` without a server: what the mixin adds to a service class, what
`instrument` adds to the service, and one prediction logged, counted and labelled in process."""

from __future__ import annotations

import asyncio
from types import SimpleNamespace

import bentoml
import pytest
from pydantic import ValidationError

from modelrollout.runtime.bento import ModelRollout, instrument
from modelrollout.runtime.bento.docs import user_model
from modelrollout.runtime.bento.mixin import checked_labels, model_identity
from modelrollout.runtime.bento.wiring import DURATION_BUCKETS
from modelrollout.runtime.ground_truth.feedback import FeedbackAuth
from modelrollout.runtime.guard import RequestGuard
from modelrollout.runtime.openapi import OpenApiDocs
from modelrollout.runtime.requestid import RequestIdMiddleware

TOKEN = "unit-test-feedback-token-0123"


def service_class(labels=("churn", "stay"), **config):
    class Classifier(ModelRollout, labels=labels):
        @bentoml.api
        async def classify(self, tenure_months: int, ctx: bentoml.Context) -> str:
            return "stay"

    return bentoml.service(Classifier, **config)


def test_the_mixin_serves_feedback_with_the_models_classes_as_the_label_type():
    svc = service_class()
    assert sorted(svc.apis) == ["classify", "feedback"] and svc.apis["feedback"].route == "/feedback"
    request = svc.apis["feedback"].input_spec
    assert request(request_id="r1", label="churn").row == 0
    with pytest.raises(ValidationError):
        request(request_id="r1", label="maybe")  # not a class: a 400, never an "incorrect"
    with pytest.raises(ValidationError):
        request(request_id="has space", label="churn")


def test_without_labels_feedback_takes_bounded_free_text():
    request = service_class(labels=None).apis["feedback"].input_spec
    assert request(request_id="r1", label="12.5", row=3).label == "12.5"
    with pytest.raises(ValidationError):
        request(request_id="r1", label="")


def test_labels_must_be_distinct_class_names():
    assert checked_labels(["a", "b"]) == ("a", "b") and checked_labels(None) is None
    for bad in ("ab", ["a", "a"], ["a", ""], [1, 2]):
        with pytest.raises(TypeError):
            checked_labels(bad)


def test_a_service_of_its_own_feedback_is_refused():
    with pytest.raises(TypeError, match="defines 'feedback'"):

        class Mine(ModelRollout):
            @bentoml.api
            def feedback(self, text: str) -> str:
                return text


def test_a_subclass_keeps_its_parents_labels():
    class Parent(ModelRollout, labels=("a", "b")):
        pass

    class Child(Parent):
        pass

    assert Child.rollout_labels == ("a", "b")
    with pytest.raises(ValidationError):
        Child.feedback.input_spec(request_id="r", label="c")


def test_instrument_adds_the_middlewares_in_order_and_the_gates_defaults():
    svc = instrument(service_class(traffic={"timeout": 10}))
    assert [cls for cls, _ in svc.middlewares] == [
        RequestIdMiddleware,
        FeedbackAuth,
        RequestGuard,
        OpenApiDocs,
    ]
    options = dict(svc.middlewares)
    assert options[FeedbackAuth]["paths"] == ("/feedback",)
    assert sorted(options[RequestGuard]["paths"]) == ["/classify", "/feedback"]
    assert svc.config["metrics"]["duration"]["buckets"] == DURATION_BUCKETS
    assert svc.config["traffic"] == {"timeout": 10, "max_concurrency": 100}  # the service's own kept


def test_instrument_keeps_what_the_service_configured():
    metrics = {"enabled": True, "duration": {"buckets": [0.1, 1.0]}}
    svc = instrument(service_class(metrics=metrics, traffic={"max_concurrency": 7}))
    assert svc.config["metrics"]["duration"]["buckets"] == [0.1, 1.0]
    assert svc.config["traffic"]["max_concurrency"] == 7


def test_instrument_refuses_a_service_without_the_mixin_and_a_second_call():
    @bentoml.service
    class Plain:
        @bentoml.api
        def predict(self, x: int) -> int:
            return x

    with pytest.raises(TypeError, match="mixes in ModelRollout"):
        instrument(Plain)
    svc = instrument(service_class())
    with pytest.raises(TypeError, match="instrumented already"):
        instrument(svc)


def test_the_document_names_the_feedback_response_and_every_status(monkeypatch):
    svc = instrument(service_class())
    build = dict(svc.middlewares)[OpenApiDocs]["build"]
    doc = build()
    feedback = doc["paths"]["/feedback"]["post"]
    assert sorted(feedback["responses"]) == sorted(
        ["200", "400", "401", "403", "404", "409", "413", "415", "429", "500", "503", "504"]
    )
    assert feedback["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].endswith(
        "/FeedbackResponse"
    )
    assert feedback["security"] == [{"feedbackToken": []}]
    assert sorted(doc["paths"]["/classify"]["post"]["responses"]) == [
        "200",
        "400",
        "413",
        "415",
        "429",
        "500",
        "504",
    ]
    assert user_model(svc.apis["feedback"].output_spec).__name__ == "FeedbackResponse"


def test_the_model_identity_comes_from_the_arguments_or_the_stored_model():
    stored = SimpleNamespace(
        tag=SimpleNamespace(name="churn-model", version="abc"), info=SimpleNamespace(labels={})
    )
    labelled = SimpleNamespace(tag=stored.tag, info=SimpleNamespace(labels={"version": "v7"}))
    assert model_identity(None, stored, model_name=None, model_version=None) == ("churn-model", "abc")
    assert model_identity(None, labelled, model_name=None, model_version=None) == ("churn-model", "v7")
    assert model_identity(None, stored, model_name="churn", model_version="2") == ("churn", "2")
    with pytest.raises(ValueError, match="found 0 BentoModel"):
        model_identity(object.__new__(service_class().inner), None, model_name="x", model_version=None)


def test_the_environment_names_the_model_when_the_service_does_not(monkeypatch, tmp_path):
    monkeypatch.setenv("MODELROLLOUT_GROUND_TRUTH_DSN", f"sqlite:///{tmp_path}/log.sqlite")
    monkeypatch.setenv("MODELROLLOUT_MODEL_NAME", "churn")
    monkeypatch.setenv("MODELROLLOUT_MODEL_VERSION", "1.2.0")
    service = service_class().inner()  # as BentoML creates it: no arguments
    try:
        assert service.modelrollout.runtime.origin.version == "1.2.0"
    finally:
        service.stop_modelrollout()


def ctx(request_id: str = "server-id-1", client: str | None = "order-7"):
    state = {"modelrollout_request_id": request_id, "modelrollout_client_request_id": client}
    return SimpleNamespace(
        request=SimpleNamespace(scope={"state": state}), response=SimpleNamespace(status_code=200)
    )


def test_a_prediction_is_logged_counted_and_labelled_in_process(tmp_path, monkeypatch):
    monkeypatch.setenv("MODELROLLOUT_GROUND_TRUTH_DSN", f"sqlite:///{tmp_path}/log.sqlite")
    monkeypatch.setenv("MODELROLLOUT_FEEDBACK_TOKEN", TOKEN)
    with pytest.raises(ValueError, match="found 0 BentoModel"):
        service_class().inner()  # BentoML's call: no model given, none to find, no name in the environment
    service = object.__new__(service_class().inner)
    with pytest.raises(RuntimeError, match="not started"):
        asyncio.run(service.record_predictions(ctx(), ["stay"]))
    assert service.__is_ready__() is False

    ModelRollout.__init__(service, model_name="churn-model", model_version="v1")
    try:
        assert service.__is_ready__() is True
        receipt = asyncio.run(service.record_predictions(ctx(), ["churn", "stay"]))
        assert vars(receipt) == {
            "request_id": "server-id-1",
            "model": "churn-model",
            "version": "v1",
            "track": "stable",
        }
        parts = service.modelrollout
        counter = parts.runtime.metrics.predictions.labels("churn-model", "v1", "stable", "model")
        assert counter._value.get() >= 2

        answer = asyncio.run(service.feedback.local(request_id="server-id-1", label="stay", row=1, ctx=ctx()))
        assert (answer.outcome, answer.correct, answer.predicted, answer.version) == (
            "accepted",
            True,
            "stay",
            "v1",
        )
        again = ctx()
        answer = asyncio.run(
            service.feedback.local(request_id="server-id-1", label="churn", row=1, ctx=again)
        )
        assert answer.outcome == "duplicate" and again.response.status_code == 409
        unknown = ctx()
        answer = asyncio.run(service.feedback.local(request_id="nobody", label="churn", row=0, ctx=unknown))
        assert answer.outcome == "unknown_request" and unknown.response.status_code == 404
    finally:
        service.stop_modelrollout()


def test_the_metrics_label_every_instrumented_services_routes(monkeypatch):
    """BentoML's metrics middleware is one class per process: two services in one module both count."""
    from bentoml._internal.server.http import instruments

    seen: list[str] = []

    class FakeOriginal:
        def __init__(self, app, **options) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            seen.append(scope["path"])

    monkeypatch.setattr(instruments, "RunnerTrafficMetricsMiddleware", FakeOriginal)
    instrument(service_class())

    class Other(ModelRollout):
        @bentoml.api
        async def score(self, x: int) -> int:
            return x

    instrument(bentoml.service(Other))

    async def app(scope, receive, send) -> None:
        pass

    middleware = instruments.RunnerTrafficMetricsMiddleware(app)
    for path in ("/classify", "/score", "/feedback", "/nope"):
        asyncio.run(middleware({"type": "http", "path": path, "method": "POST"}, None, None))
    assert seen == ["/classify", "/score", "/feedback", "other"]
