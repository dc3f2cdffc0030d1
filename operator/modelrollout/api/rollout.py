"""`spec.rollout`: how a new model version replaces the serving one (canary + analysis)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.base import ApiModel, Duration, ObjectName

MetricTemplate = Literal["latency-p50", "latency-p95", "latency-p99", "error-rate", "accuracy", "custom"]
CHECK_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"


class RolloutStep(ApiModel):
    """One step of the canary: route `setWeight` percent to the canary, then hold for `pause`."""

    set_weight: int = Field(ge=0, le=100, description="Percent of traffic to the canary.")
    pause: Duration | None = Field(
        default=None, description="How long to hold (and analyse) this weight; default: one interval."
    )


class RelativeThreshold(ApiModel):
    """A bound relative to the stable track measured over the same window."""

    max_ratio: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="canary <= maxRatio * stable (e.g. 1.2 for latency)."
    )
    max_increase: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="canary <= stable + maxIncrease (e.g. 0.01 for error rate)."
    )
    max_decrease: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="canary >= stable - maxDecrease (e.g. 0.02 for accuracy)."
    )


class MetricCheck(ApiModel):
    """A check run at every analysis interval against the canary track."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.template != 'custom' || has(self.query)",
                    "message": "a custom metric needs a query",
                },
                {
                    "rule": "has(self.min) || has(self.max) || has(self.relativeToStable)",
                    "message": "a metric needs at least one of min, max or relativeToStable",
                },
            ]
        }
    }

    name: Annotated[str, Field(min_length=1, max_length=63, pattern=CHECK_NAME_PATTERN)]
    template: MetricTemplate = Field(description="A built-in query, or custom with `query`.")
    query: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None,
        description="PromQL for template=custom; may use {{namespace}}, {{name}}, {{track}}, "
        "{{version}}, {{interval}}.",
    )
    min: float | None = Field(default=None, description="The check fails below this value.")
    max: float | None = Field(default=None, description="The check fails above this value.")
    relative_to_stable: RelativeThreshold | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetricCheck:
        if self.template == "custom" and not self.query:
            raise ValueError(f"metric {self.name}: a custom metric needs a query")
        if self.min is None and self.max is None and self.relative_to_stable is None:
            raise ValueError(f"metric {self.name}: needs at least one of min, max or relativeToStable")
        if self.min is not None and self.max is not None and self.min > self.max:
            raise ValueError(f"metric {self.name}: min {self.min} is above max {self.max}")
        return self


class SecretKeySelector(ApiModel):
    name: ObjectName
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")] = "token"


class PrometheusProvider(ApiModel):
    address: Annotated[str, Field(min_length=1, max_length=512, pattern=r"^https?://[^\s]+$")] = Field(
        description="Base URL of the Prometheus HTTP API, e.g. http://prometheus.monitoring:9090."
    )
    auth_secret_ref: SecretKeySelector | None = Field(
        default=None, description="Secret key holding a bearer token for Prometheus."
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Do not verify Prometheus' TLS certificate (https addresses). Off by default.",
    )


class Analysis(ApiModel):
    """How the canary is judged at every interval."""

    prometheus: PrometheusProvider
    interval: Duration = Field(default="30s", description="Time between analysis runs.")
    min_samples: int = Field(
        default=20,
        ge=0,
        le=1_000_000,
        description="Fewer canary requests than this in a window is inconclusive, never a pass.",
    )
    failure_limit: int = Field(
        default=0, ge=0, le=100, description="Failures tolerated; one more rolls back."
    )
    consecutive_failure_limit: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None, description="Roll back after this many failures in a row."
    )
    error_limit: int = Field(
        default=3, ge=0, le=100, description="Provider errors (unreachable, invalid query) tolerated."
    )
    metrics: Annotated[list[MetricCheck], Field(min_length=1, max_length=32)] = Field(
        description="The checks, keyed by name: two checks with one name are refused at apply time.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _unique_names(self) -> Analysis:
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)):
            raise ValueError("analysis.metrics: names must be unique")
        return self


class GatewayRoute(ApiModel):
    """The Gateway API HTTPRoute that the gatewayAPI router owns."""

    parent_refs: Annotated[list[GatewayParentRef], Field(min_length=1, max_length=16)]
    hostnames: Annotated[list[Annotated[str, Field(max_length=253)]], Field(max_length=16)] = Field(
        default=[]
    )


class GatewayParentRef(ApiModel):
    name: ObjectName
    namespace: ObjectName | None = None
    section_name: Annotated[str, Field(max_length=253)] | None = None


class Rollout(ApiModel):
    """Canary rollout of a new model version."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.steps) && size(self.steps) > 0 && has(self.stepWeight))",
                    "message": "use either steps or stepWeight/maxWeight, not both",
                },
                {
                    "rule": "self.router != 'gatewayAPI' || has(self.gateway)",
                    "message": "router gatewayAPI needs rollout.gateway",
                },
                {
                    "rule": "!has(self.stepWeight) || self.stepWeight <= self.maxWeight",
                    "message": "stepWeight must not exceed maxWeight",
                },
            ]
        }
    }

    router: Literal["replicas", "gatewayAPI"] = Field(
        default="replicas", description="How weights become traffic: replica ratio or HTTPRoute weights."
    )
    gateway: GatewayRoute | None = None
    steps: Annotated[list[RolloutStep], Field(max_length=32)] = Field(
        default=[], description="Explicit weight steps; default 10%, 50%, then full."
    )
    step_weight: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None, description="Alternative to steps: add this much weight per interval."
    )
    max_weight: int = Field(default=50, ge=1, le=100, description="Last weight before promotion.")
    analysis: Analysis | None = Field(default=None, description="Without analysis, steps only wait.")
    progress_deadline: Duration = Field(
        default="10m",
        description="Longest a rollout may make no progress (e.g. inconclusive) before failing.",
    )
    scale_down_delay: Duration = Field(
        default="30s", description="Delay before a rolled-back or replaced track is scaled to zero."
    )
    paused: bool = Field(default=False, description="Hold the rollout at its current step.")

    @model_validator(mode="after")
    def _consistent(self) -> Rollout:
        if self.steps and self.step_weight is not None:
            raise ValueError("rollout: use either steps or stepWeight/maxWeight, not both")
        if self.router == "gatewayAPI" and self.gateway is None:
            raise ValueError("rollout: router gatewayAPI needs rollout.gateway")
        if self.step_weight is not None and self.step_weight > self.max_weight:
            raise ValueError("rollout: stepWeight must not exceed maxWeight")
        return self


GatewayRoute.model_rebuild()
