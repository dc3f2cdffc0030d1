"""Cost parameters and service goals of the advisor, checked on construction.

Kept apart from the estimates (`costs`) so the CLI can build its flags from these fields, with
their defaults and limits, without importing numpy or pyarrow.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field


class CostParams(BaseModel):
    """Prices and service goals; every field is checked so nonsense fails before any estimate."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    storage_cost_per_gb_month: float = Field(0.10, gt=0, allow_inf_nan=False)
    cpu_cost_per_core_hour: float = Field(0.04, gt=0, allow_inf_nan=False)
    latency_target_ms: float = Field(200.0, gt=0, le=3_600_000, allow_inf_nan=False, description="p99 goal")
    staleness_hours: float = Field(24.0, ge=0, le=24 * 366, allow_inf_nan=False)
    max_unseen_share: float = Field(
        0.001, ge=0, lt=1, allow_inf_nan=False, description="share of requests static serving may miss"
    )
    model_min_cores: float = Field(0.5, ge=0, allow_inf_nan=False, description="always-on model server cores")
    online_cpu_utilization: float = Field(0.6, gt=0, le=1, allow_inf_nan=False)
    batch_max_cores: float = Field(
        16.0, gt=0, allow_inf_nan=False, description="cores a precompute run may use"
    )
    min_hybrid_saving: float = Field(
        0.10, ge=0, lt=1, allow_inf_nan=False, description="share hybrid must save over a single-path mode"
    )
