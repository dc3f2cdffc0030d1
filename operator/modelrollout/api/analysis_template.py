"""Reusable analysis: ModelAnalysisTemplate (namespaced) and ClusterModelAnalysisTemplate
(cluster-scoped), and how a ModelDeployment refers to them (`analysis.templates`).

A template holds a Prometheus provider, checks with default thresholds, and declared
arguments (with optional defaults) its queries use as `{{args.NAME}}`. How references, inline
checks and overrides merge into one analysis is `rollout/template_refs.py` (and the README).
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.base import ApiModel, ObjectName, PromDuration
from modelrollout.api.checks import (
    CHECK_RULES,
    CheckName,
    MetricCheck,
    PrometheusProvider,
    RelativeThreshold,
    SecretKeySelector,
    unknown_variables,
)

TEMPLATE_KIND = "ModelAnalysisTemplate"
CLUSTER_TEMPLATE_KIND = "ClusterModelAnalysisTemplate"
TemplateKind = Literal["ModelAnalysisTemplate", "ClusterModelAnalysisTemplate"]
ARG_NAME_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
ArgName = Annotated[str, Field(min_length=1, max_length=63, pattern=ARG_NAME_PATTERN)]
ArgValue = Annotated[str, Field(max_length=1024)]
OVERRIDE_NEEDS_A_FIELD = (
    "an override needs at least one of min, max, relativeToStable, minSamples, interval, window"
)
TEMPLATE_NEEDS_SOMETHING = "a template needs prometheus or at least one metric"


class TemplateArg(ApiModel):
    """An argument the template's queries use as {{args.NAME}}; without a value, every
    reference must give one."""

    name: ArgName
    value: ArgValue | None = Field(default=None, description="Default value (optional).")


class CheckOverride(ApiModel):
    """Changes a template check's thresholds for one ModelDeployment: each field set here
    replaces the template's (relativeToStable as a whole); fields left out keep the template's."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.min) || has(self.max) || has(self.relativeToStable) || "
                    "has(self.minSamples) || has(self.interval) || has(self.window)",
                    "message": OVERRIDE_NEEDS_A_FIELD,
                },
                *CHECK_RULES,
            ]
        }
    }

    name: CheckName = Field(description="The template check this changes.")
    min: float | None = None
    max: float | None = None
    relative_to_stable: RelativeThreshold | None = None
    min_samples: Annotated[int, Field(ge=0, le=1_000_000)] | None = None
    min_samples_reason: Annotated[str, Field(min_length=1, max_length=256)] | None = None
    interval: PromDuration | None = None
    window: PromDuration | None = None

    @model_validator(mode="after")
    def _changes_something(self) -> CheckOverride:
        if self.model_fields_set <= {"name", "min_samples_reason"}:
            raise ValueError(f"override {self.name}: {OVERRIDE_NEEDS_A_FIELD}")
        return self


class TemplateRef(ApiModel):
    """A template this analysis uses: its checks (and provider) join the analysis."""

    name: ObjectName
    kind: TemplateKind = Field(
        default=TEMPLATE_KIND,
        description="ModelAnalysisTemplate (in the ModelDeployment's namespace) or "
        "ClusterModelAnalysisTemplate.",
    )
    args: Annotated[dict[ArgName, ArgValue], Field(max_length=32)] = Field(
        default={}, description="Values of the template's arguments ({{args.NAME}} in its queries)."
    )
    overrides: Annotated[list[CheckOverride], Field(max_length=32)] = Field(
        default=[],
        description="Per-check threshold changes; naming a check the template lacks is an error.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )


class ClusterSecretKeySelector(SecretKeySelector):
    namespace: ObjectName | None = Field(
        default=None,
        description="Namespace of the Secret; default: the operator's own namespace. (Only a "
        "cluster-scoped template may name one: a namespaced object never makes the operator read "
        "another namespace's Secret.)",
    )


class ClusterPrometheusProvider(PrometheusProvider):
    auth_secret_ref: ClusterSecretKeySelector | None = Field(
        default=None, description="Secret key holding a bearer token for Prometheus."
    )


def _template_rules() -> dict:
    return {
        "x-kubernetes-validations": [
            {
                "rule": "has(self.prometheus) || (has(self.metrics) && size(self.metrics) > 0)",
                "message": TEMPLATE_NEEDS_SOMETHING,
            }
        ]
    }


class ModelAnalysisTemplateSpec(ApiModel):
    """A reusable analysis: provider, checks with default thresholds, declared arguments."""

    model_config = ApiModel.model_config | {"json_schema_extra": _template_rules()}

    prometheus: PrometheusProvider | None = Field(
        default=None, description="Used unless the ModelDeployment names its own (inline wins)."
    )
    args: Annotated[list[TemplateArg], Field(max_length=32)] = Field(
        default=[],
        description="Arguments the queries use as {{args.NAME}}.",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )
    metrics: Annotated[list[MetricCheck], Field(max_length=32)] = Field(
        default=[],
        description="Checks with their default thresholds (a reference may override them).",
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["name"]},
    )

    @model_validator(mode="after")
    def _consistent(self) -> ModelAnalysisTemplateSpec:
        if self.prometheus is None and not self.metrics:
            raise ValueError(TEMPLATE_NEEDS_SOMETHING)
        for field, names in (
            ("args", [a.name for a in self.args]),
            ("metrics", [m.name for m in self.metrics]),
        ):
            if len(names) != len(set(names)):
                raise ValueError(f"{field}: names must be unique")
        declared = frozenset(a.name for a in self.args)
        for check in self.metrics:
            unknown = unknown_variables(check, args=declared)
            if unknown:
                raise ValueError(f"metric {check.name}: undeclared variable(s) {', '.join(unknown)}")
        return self


class ClusterModelAnalysisTemplateSpec(ModelAnalysisTemplateSpec):
    """As ModelAnalysisTemplate, usable from every namespace; its authSecretRef may name the
    Secret's namespace (default: the operator's)."""

    prometheus: ClusterPrometheusProvider | None = Field(
        default=None, description="Used unless the ModelDeployment names its own (inline wins)."
    )
