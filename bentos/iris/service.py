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
``MODELROLLOUT_MODEL_TAG`` (default ``iris-classifier:latest``). The runtime is wired in as any
bento can (``modelrollout.runtime.bento``: the ``ModelRollout`` mixin and ``@instrument``); this
service adds ``/lookup`` and its readiness on top.

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

from modelrollout.runtime.bento import ModelRollout, instrument
from modelrollout.runtime.config import RuntimeConfig
from modelrollout.runtime.openapi import Status, ValidationErrorBody
from modelrollout.runtime.requestid import client_request_id_from_scope

DEFAULT_MODEL_TAG = "iris-classifier:latest"

# Parsed at import: a bad MODELROLLOUT_* value stops `bentoml serve` with a message naming it.
CONFIG = RuntimeConfig.from_env(os.environ)
LOOKUP = LookupSettings.from_env(os.environ)
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
Track = Literal["stable", "canary"]


class PredictResponse(BaseModel):
    request_id: str
    predictions: list[Label]  # type: ignore[valid-type]
    model: str
    version: str
    track: Track


STATUSES = {
    "/predict": {200: Status("predictions", (PredictResponse,))},
    "/lookup": {
        200: Status("at least one key answered", (LookupResponse,)),
        400: Status("invalid body; lookups disabled (online mode); rows do not match keys; or every key malformed",
                    (ValidationErrorBody, LookupResponse)),
        404: Status("no key answered: not in the table (and no model answer)", (LookupResponse,)),
        503: Status("no key answered: the prediction store could not be asked", (LookupResponse,)),
    },
    "/readyz": {200: Status("ready", media_type="text/plain"),
                503: Status("not ready: loading, or (batch mode) the store has been failing", media_type="text/plain")},
}  # fmt: skip


@instrument(statuses=STATUSES)
@bentoml.service(
    workers=1,
    traffic={"timeout": 30, "max_concurrency": CONFIG.max_concurrency},
)
class IrisClassifier(ModelRollout, labels=CLASSES):
    model_ref = MODEL

    def __init__(self) -> None:
        self.lookups = None
        stored = self.model_ref
        self.model = bentoml.sklearn.load_model(stored)
        self.class_names: tuple[str, ...] = tuple(stored.info.metadata["target_names"])
        paths = ("model",) if LOOKUP.mode == "online" else ("model", "lookup")
        super().__init__(model=stored, paths=paths)
        parts = self.modelrollout_parts()
        self.lookups, state = open_lookup(
            LOOKUP,
            model=self.predict_labels,
            model_version=parts.runtime.origin.version,
            wait_timeout_s=parts.config.store_busy_timeout_s,
        )
        log.info("%s", state)

    def __is_ready__(self) -> bool:
        """Ready once the model is loaded; a lookup-only pod also needs a store that has not been
        failing for ``MODELROLLOUT_STORE_UNREADY_AFTER_S`` (hybrid pods answer from the model).

        Never waits for the store: it starts a background re-read (at most every second) whose
        outcome the next probe sees, so an unready pod notices a recovered store by itself.
        """
        if not super().__is_ready__():
            return False
        if self.lookups is None:
            return True
        lookups, calls = self.lookups, self.modelrollout.calls
        calls.probe(lambda: lookups.version(force=calls.health.failing_since is not None, strict=True))
        return LOOKUP.mode != "batch" or calls.ready(unready_after_s=CONFIG.store_unready_after_s)

    def predict_labels(self, rows: list[list[float]]) -> list[str]:
        """The model call alone (no logging, no metrics): the piece a hybrid service wraps."""
        indices = self.model.predict(np.asarray(rows, dtype=np.float64))
        return [self.class_names[int(i)] for i in indices]

    @bentoml.api
    async def predict(self, rows: Rows, ctx: bentoml.Context) -> PredictResponse:
        labels = await asyncio.to_thread(self.predict_labels, rows)
        receipt = await self.record_predictions(ctx, labels)
        return PredictResponse(predictions=labels, **vars(receipt))

    @bentoml.api
    async def lookup(self, keys: Keys, ctx: bentoml.Context, rows: Rows | None = None) -> LookupResponse:
        runtime, calls = self.modelrollout.runtime, self.modelrollout.calls
        request_id = self.request_id(ctx)
        reply = {"mode": LOOKUP.mode, **vars(runtime.receipt(request_id))}
        if self.lookups is None:
            ctx.response.status_code = 400
            return LookupResponse(answers=[], message=NOT_ENABLED, **reply)
        if rows is not None and len(rows) != len(keys):
            ctx.response.status_code = 400
            return LookupResponse(answers=[], message=f"{len(rows)} rows for {len(keys)} keys: give one row per key, or none", **reply)  # fmt: skip
        await runtime.before_prediction()
        answers = await answer_all(self.lookups, calls, keys, rows)
        record(
            runtime, request_id, answers, client_request_id=client_request_id_from_scope(ctx.request.scope)
        )
        ctx.response.status_code = http_status(answers)
        message = (
            next((a.message for a in answers if a.status == 503), None)
            if ctx.response.status_code == 503
            else None
        )
        return LookupResponse(answers=answers, message=message, **reply)
