"""One effective analysis from a ModelDeployment's `analysis` and the templates it references
(pure: the templates come in as the API server returned them).

The merge, in order (README "Analysis templates" says the same):
1. Each reference names a template (ModelAnalysisTemplate in the ModelDeployment's namespace,
   or ClusterModelAnalysisTemplate). A missing or invalid template is an error.
2. Arguments: a reference gives a value for each argument the template declares, or the
   template's default is used; an argument without either, or one the template does not
   declare, is an error.
3. Overrides: each field an override sets replaces the template check's (relativeToStable as
   a whole); an override naming a check the template lacks is an error. The result must still
   be a valid check.
4. Check names must be unique across the referenced templates (an error otherwise). An inline
   check (`analysis.metrics`) with the name of a template check replaces it: inline wins.
5. Provider: `analysis.prometheus` if set (inline wins; its authSecretRef is read in the
   ModelDeployment's namespace). Otherwise the one provider the templates name: templates
   naming different ones are an error, none at all is an error. A namespaced template's
   Secret is read in its namespace; a cluster template's in the namespace its authSecretRef
   names, else the operator's own.
6. Every check's interval must be shorter than progressDeadline; at most 32 checks.
Policy (interval, minSamples, limits, onInconclusive, endpoints) is the ModelDeployment's.
Each check records the template (kind, name, generation) it came from.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from modelrollout.api.analysis_template import (
    CLUSTER_TEMPLATE_KIND,
    CheckOverride,
    ClusterModelAnalysisTemplateSpec,
    ModelAnalysisTemplateSpec,
    TemplateRef,
)
from modelrollout.api.base import parse_duration
from modelrollout.api.checks import MetricCheck, PrometheusProvider
from modelrollout.api.rollout import Analysis, Rollout
from modelrollout.api.spec import ModelDeploymentSpec, format_validation_error
from modelrollout.api.status import TemplateSource

MAX_CHECKS = 32
TemplateKey = tuple[str, str]  # (kind, name)


class TemplateRefError(ValueError):
    """The analysis cannot be built from its references (the message names what is wrong)."""


@dataclass(frozen=True)
class Resolved:
    """The analysis the rollout runs: provider and checks merged, no references left."""

    analysis: Analysis
    secret_namespace: str | None = None  # where authSecretRef is read; None: the ModelDeployment's
    sources: Mapping[str, TemplateSource] = field(default_factory=dict)
    args: Mapping[str, Mapping[str, str]] = field(default_factory=dict)


@dataclass(frozen=True)
class _Template:
    ref: TemplateRef
    spec: ModelAnalysisTemplateSpec
    source: TemplateSource

    @property
    def label(self) -> str:
        return f"{self.ref.kind} {self.ref.name}"


def key(ref: TemplateRef) -> TemplateKey:
    return (ref.kind, ref.name)


def resolve(
    rollout: Rollout,
    *,
    namespace: str,
    templates: Mapping[TemplateKey, dict[str, Any] | None],
    operator_namespace: str | None,
) -> Resolved:
    """The effective analysis of `rollout` (which must have one); TemplateRefError otherwise."""
    analysis = rollout.analysis
    assert analysis is not None
    if not analysis.templates:
        return Resolved(analysis=analysis)
    loaded = [_load(ref, templates.get(key(ref)), namespace) for ref in analysis.templates]
    from_templates: dict[str, tuple[MetricCheck, _Template, dict[str, str]]] = {}
    for template in loaded:
        values = _arguments(template)
        for check in _checks(template):
            if check.name in from_templates:
                other = from_templates[check.name][1]
                raise TemplateRefError(
                    f"check {check.name} is defined by both {other.label} and {template.label}"
                )
            from_templates[check.name] = (check, template, values)
    inline = {c.name: c for c in analysis.metrics}
    checks = [inline.get(name, check) for name, (check, _, _) in from_templates.items()]
    checks += [c for c in analysis.metrics if c.name not in from_templates]
    _check_limits(checks, rollout)
    provider, secret_namespace = _provider(analysis, loaded, namespace, operator_namespace)
    kept = {name: entry for name, entry in from_templates.items() if name not in inline}
    return Resolved(
        analysis=analysis.model_copy(update={"prometheus": provider, "metrics": checks, "templates": []}),
        secret_namespace=secret_namespace,
        sources={name: template.source for name, (_, template, _) in kept.items()},
        args={name: values for name, (_, _, values) in kept.items() if values},
    )


def _load(ref: TemplateRef, body: dict[str, Any] | None, namespace: str) -> _Template:
    cluster = ref.kind == CLUSTER_TEMPLATE_KIND
    where = "" if cluster else f" in namespace {namespace}"
    if body is None:
        raise TemplateRefError(f"{ref.kind} {ref.name} not found{where}")
    model = ClusterModelAnalysisTemplateSpec if cluster else ModelAnalysisTemplateSpec
    try:
        spec = model.model_validate(body.get("spec") or {})
    except ValidationError as exc:
        raise TemplateRefError(f"{ref.kind} {ref.name} is invalid: {format_validation_error(exc)}") from None
    generation = int((body.get("metadata") or {}).get("generation") or 0)
    return _Template(ref, spec, TemplateSource(kind=ref.kind, name=ref.name, generation=generation))


def _arguments(template: _Template) -> dict[str, str]:
    declared = {a.name: a.value for a in template.spec.args}
    unknown = sorted(set(template.ref.args) - set(declared))
    if unknown:
        raise TemplateRefError(
            f"{template.label} declares no argument {', '.join(unknown)} "
            f"(it declares: {', '.join(sorted(declared)) or 'none'})"
        )
    values = {name: template.ref.args.get(name, default) for name, default in declared.items()}
    missing = sorted(name for name, value in values.items() if value is None)
    if missing:
        raise TemplateRefError(f"{template.label} needs argument(s) {', '.join(missing)} (args: {{...}})")
    return values


def _checks(template: _Template) -> list[MetricCheck]:
    overrides = {o.name: o for o in template.ref.overrides}
    names = {c.name for c in template.spec.metrics}
    unknown = sorted(set(overrides) - names)
    if unknown:
        raise TemplateRefError(f"override of {', '.join(unknown)}: {template.label} has no such check")
    return [_override(check, overrides.get(check.name), template) for check in template.spec.metrics]


def _override(check: MetricCheck, override: CheckOverride | None, template: _Template) -> MetricCheck:
    if override is None:
        return check
    changes = {k: getattr(override, k) for k in override.model_fields_set if k != "name"}
    try:
        return MetricCheck.model_validate(check.model_dump() | changes)
    except ValidationError as exc:
        why = "; ".join(e["msg"].removeprefix("Value error, ") for e in exc.errors()[:3])
        raise TemplateRefError(f"override of {check.name} ({template.label}): {why}") from None


def _check_limits(checks: list[MetricCheck], rollout: Rollout) -> None:
    if not checks:
        raise TemplateRefError("the analysis has no checks (its templates bring none)")
    if len(checks) > MAX_CHECKS:
        raise TemplateRefError(f"the analysis has {len(checks)} checks; at most {MAX_CHECKS}")
    deadline = parse_duration(rollout.progress_deadline)
    for check in checks:
        if check.interval and parse_duration(check.interval) >= deadline:
            raise TemplateRefError(
                f"check {check.name}: interval {check.interval} must be shorter than progressDeadline "
                f"{rollout.progress_deadline}"
            )


def _provider(
    analysis: Analysis, loaded: list[_Template], namespace: str, operator_namespace: str | None
) -> tuple[PrometheusProvider, str | None]:
    if analysis.prometheus is not None:
        return analysis.prometheus, None
    named = [(t, t.spec.prometheus) for t in loaded if t.spec.prometheus is not None]
    if not named:
        raise TemplateRefError(
            "no Prometheus: set analysis.prometheus or reference a template that names one"
        )
    # one provider: the same address, TLS and token (a token is read where its template says)
    distinct = {(t.ref.kind if p.auth_secret_ref else "", p.model_dump_json()): (t, p) for t, p in named}
    if len(distinct) > 1:
        labels = " and ".join(t.label for t, _ in distinct.values())
        raise TemplateRefError(
            f"{labels} name different Prometheus servers; set analysis.prometheus to choose"
        )
    template, provider = named[0]
    auth = provider.auth_secret_ref
    secret_namespace = None
    if template.ref.kind == CLUSTER_TEMPLATE_KIND and auth is not None:
        secret_namespace = getattr(auth, "namespace", None) or operator_namespace
        if secret_namespace is None:
            raise TemplateRefError(
                f"{template.label}: authSecretRef names no namespace and the operator's own is unknown "
                "(set MODELROLLOUT_NAMESPACE, as the chart does)"
            )
    plain = PrometheusProvider.model_validate(provider.model_dump(exclude={"auth_secret_ref": {"namespace"}}))
    return plain, secret_namespace


def with_analysis(spec: ModelDeploymentSpec, analysis: Analysis) -> ModelDeploymentSpec:
    """The spec the rollout machine runs: the effective analysis in place of the written one."""
    return spec.model_copy(update={"rollout": spec.rollout.model_copy(update={"analysis": analysis})})
