"""Example bento #2: a churn classifier whose API is ``/classify`` on named fields, on the
modelrollout runtime as an installed wheel (no copy of the runtime in this folder).

``/classify``  ``{"tenure_months": 12, "monthly_charges": 89.9, "support_calls": 3, "contract":
    "month-to-month"}`` -> ``{"request_id", "label": "churn" | "stay", "churn_probability", "model",
    "version", "track"}``: one customer per request.
``/feedback``  ``{"request_id": "...", "label": "churn"}`` with ``Authorization: Bearer <token>``
    (``MODELROLLOUT_FEEDBACK_TOKEN``): the outcome once it is known (from ``ModelRollout``).

This was a plain BentoML service; the lines marked ``# modelrollout`` are all it took to give it
server-assigned request ids, the shared prediction log, ``/feedback``, the accuracy figures, the
request guards and route-labelled metrics (see ``modelrollout.runtime.bento``). The model is
``$MODELROLLOUT_MODEL_TAG`` (default ``churn-model:latest``), trained by train.py.
"""

from __future__ import annotations

import asyncio
import os
from typing import Annotated, Literal

import bentoml
import pandas as pd
from pydantic import BaseModel, Field

from modelrollout.runtime.bento import ModelRollout, instrument  # modelrollout

MODEL_TAG = os.environ.get("MODELROLLOUT_MODEL_TAG", "").strip() or "churn-model:latest"
Outcome = Literal["churn", "stay"]
Contract = Literal["month-to-month", "one-year", "two-year"]
Months = Annotated[int, Field(strict=True, ge=0, le=600, description="months as a customer")]
Charges = Annotated[float, Field(ge=0, le=100_000, allow_inf_nan=False, description="monthly bill")]
Calls = Annotated[int, Field(strict=True, ge=0, le=1000, description="support calls, last 12 months")]


class Verdict(BaseModel):
    request_id: str  # modelrollout: quote it in /feedback
    label: Outcome
    churn_probability: float
    model: str  # modelrollout: who answered
    version: str
    track: str


@instrument  # modelrollout
@bentoml.service(workers=1, traffic={"timeout": 10})
class ChurnClassifier(ModelRollout, labels=("churn", "stay")):  # modelrollout
    model_ref = bentoml.models.BentoModel(MODEL_TAG)

    def __init__(self) -> None:
        self.model = bentoml.sklearn.load_model(self.model_ref)
        self.churn_column = list(self.model.classes_).index("churn")
        super().__init__(model=self.model_ref)  # modelrollout

    def churn_probability(self, frame: pd.DataFrame) -> float:
        return float(self.model.predict_proba(frame)[0][self.churn_column])

    @bentoml.api
    async def classify(
        self,
        tenure_months: Months,
        monthly_charges: Charges,
        support_calls: Calls,
        contract: Contract,
        ctx: bentoml.Context,
    ) -> Verdict:
        frame = pd.DataFrame(
            [{"tenure_months": tenure_months, "monthly_charges": monthly_charges,
              "support_calls": support_calls, "contract": contract}]
        )  # fmt: skip
        probability = await asyncio.to_thread(self.churn_probability, frame)
        label: Outcome = "churn" if probability >= 0.5 else "stay"
        receipt = await self.record_predictions(ctx, [label])  # modelrollout
        return Verdict(label=label, churn_probability=probability, **vars(receipt))
