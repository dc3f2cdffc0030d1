"""`spec.groundTruth`: where predictions are logged and labels joined, and who may send labels.

Every prediction is logged (request id assigned by the server, time, version, track, key,
prediction) to a store every pod and Job reaches; labels arrive later through `/feedback` on any
pod (with the bearer token) or in bulk (`modelrollout-batch labels import`). The accuracy-type
checks (accuracy, mae, rmse, precision, recall, false-positive-rate) are computed from that join.
"""

from __future__ import annotations

from typing import Annotated

from pydantic import Field

from modelrollout.api.base import ApiModel, Duration, ObjectName
from modelrollout.api.batch import PredictionStore
from modelrollout.api.checks import SecretKeySelector


class GroundTruth(ApiModel):
    """The shared prediction log and its labels."""

    store: PredictionStore | None = Field(
        default=None,
        description="Where the prediction log and labels live; default: spec.batch.store. Without "
        "either, each pod logs to its own SQLite file, and a label must reach the pod that predicted.",
    )
    retention: Duration = Field(
        default="168h",
        description="How long predictions and labels are kept (by time, never by count).",
    )
    feedback_token_secret_ref: SecretKeySelector | None = Field(
        default=None,
        description="Secret key holding the bearer token /feedback requires. Without it, /feedback "
        "is disabled (403): nobody who merely reaches the service can decide the accuracy.",
    )
    volume_claim_name: ObjectName | None = Field(
        default=None,
        description="PVC mounted at /data in the serving pods (when spec.batch names none) for a SQLite "
        "log every pod shares (ReadWriteMany when the pods run on several nodes; else PostgreSQL).",
    )
    positive_class: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="The positive class, for the precision, recall and false-positive-rate checks.",
    )
