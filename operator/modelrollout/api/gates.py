"""`spec.gates`: quality gates around a rollout (reserved; enforced by the quality-gate work)."""

from __future__ import annotations

from pydantic import Field

from modelrollout.api.base import ApiModel, Duration
from modelrollout.api.cron import Schedule


class AccuracyGate(ApiModel):
    minimum: float = Field(ge=0, le=1, description="Lowest accuracy the serving model may have.")
    ratchet: bool = Field(default=False, description="Raise the minimum to what the champion achieved.")


class NowTest(ApiModel):
    schedule: Schedule
    window: Duration = "24h"


class Gates(ApiModel):
    """Quality gates around a rollout (filled by the quality-gate work)."""

    accuracy: AccuracyGate | None = None
    now_test: NowTest | None = None
