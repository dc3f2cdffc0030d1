"""One analysis check and the Prometheus it asks: shared by `spec.rollout.analysis` and by the
analysis templates (ModelAnalysisTemplate, ClusterModelAnalysisTemplate)."""

from __future__ import annotations

import re
from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.base import ApiModel, ObjectName, PromDuration

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
CheckName = Annotated[str, Field(min_length=1, max_length=63, pattern=CHECK_NAME_PATTERN)]

# Messages shared by the CRD's CEL rules and the operator's own parse (they must agree).
CUSTOM_NEEDS_SAMPLES = "a custom metric needs samplesQuery, or minSamples: 0 with minSamplesReason"
ZERO_SAMPLES_NEEDS_REASON = "minSamples: 0 needs minSamplesReason (why the check may pass on no samples)"
RELATIVE_NEEDS_A_BOUND = "relativeToStable needs at least one of maxRatio, maxIncrease or maxDecrease"

# `{{name}}` in a query; `{{args.name}}` for a template's declared arguments.
VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*(?:\.[A-Za-z_][A-Za-z0-9_]*)?)\s*\}\}")
# What every query may use. `{{window}}` is the check's PromQL range; `{{interval}}` is the same
# value (queries were written with it before checks had their own window); `{{endpoints}}` is a
# regex of `analysis.endpoints` for `endpoint=~"{{endpoints}}"`, `{{endpoint}}` the first one.
BUILTIN_VARIABLES = ("namespace", "name", "track", "version", "window", "interval", "endpoints", "endpoint")
ARGS_PREFIX = "args."


def query_variables(query: str) -> set[str]:
    return {m.group(1) for m in VARIABLE.finditer(query)}


def unknown_variables(check: MetricCheck, *, args: frozenset[str] = frozenset()) -> list[str]:
    """Variables a check's queries use that nobody provides (`args` are the declared ones)."""
    used = set()
    for query in (check.query, check.samples_query):
        if query:
            used |= query_variables(query)
    known = set(BUILTIN_VARIABLES) | {ARGS_PREFIX + a for a in args}
    return sorted(used - known)


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


CHECK_RULES = [
    {
        "rule": "!has(self.minSamples) || self.minSamples > 0 || has(self.minSamplesReason)",
        "message": ZERO_SAMPLES_NEEDS_REASON,
    },
]


class MetricCheck(ApiModel):
    """A check run every `interval` against the canary track, over the last `window`."""

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
                *CHECK_RULES,
            ]
        }
    }

    name: CheckName
    template: MetricTemplate = Field(description="A built-in query, or custom with `query`.")
    query: Annotated[str, Field(min_length=1, max_length=4096)] | None = Field(
        default=None,
        description="PromQL for template=custom; may use {{namespace}}, {{name}}, {{track}}, "
        "{{version}}, {{window}} (alias {{interval}}), {{endpoints}}, and in a template its "
        "declared {{args.NAME}}.",
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
    interval: PromDuration | None = Field(
        default=None,
        description="How often this check is evaluated (default: analysis.interval); its first "
        "evaluation at a step waits one interval. At least 1s, shorter than progressDeadline.",
    )
    window: PromDuration | None = Field(
        default=None,
        description="The PromQL range of its queries, {{window}} (default: the check's interval). "
        "At least 1s; in production several scrape intervals (rate() needs two samples).",
    )

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
        default=None,
        description="Secret key holding a bearer token for Prometheus (in the ModelDeployment's, or "
        "the namespaced template's, namespace).",
    )
    insecure_skip_verify: bool = Field(
        default=False,
        description="Do not verify Prometheus' TLS certificate (https addresses). Off by default.",
    )
