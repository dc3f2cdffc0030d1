"""Example serving bento: an iris classifier on the modelrollout runtime.

Endpoints (JSON over HTTP POST, BentoML 1.4):

``/predict``  ``{"rows": [[5.1, 3.5, 1.4, 0.2], ...]}`` (1..1000 rows of 4 finite floats:
    sepal length, sepal width, petal length, petal width in cm) ->
    ``{"request_id", "predictions": ["setosa", ...], "model", "version", "track"}``.
``/lookup``  ``{"keys": [17, 42, ...], "rows": [[f, f, f, f], ...]}`` (``rows`` optional, one per key)
    -> ``{"request_id", "mode", "answers": [{"key", "found", "prediction", "source", "model_version",
    "run_id", "message"}, ...], "model", "version", "track"}``: predictions published by the batch
    runner (``source: lookup``); in hybrid mode keys the table lacks are answered by the model from
    their row (``source: model``). HTTP 404 when no key was answered, 400 when
    ``MODELROLLOUT_MODE=online``, 503 when the prediction store cannot be read. See ``lookup_api.py``.
``/feedback`` ``{"request_id": "...", "label": "setosa", "row": 0}`` (row defaults to 0) ->
    ``{"request_id", "row", "label", "outcome", "predicted", "model", "version", "track", "detail"}``
    with outcome ``correct`` | ``incorrect`` | ``duplicate`` (HTTP 200), ``unknown_request`` (404),
    ``invalid_label`` (400). ``row`` is the row of a ``/predict`` or the key's index in a ``/lookup``.

Every response carries ``X-Request-ID`` (the caller's, if valid, else a new one). Settings come from
the ``MODELROLLOUT_*`` environment (see ``modelrollout.runtime.config``); the model from
``MODELROLLOUT_MODEL_TAG`` (default ``iris-classifier:latest``).

One worker per pod on purpose: the prediction log that feedback joins against lives in the
process. Scale with replicas.
"""

from __future__ import annotations

import asyncio
import logging
import os
from typing import Annotated

import bentoml
import numpy as np
from lookup_api import (
    NOT_ENABLED,
    LookupKey,
    LookupResponse,
    LookupSettings,
    UnansweredRowsLog,
    answer_all,
    failure,
    http_status,
    open_lookup,
    record,
)
from pydantic import BaseModel, Field

from modelrollout.runtime.config import RuntimeConfig
from modelrollout.runtime.metrics import runtime_metrics
from modelrollout.runtime.requestid import (
    MAX_REQUEST_ID_LENGTH,
    REQUEST_ID_HEADER,
    RequestIdMiddleware,
    request_id_from_scope,
    resolve_request_id,
)
from modelrollout.runtime.serving import ServingRuntime

DEFAULT_MODEL_TAG = "iris-classifier:latest"
MAX_ROWS = 1000
# Finer than Prometheus' default buckets (which start at 5 ms): a small model answers in ~1-3 ms
# and the canary latency gate compares quantiles.
DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]

# Parsed at import: a bad MODELROLLOUT_* value stops `bentoml serve` with a message naming it.
CONFIG = RuntimeConfig.from_env(os.environ)
LOOKUP = LookupSettings.from_env(os.environ)
log = logging.getLogger("bentoml.iris")

FeatureRow = Annotated[
    list[Annotated[float, Field(allow_inf_nan=False)]],
    Field(
        min_length=4, max_length=4, description="sepal length, sepal width, petal length, petal width (cm)"
    ),
]
RequestId = Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH, pattern=r"^[\x21-\x7e]+$")]


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[str]
    model: str
    version: str
    track: str


class FeedbackResponse(BaseModel):
    request_id: str
    row: int
    label: str
    outcome: str
    predicted: str | None = None
    model: str
    version: str
    track: str
    detail: str | None = None


@bentoml.service(
    workers=1,
    traffic={"timeout": 30},
    metrics={"enabled": True, "namespace": "bentoml_service", "duration": {"buckets": DURATION_BUCKETS}},
)
class IrisClassifier:
    model_ref = bentoml.models.BentoModel(CONFIG.model_tag or DEFAULT_MODEL_TAG)

    def __init__(self) -> None:
        self.runtime: ServingRuntime | None = None
        self.lookups = None
        stored = self.model_ref
        self.model = bentoml.sklearn.load_model(stored)
        self.class_names: tuple[str, ...] = tuple(stored.info.metadata["target_names"])
        version = stored.info.labels.get("version") or stored.tag.version
        config = CONFIG.with_model_defaults(model_name=stored.tag.name, model_version=version)
        paths = ("model",) if LOOKUP.mode == "online" else ("model", "lookup")
        runtime = ServingRuntime(
            config,
            metrics=runtime_metrics(),
            log=UnansweredRowsLog(capacity=config.prediction_log_size),
            paths=paths,
        )
        self.lookups, state = open_lookup(
            LOOKUP, model=self.predict_labels, model_version=runtime.origin.version
        )
        log.info("%s", state)
        self.runtime = runtime

    def __is_ready__(self) -> bool:
        """Ready only once the model is loaded and the runtime is set up."""
        return self.runtime is not None

    def predict_labels(self, rows: list[list[float]]) -> list[str]:
        """The model call alone (no logging, no metrics): the piece a hybrid service wraps."""
        indices = self.model.predict(np.asarray(rows, dtype=np.float64))
        return [self.class_names[int(i)] for i in indices]

    @bentoml.api
    async def predict(
        self,
        rows: Annotated[list[FeatureRow], Field(min_length=1, max_length=MAX_ROWS)],
        ctx: bentoml.Context,
    ) -> PredictResponse:
        request_id = _request_id(ctx)
        await self.runtime.before_prediction()
        labels = await asyncio.to_thread(self.predict_labels, rows)
        receipt = self.runtime.after_prediction(request_id, labels, paths="model")
        return PredictResponse(predictions=labels, **vars(receipt))

    @bentoml.api
    async def lookup(
        self,
        keys: Annotated[list[LookupKey], Field(min_length=1, max_length=MAX_ROWS)],
        ctx: bentoml.Context,
        rows: Annotated[list[FeatureRow], Field(min_length=1, max_length=MAX_ROWS)] | None = None,
    ) -> LookupResponse:
        request_id = _request_id(ctx)
        reply = {"mode": LOOKUP.mode, **vars(self.runtime.receipt(request_id))}
        if self.lookups is None:
            ctx.response.status_code = 400
            return LookupResponse(answers=[], message=NOT_ENABLED, **reply)
        if rows is not None and len(rows) != len(keys):
            ctx.response.status_code = 400
            return LookupResponse(answers=[], message=f"{len(rows)} rows for {len(keys)} keys: give one row per key, or none", **reply)  # fmt: skip
        await self.runtime.before_prediction()
        try:
            answers = await asyncio.to_thread(answer_all, self.lookups, keys, rows)
        except Exception as exc:  # noqa: BLE001 - the store is down or broken: say so, keep serving
            log.warning("lookup failed: %s", exc)
            ctx.response.status_code, message = failure(exc)
            return LookupResponse(answers=[], message=message, **reply)
        record(self.runtime, request_id, answers)
        ctx.response.status_code = http_status(answers)
        return LookupResponse(answers=answers, **reply)

    @bentoml.api
    async def feedback(
        self,
        request_id: RequestId,
        label: Annotated[str, Field(min_length=1, max_length=256)],
        ctx: bentoml.Context,
        row: Annotated[int, Field(ge=0, le=MAX_ROWS - 1)] = 0,
    ) -> FeedbackResponse:
        receipt = vars(self.runtime.receipt(request_id))
        if label not in self.class_names:
            ctx.response.status_code = 400
            return FeedbackResponse(
                row=row,
                label=label,
                outcome="invalid_label",
                detail=f"label must be one of {', '.join(self.class_names)}",
                **receipt,
            )
        verdict = self.runtime.feedback(request_id, label=label, row=row)
        detail = None
        if verdict.outcome == "unknown_request":
            ctx.response.status_code = 404
            detail = (
                "no prediction logged for this request id and row "
                "(never seen, a lookup key that was not answered, or evicted from the log)"
            )
        elif verdict.outcome == "duplicate":
            detail = "feedback for this prediction was already counted; not counted again"
        if verdict.origin is not None:
            receipt.update(
                model=verdict.origin.model, version=verdict.origin.version, track=verdict.origin.track
            )
        return FeedbackResponse(
            row=row,
            label=label,
            outcome=verdict.outcome,
            predicted=verdict.predicted,
            detail=detail,
            **receipt,
        )


IrisClassifier.add_asgi_middleware(RequestIdMiddleware)


def _request_id(ctx: bentoml.Context) -> str:
    """The id the middleware resolved (or, if it is not installed, one resolved from the header)."""
    request = ctx.request
    return request_id_from_scope(request.scope) or resolve_request_id(request.headers.get(REQUEST_ID_HEADER))
