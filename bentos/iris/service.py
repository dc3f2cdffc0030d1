"""Example serving bento: an iris classifier on the modelrollout runtime.

Endpoints (JSON over HTTP POST, BentoML 1.4; ``/docs.json`` documents every status with its body):

``/predict``  ``{"rows": [[5.1, 3.5, 1.4, 0.2], ...]}`` (1..``MODELROLLOUT_MAX_ROWS`` rows of 4 finite
    JSON numbers: sepal length, sepal width, petal length, petal width in cm; booleans and numeric
    strings are refused) -> ``{"request_id", "predictions": ["setosa", ...], "model", "version", "track"}``.
``/lookup``  ``{"keys": [17, 42, ...], "rows": [[f, f, f, f], ...]}`` (``rows`` optional, one per key)
    -> ``{"request_id", "mode", "answers": [{"key", "found", "prediction", "source", "model_version",
    "run_id", "message", "status"}, ...], "model", "version", "track", "message"}``: predictions
    published by the batch runner (``source: lookup``); in hybrid mode keys the table lacks (or all
    keys, when the store is down or slow) are answered by the model from their row (``source:
    model``). Each answer has its own ``status``; the response is 200 when any key was answered,
    else 503 (store unavailable), 404 (not found) or 400 (every key malformed; also
    ``MODELROLLOUT_MODE=online`` and rows that do not match the keys). See ``lookup_api.py``.
``/feedback`` ``{"request_id": "...", "label": "setosa", "row": 0}`` with ``Authorization: Bearer <token>``
    (``MODELROLLOUT_FEEDBACK_TOKEN``; without one configured ``/feedback`` answers 403; a missing or
    wrong token 401, before the body is read) -> ``{"request_id", "row", "label", "outcome", "correct",
    "predicted", "model", "version", "track", "detail"}``: ``accepted`` (200; ``correct`` says whether it
    matched), ``duplicate`` (409: the first label of a prediction counts), ``unknown_request`` (404: no
    such prediction in the shared log) or ``unavailable`` (503: the store could not be asked; retry).
    ``request_id`` is the one this service returned (header ``X-Request-ID`` or body), ``row`` the row
    of a ``/predict`` or the key's index in a ``/lookup``; any pod of any track can take the label.

Every API refuses a body over ``MODELROLLOUT_MAX_BODY_BYTES`` with 413 before reading it and any
content type but JSON with 415; a body that fails validation is a 400 with the reasons. A 5xx is
always the server's fault (the canary's error rate counts only those).

Every response carries ``X-Request-ID``: the id the server assigned (a caller's own ``X-Request-ID``
is logged next to the prediction as ``client_request_id``, never used as its key). Every prediction
is queued for the shared prediction log (``modelrollout.runtime.ground_truth``); settings come from
the ``MODELROLLOUT_*`` environment (see ``modelrollout.runtime.config``); the model from
``MODELROLLOUT_MODEL_TAG`` (default ``iris-classifier:latest``).

One worker per pod; scale with replicas (the log and the figures are shared through the store).
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated, Literal

import bentoml
import numpy as np
from lookup_api import (
    NOT_ENABLED,
    LookupKey,
    LookupResponse,
    LookupSettings,
    answer_all,
    http_status,
    open_lookup,
    record,
)
from pydantic import BaseModel, Field

from modelrollout.runtime import logsafe
from modelrollout.runtime.config import RuntimeConfig
from modelrollout.runtime.ground_truth.feedback import STATUS, FeedbackAuth
from modelrollout.runtime.ground_truth.metrics import log_counters
from modelrollout.runtime.ground_truth.serving import GroundTruth
from modelrollout.runtime.ground_truth.settings import log_location
from modelrollout.runtime.guard import RequestGuard
from modelrollout.runtime.metrics import runtime_metrics
from modelrollout.runtime.openapi import ErrorBody, OpenApiDocs, Status, ValidationErrorBody, document
from modelrollout.runtime.requestid import (
    MAX_REQUEST_ID_LENGTH,
    RequestIdMiddleware,
    client_request_id_from_scope,
    new_request_id,
    request_id_from_scope,
)
from modelrollout.runtime.routes import install_endpoint_labels
from modelrollout.runtime.serving import ServingRuntime
from modelrollout.runtime.storecalls import StoreCalls

DEFAULT_MODEL_TAG = "iris-classifier:latest"
# Finer than Prometheus' default buckets (which start at 5 ms): a small model answers in ~1-3 ms
# and the canary latency gate compares quantiles.
DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]

# Parsed at import: a bad MODELROLLOUT_* value stops `bentoml serve` with a message naming it.
CONFIG = RuntimeConfig.from_env(os.environ)
LOOKUP = LookupSettings.from_env(os.environ)
log_location(os.environ)  # a prediction-log URL no store can open stops the server here, naming the variable
logsafe.install(json_lines=CONFIG.log_format == "json", client_errors_per_s=CONFIG.client_error_logs_per_s)
log = logging.getLogger("bentoml.iris")
MODEL = bentoml.models.BentoModel(CONFIG.model_tag or DEFAULT_MODEL_TAG)


def class_names(model: bentoml.models.BentoModel) -> tuple[str, ...]:
    """The model's classes (train.py stores them), read at import so the API schema can name them."""
    stored = model.stored
    return tuple(stored.info.metadata.get("target_names", ())) if stored is not None else ()


CLASSES = class_names(MODEL)
Label = (
    Literal[CLASSES] if CLASSES else Annotated[str, Field(min_length=1, max_length=CONFIG.max_label_chars)]
)  # type: ignore[valid-type]
Feature = Annotated[float, Field(strict=True, allow_inf_nan=False)]  # a JSON number: no bool, no "5.1"
FeatureRow = Annotated[
    list[Feature],
    Field(
        min_length=4, max_length=4, description="sepal length, sepal width, petal length, petal width (cm)"
    ),
]
Rows = Annotated[list[FeatureRow], Field(min_length=1, max_length=CONFIG.max_rows)]
Keys = Annotated[list[LookupKey], Field(min_length=1, max_length=CONFIG.max_rows)]
RequestId = Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH, pattern=r"^[\x21-\x7e]+$")]
Track = Literal["stable", "canary"]


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[Label]  # type: ignore[valid-type]
    model: str
    version: str
    track: Track


class FeedbackResponse(BaseModel):
    request_id: str
    row: int
    label: Label  # type: ignore[valid-type]
    outcome: Literal["accepted", "duplicate", "unknown_request", "unavailable"]
    correct: bool | None = Field(default=None, description="accepted: the label equals the prediction")
    predicted: str | None = None
    model: str | None = Field(default=None, description="who made the prediction (any pod, any track)")
    version: str | None = None
    track: Track | None = None
    detail: str | None = None


@bentoml.service(
    workers=1,
    traffic={"timeout": 30, "max_concurrency": CONFIG.max_concurrency},
    metrics={"enabled": True, "namespace": "bentoml_service", "duration": {"buckets": DURATION_BUCKETS}},
)
class IrisClassifier:
    model_ref = MODEL

    def __init__(self) -> None:
        self.runtime: ServingRuntime | None = None
        self.lookups = None
        self.truth: GroundTruth | None = None
        stored = self.model_ref
        self.model = bentoml.sklearn.load_model(stored)
        self.class_names: tuple[str, ...] = tuple(stored.info.metadata["target_names"])
        version = stored.info.labels.get("version") or stored.tag.version
        config = CONFIG.with_model_defaults(model_name=stored.tag.name, model_version=version)
        paths = ("model",) if LOOKUP.mode == "online" else ("model", "lookup")
        runtime = ServingRuntime(config, metrics=runtime_metrics(), paths=paths)
        self.lookups, state = open_lookup(
            LOOKUP,
            model=self.predict_labels,
            model_version=runtime.origin.version,
            wait_timeout_s=CONFIG.store_busy_timeout_s,
        )
        self.store_calls = StoreCalls(threads=CONFIG.store_threads, deadline_s=CONFIG.store_timeout_s)
        log.info("%s", state)
        self.truth = GroundTruth.start(config, origin=runtime.origin, calls=self.store_calls)
        runtime.log = self.truth.writer
        self.runtime = runtime

    @bentoml.on_shutdown
    def stop_ground_truth(self) -> None:
        """Write what the prediction log still queues (bounded) before the process ends."""
        if self.truth is not None:
            self.truth.stop(timeout_s=CONFIG.store_timeout_s)

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded; a lookup-only pod also needs a store that has not been
        failing for ``MODELROLLOUT_STORE_UNREADY_AFTER_S`` (hybrid pods answer from the model).

        Never waits for the store: it starts a background re-read (at most every second) whose
        outcome the next probe sees, so an unready pod notices a recovered store by itself.
        """
        if self.runtime is None:
            return False
        if self.lookups is None:
            return True
        lookups, calls = self.lookups, self.store_calls
        calls.probe(lambda: lookups.version(force=calls.health.failing_since is not None, strict=True))
        return LOOKUP.mode != "batch" or calls.ready(unready_after_s=CONFIG.store_unready_after_s)

    def predict_labels(self, rows: list[list[float]]) -> list[str]:
        """The model call alone (no logging, no metrics): the piece a hybrid service wraps."""
        indices = self.model.predict(np.asarray(rows, dtype=np.float64))
        return [self.class_names[int(i)] for i in indices]

    @bentoml.api
    async def predict(self, rows: Rows, ctx: bentoml.Context) -> PredictResponse:
        request_id = _request_id(ctx)
        await self.runtime.before_prediction()
        labels = await asyncio.to_thread(self.predict_labels, rows)
        receipt = self.runtime.after_prediction(
            request_id,
            labels,
            paths="model",
            client_request_id=client_request_id_from_scope(ctx.request.scope),
        )
        return PredictResponse(predictions=labels, **vars(receipt))

    @bentoml.api
    async def lookup(self, keys: Keys, ctx: bentoml.Context, rows: Rows | None = None) -> LookupResponse:
        request_id = _request_id(ctx)
        reply = {"mode": LOOKUP.mode, **vars(self.runtime.receipt(request_id))}
        if self.lookups is None:
            ctx.response.status_code = 400
            return LookupResponse(answers=[], message=NOT_ENABLED, **reply)
        if rows is not None and len(rows) != len(keys):
            ctx.response.status_code = 400
            return LookupResponse(answers=[], message=f"{len(rows)} rows for {len(keys)} keys: give one row per key, or none", **reply)  # fmt: skip
        await self.runtime.before_prediction()
        answers = await answer_all(self.lookups, self.store_calls, keys, rows)
        record(
            self.runtime,
            request_id,
            answers,
            client_request_id=client_request_id_from_scope(ctx.request.scope),
        )
        ctx.response.status_code = http_status(answers)
        message = (
            next((a.message for a in answers if a.status == 503), None)
            if ctx.response.status_code == 503
            else None
        )
        return LookupResponse(answers=answers, message=message, **reply)

    @bentoml.api
    async def feedback(
        self,
        request_id: RequestId,
        label: Label,  # type: ignore[valid-type]
        ctx: bentoml.Context,
        row: Annotated[int, Field(strict=True, ge=0, le=CONFIG.max_rows - 1)] = 0,
    ) -> FeedbackResponse:
        """Reached only with the bearer token (FeedbackAuth answers 401/403 before the body is read)."""
        verdict = await self.truth.feedback.judge(request_id, row=row, label=label)
        ctx.response.status_code = STATUS[verdict.outcome]
        return FeedbackResponse(request_id=request_id, row=row, label=label, **vars(verdict))


def _request_id(ctx: bentoml.Context) -> str:
    """The id the middleware assigned (or, if it is not installed, a fresh one)."""
    return request_id_from_scope(ctx.request.scope) or new_request_id()


def openapi_document() -> dict:
    """BentoML's document with every status each endpoint really answers (see runtime.openapi)."""
    apis = IrisClassifier.apis
    refused = {
        413: Status(
            f"body over {CONFIG.max_body_bytes} bytes (MODELROLLOUT_MAX_BODY_BYTES), not read", (ErrorBody,)
        ),
        415: Status("Content-Type is not application/json", (ErrorBody,)),
        429: Status(
            f"over {CONFIG.max_concurrency} requests at once (MODELROLLOUT_MAX_CONCURRENCY), not read",
            (ErrorBody,),
        ),
        500: Status("server fault (a bug, or test-only injected errors)", (ErrorBody,)),
        504: Status("not answered within the 30 s request timeout", (ErrorBody,)),
    }
    invalid = Status("the body does not match the request schema", (ValidationErrorBody,))
    return document(
        IrisClassifier.openapi_spec.asdict(),
        apis={
            "/predict": (apis["predict"].input_spec, {200: Status("predictions", (PredictResponse,)), 400: invalid, **refused}),
            "/lookup": (apis["lookup"].input_spec, {
                200: Status("at least one key answered", (LookupResponse,)),
                400: Status("invalid body; lookups disabled (online mode); rows do not match keys; or every key malformed",
                            (ValidationErrorBody, LookupResponse)),
                404: Status("no key answered: not in the table (and no model answer)", (LookupResponse,)),
                503: Status("no key answered: the prediction store could not be asked", (LookupResponse,)),
                **refused,
            }),
            "/feedback": (apis["feedback"].input_spec, {
                200: Status("accepted: the label is stored (correct says whether it matched)", (FeedbackResponse,)),
                400: invalid,
                401: Status("no 'Authorization: Bearer <token>' with the configured token; body not read", (ErrorBody,)),
                403: Status("feedback is disabled: no token configured (MODELROLLOUT_FEEDBACK_TOKEN)", (ErrorBody,)),
                404: Status("unknown_request: no prediction logged for this request id and row", (FeedbackResponse,)),
                409: Status("duplicate: this prediction has a label already; the first one counts", (FeedbackResponse,)),
                503: Status("unavailable: the prediction store could not be asked; send it again", (FeedbackResponse,)),
                **refused,
            }),
        },
        secured={"/feedback": "feedbackToken"},
        infra={"/readyz": {200: Status("ready", media_type="text/plain"),
                           503: Status("not ready: loading, or (batch mode) the store has been failing", media_type="text/plain")}},
    )  # fmt: skip


API_ROUTES = [api.route for api in IrisClassifier.apis.values()]
IrisClassifier.add_asgi_middleware(RequestIdMiddleware)  # outermost of ours: refusals carry the id too
IrisClassifier.add_asgi_middleware(  # before the body guard: an unauthorised body is never read
    FeedbackAuth,
    token=CONFIG.token,
    count=lambda outcome: log_counters().count_label(outcome),
    log_rate=CONFIG.client_error_logs_per_s,
)
IrisClassifier.add_asgi_middleware(
    RequestGuard,
    max_body_bytes=CONFIG.max_body_bytes,
    paths=API_ROUTES,
    log_rate=CONFIG.client_error_logs_per_s,
)
IrisClassifier.add_asgi_middleware(OpenApiDocs, build=openapi_document)
install_endpoint_labels(API_ROUTES)
