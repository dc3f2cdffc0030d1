"""The ModelDeployment status: what the operator observed and decided.

Everything the operator needs to resume after a restart lives here (level-based reconcile);
it is written only through the status subresource.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from modelrollout.api.base import ApiModel

Phase = Literal["Pending", "Ready", "Progressing", "Paused", "Promoting", "Succeeded", "RolledBack",
                "Degraded", "Failed"]
ConditionStatus = Literal["True", "False", "Unknown"]


class StatusModel(ApiModel):
    """Status objects tolerate fields they do not know (written by a newer operator)."""

    model_config = ApiModel.model_config | ConfigDict(extra="ignore")


class Condition(StatusModel):
    """A condition per the Kubernetes API conventions."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    reason: Annotated[str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")]
    message: Annotated[str, Field(max_length=32768)] = ""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    last_transition_time: str = Field(description="RFC 3339 time the status last changed.")


class ModelDeploymentStatus(StatusModel):
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    phase: Phase | None = None
    message: Annotated[str, Field(max_length=4096)] | None = None
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(
        default=[],
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    stable_version: str | None = None
    stable_image: str | None = None
    canary_version: str | None = None
    canary_weight: Annotated[int, Field(ge=0, le=100)] | None = None
    replicas: Annotated[int, Field(ge=0)] | None = None
    ready_replicas: Annotated[int, Field(ge=0)] | None = None
    selector: str | None = Field(default=None, description="Label selector of the serving pods.")


def parse_status(raw: dict[str, Any] | None) -> ModelDeploymentStatus:
    """Parse status as stored; an unreadable status starts afresh rather than crashing."""
    try:
        return ModelDeploymentStatus.model_validate(raw or {})
    except ValueError:
        return ModelDeploymentStatus()
