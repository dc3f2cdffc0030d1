"""The ModelDeployment spec: the top of the API."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, ValidationError, model_validator

from modelrollout.api.base import ApiModel, Duration
from modelrollout.api.batch import Batch
from modelrollout.api.checks import PrometheusProvider
from modelrollout.api.gates import Gates
from modelrollout.api.ground_truth import GroundTruth
from modelrollout.api.rollout import Rollout
from modelrollout.api.serving import ModelRef, Serving

Mode = Literal["online", "batch", "hybrid"]
CLASS_TEMPLATES = ("precision", "recall", "false-positive-rate")
CLASS_TEMPLATES_CEL = "[" + ", ".join(f"'{t}'" for t in CLASS_TEMPLATES) + "]"
SQLITE_LOG_NEEDS_VOLUME = (
    "a SQLite groundTruth.store needs a volume every serving pod shares: groundTruth.volumeClaimName "
    "(or spec.batch.volumeClaimName); else each pod's log would be lost"
)
NEEDS_POSITIVE_CLASS = "precision, recall and false-positive-rate checks need spec.groundTruth.positiveClass"


class Advisor(ApiModel):
    """Live serving-mode advice (hybrid only): status.advice says whether the head pays off."""

    prometheus: PrometheusProvider
    interval: Duration = Field(default="15m", description="How often the advice is refreshed.")
    window: Annotated[str, Field(pattern=r"^[1-9][0-9]*[smh]$", max_length=16)] = Field(
        default="1h", description="Window of live traffic the figures are measured over."
    )


class ModelDeploymentSpec(ApiModel):
    """Desired state: which model, served how, replaced how."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.mode == 'online' || has(self.batch)",
                    "message": "mode batch and hybrid need spec.batch with a schedule",
                },
                {
                    "rule": "!has(self.advisor) || self.mode == 'hybrid'",
                    "message": "spec.advisor reads hybrid lookup metrics: it needs mode hybrid",
                },
                {
                    "rule": "!has(self.rollout) || !has(self.rollout.analysis) || "
                    "!has(self.rollout.analysis.metrics) || "
                    "!self.rollout.analysis.metrics.exists(m, m.template in " + CLASS_TEMPLATES_CEL + ") || "
                    "(has(self.groundTruth) && has(self.groundTruth.positiveClass))",
                    "message": NEEDS_POSITIVE_CLASS,
                },
                {
                    "rule": "!has(self.groundTruth) || !has(self.groundTruth.store) || "
                    "self.groundTruth.store.type != 'sqlite' || has(self.groundTruth.volumeClaimName) || "
                    "(has(self.batch) && has(self.batch.volumeClaimName))",
                    "message": SQLITE_LOG_NEEDS_VOLUME,
                },
            ]
        }
    }

    model: ModelRef
    mode: Mode = Field(
        default="online", description="online: model; batch: lookup; hybrid: lookup then model."
    )
    serving: Serving = Field(default=Serving())
    rollout: Rollout = Field(default=Rollout())
    batch: Batch | None = None
    gates: Gates | None = None
    ground_truth: GroundTruth | None = Field(
        default=None, description="The shared prediction log, its labels, and who may send labels."
    )
    advisor: Advisor | None = None

    @model_validator(mode="after")
    def _batch_when_needed(self) -> ModelDeploymentSpec:
        if self.mode != "online" and self.batch is None:
            raise ValueError(f"mode {self.mode} needs spec.batch with a schedule")
        if self.advisor is not None and self.mode != "hybrid":
            raise ValueError("spec.advisor reads hybrid lookup metrics: it needs mode hybrid")
        analysis = self.rollout.analysis
        uses_class = analysis is not None and any(m.template in CLASS_TEMPLATES for m in analysis.metrics)
        if uses_class and (self.ground_truth is None or self.ground_truth.positive_class is None):
            raise ValueError(NEEDS_POSITIVE_CLASS)
        truth = self.ground_truth
        sqlite_log = truth is not None and truth.store is not None and truth.store.type == "sqlite"
        shared = truth is not None and truth.volume_claim_name is not None
        if sqlite_log and not shared and (self.batch is None or self.batch.volume_claim_name is None):
            raise ValueError(SQLITE_LOG_NEEDS_VOLUME)
        return self


class SpecError(ValueError):
    """A spec the operator cannot act on, with a message fit for a condition and an event."""


def parse_spec(raw: dict[str, Any]) -> ModelDeploymentSpec:
    """Parse a spec from the wire, turning pydantic's errors into one readable message."""
    try:
        return ModelDeploymentSpec.model_validate(raw)
    except ValidationError as exc:
        raise SpecError(format_validation_error(exc)) from None


def format_validation_error(exc: ValidationError, limit: int = 5) -> str:
    """`spec.serving.replicas: Input should be greater than or equal to 0; ...` (bounded)."""
    parts = []
    for error in exc.errors()[:limit]:
        where = ".".join(str(p) for p in ("spec", *error["loc"]))
        parts.append(f"{where}: {error['msg']}")
    more = len(exc.errors()) - limit
    if more > 0:
        parts.append(f"and {more} more")
    return "; ".join(parts)
