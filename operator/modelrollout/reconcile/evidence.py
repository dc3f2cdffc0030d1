"""Where a rollout's evidence comes from: the analysis resolved from the spec and the templates
observed this reconcile, and the callback the rollout machine calls to run it (Prometheus, its
token, the checks that are due)."""

from __future__ import annotations

import os
from collections.abc import Collection
from datetime import datetime

from modelrollout.api import conditions as C
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.kube.client import KubeClient
from modelrollout.metrics.prometheus import provider_for
from modelrollout.metrics.provider import ProviderError
from modelrollout.reconcile import operator_metrics
from modelrollout.reconcile.observe import secret_value
from modelrollout.reconcile.observed import Observed
from modelrollout.rollout import analysis
from modelrollout.rollout.template_refs import Resolved, TemplateRefError, resolve

NOT_LOOKED_UP = "the analysis templates were not looked up in this reconcile"


def operator_namespace() -> str | None:
    """The operator's own namespace (the chart sets it from the downward API)."""
    return os.environ.get("MODELROLLOUT_NAMESPACE") or None


def resolve_analysis(md: ModelDeployment, observed: Observed) -> tuple[Resolved | None, str | None]:
    """(the effective analysis, why it cannot be built). (None, None): no analysis, or one whose
    templates this reconcile did not read (no rollout runs or is about to)."""
    spec = md.spec.rollout.analysis
    if spec is None:
        return None, None
    if not spec.templates:
        return Resolved(analysis=spec), None
    if observed.templates is None:
        return None, None
    for (kind, name), error in observed.template_errors.items():
        return None, f"cannot read {kind} {name}: {error}"
    try:
        resolved = resolve(
            md.spec.rollout,
            namespace=md.namespace,
            templates=observed.templates,
            operator_namespace=operator_namespace(),
        )
    except TemplateRefError as exc:
        return None, str(exc)
    return resolved, None


def _errors(names: Collection[str], message: str, now: datetime) -> list[CheckResult]:
    return [
        CheckResult(metric=n, query="", verdict="error", message=message, time=C.rfc3339(now)) for n in names
    ]


def _measured(kube: KubeClient, md: ModelDeployment, resolved: Resolved | None, names, run, now: datetime):
    """`run(provider)` with the analysis' Prometheus (its token from its Secret), recorded in
    the operator's metrics; every check an error (never a pass) when that cannot be done."""
    if resolved is None:  # never a pass on an analysis nobody resolved
        return _errors(names or ["analysis"], NOT_LOOKED_UP, now)
    spec = resolved.analysis
    try:
        token = secret_value(kube, spec.prometheus.auth_secret_ref, resolved.secret_namespace or md.namespace)
    except ProviderError as exc:
        return _errors(names, str(exc), now)
    provider = provider_for(
        spec.prometheus.address, token=token, insecure_skip_verify=spec.prometheus.insecure_skip_verify
    )
    results = run(provider)
    operator_metrics.record_verdicts(md.namespace, md.name, results)
    return results


def analyzer(
    kube: KubeClient,
    md: ModelDeployment,
    resolved: Resolved | None,
    previous: ModelDeploymentStatus,
    now: datetime,
):
    """The analysis callback: reaches Prometheus only when the rollout machine asks for it,
    for every check or `only` the ones that are due."""

    def analyze(only: Collection[str] | None = None) -> list[CheckResult]:
        checks = (resolved.analysis if resolved else md.spec.rollout.analysis).metrics
        names = [m.name for m in checks if only is None or m.name in only]

        def run(provider) -> list[CheckResult]:
            return analysis.run(
                resolved.analysis,
                provider,
                namespace=md.namespace,
                name=md.name,
                canary_version=md.spec.model.version,
                stable_version=previous.stable_version or "",
                now=now,
                only=only,
                sources=resolved.sources,
                args=resolved.args,
            )

        return _measured(kube, md, resolved, names, run, now)

    return analyze


def bake_analyzer(kube: KubeClient, md: ModelDeployment, resolved: Resolved | None, now: datetime):
    """The bake's callback: its checks against the promoted version (the spec's), through the
    analysis' Prometheus. Errors (never a rollback) when the analysis could not be resolved."""
    bake = md.spec.rollout.bake

    def analyze(**_: object) -> list[CheckResult]:
        if bake is None:
            return []

        def run(provider) -> list[CheckResult]:
            return analysis.run_bake(
                bake,
                provider,
                analysis=resolved.analysis,
                namespace=md.namespace,
                name=md.name,
                version=md.spec.model.version,
                now=now,
            )

        return _measured(kube, md, resolved, [m.name for m in bake.metrics], run, now)

    return analyze
