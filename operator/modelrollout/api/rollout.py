"""`spec.rollout`: how a new model version replaces the serving one (canary + analysis)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.base import ApiModel, Duration, ObjectName, parse_duration

MetricTemplate = Literal[
    "latency-p50",
    "latency-p95",
    "latency-p99",
    "error-rate",
    "accuracy",
    "mae",
    "rmse",
    "precision",
    "recall",
    "false-positive-rate",
    "custom",
]
CHECK_NAME_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
OnInconclusive = Literal["wait", "rollback", "pause"]

# Messages shared by the CRD's CEL rules and the operator's own parse (they must agree).
CUSTOM_NEEDS_SAMPLES = "a custom metric needs samplesQuery, or minSamples: 0 with minSamplesReason"
ZERO_SAMPLES_NEEDS_REASON = "minSamples: 0 needs minSamplesReason (why the check may pass on no samples)"
INTERVAL_BEYOND_DEADLINE = "analysis.interval must be shorter than progressDeadline"
RELATIVE_NEEDS_A_BOUND = "relativeToStable needs at least one of maxRatio, maxIncrease or maxDecrease"


class RolloutStep(ApiModel):
    """One step of the canary: route `setWeight` percent to the canary, then hold for `pause`."""

    set_weight: int = Field(ge=0, le=100, description="Percent of traffic to the canary.")
    pause: Duration | None = Field(
        default=None,
        description="How long to hold (and analyse) this weight; default: one interval. With analysis "
        "the step moves on only once the pause is over AND the latest analysis of the step passed. "
        "A hold is never a stall: it does not count against progressDeadline.",
    )


class RelativeThreshold(ApiModel):
    """A bound relative to the stable track measured over the same window."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.maxRatio) || has(self.maxIncrease) || has(self.maxDecrease)",
                    "message": RELATIVE_NEEDS_A_BOUND,
                }
            ]
        }
    }

    max_ratio: Annotated[float, Field(gt=0)] | None = Field(
        default=None, description="canary <= maxRatio * stable (e.g. 1.2 for latency)."
    )
    max_increase: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="canary <= stable + maxIncrease (e.g. 0.01 for error rate)."
    )
    max_decrease: Annotated[float, Field(ge=0)] | None = Field(
        default=None, description="canary >= stable - maxDecrease (e.g. 0.02 for accuracy)."
    )

    @model_validator(mode="after")
    def _bounded(self) -> RelativeThreshold:
        # An empty relativeToStable would satisfy "min, max or relativeToStable" and check nothing.
        if self.max_ratio is None and self.max_increase is None and self.max_decrease is None:
            raise ValueError(RELATIVE_NEEDS_A_BOUND)
        return self


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
                {
                    "rule": "self.template != 'custom' || has(self.samplesQuery) || "
                    "(has(self.minSamples) && self.minSamples == 0)",
                    "message": CUSTOM_NEEDS_SAMPLES,
                },
                {
                    "rule": "!has(self.minSamples) || self.minSamples > 0 || has(self.minSamplesReason)",
                    "message": ZERO_SAMPLES_NEEDS_REASON,
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
    samples_query: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None,
        description="PromQL counting the observations behind the canary value over the window "
        "(compared with minSamples; no data counts as 0). Built-in templates have their own "
        "(requests; accuracy: labelled feedback); a custom check must name one, or say minSamples: 0.",
    )
    min_samples: Annotated[int, Field(ge=0, le=1_000_000)] | None = Field(
        default=None,
        description="This check's sample gate (default analysis.minSamples): fewer samples is "
        "inconclusive, never a pass. 0 turns the gate off and needs minSamplesReason.",
    )
    min_samples_reason: Annotated[str, Field(min_length=1, max_length=256)] | None = Field(
        default=None,
        description="Why this check may pass on no samples at all (required with minSamples: 0).",
    )
    min: float | None = Field(default=None, description="The check fails below this value.")
    max: float | None = Field(default=None, description="The check fails above this value.")
    relative_to_stable: RelativeThreshold | None = None

    @model_validator(mode="after")
    def _consistent(self) -> MetricCheck:
        if self.template == "custom" and not self.query:
            raise ValueError(f"metric {self.name}: a custom metric needs a query")
        if self.template == "custom" and self.samples_query is None and self.min_samples != 0:
            raise ValueError(f"metric {self.name}: {CUSTOM_NEEDS_SAMPLES}")
        if self.min_samples == 0 and self.min_samples_reason is None:
            raise ValueError(f"metric {self.name}: {ZERO_SAMPLES_NEEDS_REASON}")
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
    """How the canary is judged at every interval.

    A step moves on (and the last one promotes) only on current evidence: the latest analysis
    of the step passed, every check with at least its minSamples. An inconclusive, error or
    failed analysis after a pass puts the step back to waiting for the next pass."""

    prometheus: PrometheusProvider
    interval: Duration = Field(
        default="30s",
        description="Time between analysis runs; the first one at a step waits one interval of data. "
        "Must be shorter than progressDeadline.",
    )
    min_samples: int = Field(
        default=20,
        ge=1,
        le=1_000_000,
        description="Every check's sample gate unless the check sets its own: fewer canary samples "
        "(requests; for accuracy, labelled feedback) in a window is inconclusive, never a pass.",
    )
    min_labels: int = Field(
        default=50,
        ge=1,
        le=10_000_000,
        description="The sample gate of ground-truth checks (accuracy, mae, rmse, precision, recall, "
        "false-positive-rate) unless the check sets minSamples: fewer labelled predictions of the "
        "version judged is inconclusive, never a pass.",
    )
    on_inconclusive: OnInconclusive = Field(
        default="wait",
        description="What an inconclusive analysis does: wait (hold the step and analyse again; "
        "progressDeadline bounds the wait), rollback (fail the rollout at once), or pause (hold the "
        "rollout for a person: retry, or pause and resume, continues it; promote and abort work too).",
    )
    failure_limit: int = Field(
        default=0, ge=0, le=100, description="Failed analyses tolerated in the rollout; one more rolls back."
    )
    consecutive_failure_limit: Annotated[int, Field(ge=1, le=100)] | None = Field(
        default=None,
        description="Roll back after this many failed analyses in a row. Only a pass ends a streak: "
        "inconclusive or error analyses between two failures neither end nor extend it.",
    )
    error_limit: int = Field(
        default=3,
        ge=0,
        le=100,
        description="Provider errors (unreachable, invalid query) tolerated in the whole rollout "
        "(a total that never resets); one more fails it. Errors never promote and are not failures.",
    )
    consecutive_error_limit: Annotated[int, Field(ge=0, le=100)] | None = Field(
        default=None,
        description="Provider errors in a row tolerated; one more fails the rollout. Any analysis "
        "that is not an error ends the streak (as Argo Rollouts' consecutiveErrorLimit).",
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


BAKE_NEEDS_ANALYSIS = "rollout.bake needs rollout.analysis (its Prometheus)"
BAKE_ABSOLUTE_ONLY = (
    "bake checks judge the promoted version against absolute bounds (min, max): the previous version "
    "no longer serves, so relativeToStable cannot be used in bake.metrics"
)


class Bake(ApiModel):
    """After promotion, keep judging the new stable version on late ground truth; a failure rolls
    back to the previous version (the same ordered rollback as a canary failure)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!has(self.metrics) || self.metrics.all(m, !has(m.relativeToStable))",
                    "message": BAKE_ABSOLUTE_ONLY,
                },
            ]
        }
    }

    duration: Duration = Field(description="How long the bake lasts after promotion, e.g. 24h.")
    interval: Duration = Field(default="5m", description="Time between bake analyses.")
    min_labels: int = Field(
        default=50,
        ge=1,
        le=10_000_000,
        description="Ground-truth checks need this many labelled predictions of the promoted version; "
        "fewer is inconclusive (the bake waits), never a pass.",
    )
    failure_limit: int = Field(
        default=0, ge=0, le=100, description="Failed bake analyses tolerated; one more rolls back."
    )
    metrics: Annotated[list[MetricCheck], Field(min_length=1, max_length=32)] = Field(
        description="The requirements the promoted version must keep meeting (absolute bounds).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _absolute(self) -> Bake:
        if any(m.relative_to_stable is not None for m in self.metrics):
            raise ValueError(f"rollout.bake: {BAKE_ABSOLUTE_ONLY}")
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
                {
                    # Guarded with has(): the API server also runs this on the schema's default {}.
                    "rule": "!has(self.analysis) || !has(self.analysis.interval) || "
                    "!has(self.progressDeadline) || "
                    "duration(self.analysis.interval) < duration(self.progressDeadline)",
                    "message": INTERVAL_BEYOND_DEADLINE,
                },
                {
                    "rule": "!has(self.bake) || has(self.analysis)",
                    "message": BAKE_NEEDS_ANALYSIS,
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
    analysis: Analysis | None = Field(
        default=None,
        description="Without analysis, steps only wait. With it, a step moves on (and the last one "
        "promotes) only on current evidence: its pause is over and the latest analysis of the step "
        "passed, every check with at least its minSamples. An inconclusive, error or failed analysis "
        "after a pass puts the step back to waiting for the next pass.",
    )
    progress_deadline: Duration = Field(
        default="10m",
        description="Longest a rollout may stall before it fails: waiting on canary pods or the "
        "weight, or on analyses that do not pass (inconclusive, error, a tolerated failure). "
        "Deliberate holds are not stalls: the first interval of a step, a step's pause while its "
        "latest analysis passed, and paused: true.",
    )
    scale_down_delay: Duration = Field(
        default="30s", description="Delay before a rolled-back or replaced track is scaled to zero."
    )
    paused: bool = Field(default=False, description="Hold the rollout at its current step.")
    bake: Bake | None = Field(
        default=None,
        description="After promotion, keep judging the new version on late labels for a while; a "
        "failure rolls back to the previous version. Status shows the bake's progress.",
    )

    @model_validator(mode="after")
    def _consistent(self) -> Rollout:
        if self.steps and self.step_weight is not None:
            raise ValueError("rollout: use either steps or stepWeight/maxWeight, not both")
        if self.router == "gatewayAPI" and self.gateway is None:
            raise ValueError("rollout: router gatewayAPI needs rollout.gateway")
        if self.step_weight is not None and self.step_weight > self.max_weight:
            raise ValueError("rollout: stepWeight must not exceed maxWeight")
        if self.analysis is not None and parse_duration(self.analysis.interval) >= parse_duration(
            self.progress_deadline
        ):
            raise ValueError(f"rollout: {INTERVAL_BEYOND_DEADLINE}")
        if self.bake is not None and self.analysis is None:
            raise ValueError(f"rollout: {BAKE_NEEDS_ANALYSIS}")
        return self


GatewayRoute.model_rebuild()
