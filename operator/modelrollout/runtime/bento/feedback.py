"""``/feedback`` as a BentoML API of any service that mixes in :class:`~.mixin.ModelRollout`.

Built per service class (:func:`feedback_api`), because the ``label`` field's type is the model's
own: with the classes given (``labels=(...)``) it is an enum of them, so a typo is a 400 and never
an "incorrect"; without, free text of at most ``MODELROLLOUT_MAX_LABEL_CHARS`` (a regressor's
``"12.5"``: the figures compare numbers as numbers). The bearer token is checked before the body
is read (:class:`~modelrollout.runtime.ground_truth.feedback.FeedbackAuth`, installed by
:func:`~.wiring.instrument`); the label joins the shared prediction log through the store pool.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, Literal

import bentoml
from pydantic import BaseModel, Field, create_model

from ..config import RuntimeConfig
from ..ground_truth.feedback import STATUS
from ..requestid import MAX_REQUEST_ID_LENGTH

FEEDBACK_ROUTE = "/feedback"
RequestId = Annotated[str, Field(min_length=1, max_length=MAX_REQUEST_ID_LENGTH, pattern=r"^[\x21-\x7e]+$")]
Track = Literal["stable", "canary"]
Outcome = Literal["accepted", "duplicate", "unknown_request", "unavailable"]


def label_type(labels: Sequence[str] | None, config: RuntimeConfig) -> Any:
    """The type of a label (and of a prediction): the model's classes, or bounded free text."""
    if labels:
        return Literal[tuple(labels)]  # type: ignore[valid-type]
    return Annotated[str, Field(min_length=1, max_length=config.max_label_chars)]


def feedback_models(label: Any, *, max_rows: int) -> tuple[type[BaseModel], type[BaseModel]]:
    """(request, response) models of ``/feedback`` for one label type."""
    row = Annotated[int, Field(strict=True, ge=0, le=max_rows - 1)]
    request = create_model("FeedbackRequest", request_id=(RequestId, ...), label=(label, ...), row=(row, 0))
    response = create_model(
        "FeedbackResponse",
        request_id=(str, ...),
        row=(int, ...),
        label=(label, ...),
        outcome=(Outcome, ...),
        correct=(bool | None, Field(default=None, description="accepted: the label equals the prediction")),
        predicted=(str | None, None),
        model=(str | None, Field(default=None, description="who made the prediction (any pod, any track)")),
        version=(str | None, None),
        track=(Track | None, None),
        detail=(str | None, None),
    )
    return request, response


def feedback_api(labels: Sequence[str] | None, config: RuntimeConfig) -> Any:
    """The ``/feedback`` API method (a ``bentoml.api``) for a service with these ``labels``."""
    request, response = feedback_models(label_type(labels, config), max_rows=config.max_rows)

    async def feedback(self: Any, request_id: str, label: str, ctx: bentoml.Context, row: int = 0) -> Any:
        """Reached only with the bearer token (FeedbackAuth answers 401/403 before the body is read)."""
        verdict = await self.modelrollout_parts().truth.feedback.judge(request_id, row=row, label=label)
        ctx.response.status_code = STATUS[verdict.outcome]
        return response(request_id=request_id, row=row, label=label, **vars(verdict))

    return bentoml.api(route=FEEDBACK_ROUTE, input_spec=request, output_spec=response)(feedback)
