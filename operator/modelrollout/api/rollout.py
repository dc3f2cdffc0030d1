"""`spec.rollout`: how a new model version replaces the serving one (canary + analysis)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.analysis_template import TemplateRef
from modelrollout.api.base import ApiModel, Duration, ObjectName, PromDuration, parse_duration
from modelrollout.api.checks import MetricCheck, PrometheusProvider, unknown_variables

OnInconclusive = Literal["wait", "rollback", "pause"]

# Messages shared by the CRD's CEL rules and the operator's own parse (they must agree).
INTERVAL_BEYOND_DEADLINE = "analysis.interval must be shorter than progressDeadline"
CHECK_INTERVAL_BEYOND_DEADLINE = "every check's interval must be shorter than progressDeadline"
NEEDS_A_PROVIDER = "analysis needs prometheus, or templates (one of them names the Prometheus)"
NEEDS_CHECKS = "analysis needs metrics, or templates that bring checks"
DEFAULT_ENDPOINTS = ["/predict"]
# A URL path of the bento's API (BentoML's `endpoint` label): rendered into a regex matcher from
# escaped literals, so `.` in a path matches a dot and nothing else.
ENDPOINT_PATTERN = r"^/[-A-Za-z0-9_.~/]*$"
Endpoint = Annotated[str, Field(min_length=1, max_length=128, pattern=ENDPOINT_PATTERN)]


class RolloutStep(ApiModel):
    """One step of the canary: route `setWeight` percent to the canary, then hold for `pause`."""

    set_weight: int = Field(ge=0, le=100, description="Percent of traffic to the canary.")
    pause: Duration | None = Field(
        default=None,
        description="How long to hold (and analyse) this weight; default: one interval. With analysis "
        "the step moves on only once the pause is over AND the latest analysis of the step passed. "
        "A hold is never a stall: it does not count against progressDeadline.",
    )


class Analysis(ApiModel):
    """How the canary is judged at every interval.

    A step moves on (and the last one promotes) only on current evidence: the latest analysis
    of the step passed, every check with at least its minSamples. An inconclusive, error or
    failed analysis after a pass puts the step back to waiting for the next pass.

    Checks come from `metrics` (inline) and from `templates`; see rollout/template_refs.py for
    how they merge (an inline check replaces a template check of the same name)."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.prometheus) || (has(self.templates) && size(self.templates) > 0)",
                    "message": NEEDS_A_PROVIDER,
                },
                {
                    "rule": "(has(self.metrics) && size(self.metrics) > 0) || "
                    "(has(self.templates) && size(self.templates) > 0)",
                    "message": NEEDS_CHECKS,
                },
            ]
        }
    }

    prometheus: PrometheusProvider | None = Field(
        default=None,
        description="The Prometheus every check asks; when set it wins over the templates' provider.",
    )
    templates: Annotated[list[TemplateRef], Field(max_length=8)] = Field(
        default=[],
        description="Analysis templates whose checks (and provider) join this analysis, with "
        "arguments and per-check overrides.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["kind", "name"]},
    )
    endpoints: Annotated[list[Endpoint], Field(min_length=1, max_length=16)] = Field(
        default=DEFAULT_ENDPOINTS,
        description="The bento API paths the built-in checks judge (BentoML's endpoint label), "
        "e.g. [/classify]; {{endpoints}} in a custom query.",
        json_schema_extra={"x-kubernetes-list-type": "set"},
    )
    interval: PromDuration = Field(
        default="30s",
        description="Time between analysis runs and the default of every check's interval and "
        "window; the first analysis at a step waits one interval of data. A Prometheus duration of "
        "at least 1s (no fractions), shorter than progressDeadline.",
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
    metrics: Annotated[list[MetricCheck], Field(max_length=32)] = Field(
        default=[],
        description="Inline checks, keyed by name: two checks with one name are refused at apply "
        "time. One named like a template check replaces it.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _consistent(self) -> Analysis:
        names = [m.name for m in self.metrics]
        if len(names) != len(set(names)):
            raise ValueError("analysis.metrics: names must be unique")
        refs = [(t.kind, t.name) for t in self.templates]
        if len(refs) != len(set(refs)):
            raise ValueError("analysis.templates: a template is referenced twice")
        if self.prometheus is None and not self.templates:
            raise ValueError(NEEDS_A_PROVIDER)
        if not self.metrics and not self.templates:
            raise ValueError(NEEDS_CHECKS)
        for check in self.metrics:
            unknown = unknown_variables(check)
            if unknown:
                raise ValueError(f"metric {check.name}: unknown variable(s) {', '.join(unknown)}")
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
    interval: PromDuration = Field(
        default="5m", description="Time between bake analyses (also the range of their queries)."
    )
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
                    "rule": "!has(self.analysis) || !has(self.analysis.metrics) || !has(self.progressDeadline) "
                    "|| self.analysis.metrics.all(m, !has(m.interval) || "
                    "duration(m.interval) < duration(self.progressDeadline))",
                    "message": CHECK_INTERVAL_BEYOND_DEADLINE,
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
        if self.analysis is not None:
            deadline = parse_duration(self.progress_deadline)
            if parse_duration(self.analysis.interval) >= deadline:
                raise ValueError(f"rollout: {INTERVAL_BEYOND_DEADLINE}")
            if any(m.interval and parse_duration(m.interval) >= deadline for m in self.analysis.metrics):
                raise ValueError(f"rollout: {CHECK_INTERVAL_BEYOND_DEADLINE}")
        if self.bake is not None and self.analysis is None:
            raise ValueError(f"rollout: {BAKE_NEEDS_ANALYSIS}")
        return self


GatewayRoute.model_rebuild()
