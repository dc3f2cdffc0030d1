"""One analysis run: render every check's queries, ask the provider, judge the answers."""

from __future__ import annotations

import math
from datetime import datetime

from modelrollout.api.conditions import rfc3339
from modelrollout.api.rollout import Analysis, Bake, MetricCheck
from modelrollout.api.status import CheckResult
from modelrollout.metrics.provider import MetricsProvider, ProviderError
from modelrollout.rollout.ground_truth import COVERAGE, is_ground_truth
from modelrollout.rollout.templates import TemplateError, query_for, render, samples_query_for
from modelrollout.rollout.verdict import assess

DEFAULT_ENDPOINT = "/predict"


def variables(
    *, namespace: str, name: str, track: str, version: str, interval: str, endpoint: str = DEFAULT_ENDPOINT
) -> dict[str, str]:
    return {
        "namespace": namespace,
        "name": name,
        "track": track,
        "version": version,
        "interval": interval,
        "endpoint": endpoint,
    }


def effective_min_samples(check: MetricCheck, default: int, *, min_labels: int | None = None) -> int:
    """The check's own sample gate, else the analysis' (every check has one): minLabels for the
    ground-truth checks, minSamples for the others."""
    if check.min_samples is not None:
        return check.min_samples
    return min_labels if min_labels is not None and is_ground_truth(check.template) else default


def gate_name(check: MetricCheck, *, min_labels: int | None) -> str:
    """The setting the sample gate comes from, for messages."""
    if check.min_samples is None and min_labels is not None and is_ground_truth(check.template):
        return "minLabels"
    return "minSamples"


def run_check(
    check: MetricCheck,
    provider: MetricsProvider,
    *,
    canary: dict[str, str],
    stable: dict[str, str],
    min_samples: int,
    now: datetime,
    min_labels: int | None = None,
) -> CheckResult:
    """Query and judge one check. `min_samples` (`min_labels` for ground-truth checks) is the
    analysis' gate; the check's own wins."""
    template = query_for(check.template, check.query)
    samples_template = check.samples_query or samples_query_for(check.template)
    query = stable_query = ""
    try:
        query = render(template, canary)
        stable_query = render(template, stable) if check.relative_to_stable else None
        samples_query = render(samples_template, canary) if samples_template else None
        value = provider.query(query)
        stable_value = provider.query(stable_query) if stable_query else None
        samples = provider.query(samples_query) if samples_query else None
    except (TemplateError, ProviderError) as exc:
        return CheckResult(
            metric=check.name,
            query=query or template,
            stable_query=stable_query or None,
            verdict="error",
            message=str(exc)[:1024],
            time=rfc3339(now),
        )
    if samples is None and samples_template is not None:
        samples = 0.0  # no series at all: zero samples, not "unknown"
    coverage = _coverage(check, provider, canary)
    verdict, threshold, message = assess(
        check,
        value=value,
        stable_value=stable_value,
        samples=samples,
        min_samples=effective_min_samples(check, min_samples, min_labels=min_labels),
        gate=gate_name(check, min_labels=min_labels),
    )
    return CheckResult(
        metric=check.name,
        query=query,
        value=_finite(value),
        stable_query=stable_query,
        stable_value=_finite(stable_value),
        samples=_finite(samples),
        coverage=coverage,
        threshold=threshold,
        verdict=verdict,
        message=message,
        time=rfc3339(now),
    )


def _coverage(check: MetricCheck, provider: MetricsProvider, judged: dict[str, str]) -> float | None:
    """Labelled / logged predictions of the judged version (ground-truth checks only); reported
    with the verdict, never a verdict of its own (an unanswerable coverage is simply unknown)."""
    if not is_ground_truth(check.template):
        return None
    try:
        return _finite(provider.query(render(COVERAGE, judged)))
    except (TemplateError, ProviderError):
        return None


def _finite(value: float | None) -> float | None:
    """JSON (and so the status) has no NaN or Inf: those are kept in the message instead."""
    return value if value is not None and math.isfinite(value) else None


def run(
    analysis: Analysis,
    provider: MetricsProvider,
    *,
    namespace: str,
    name: str,
    canary_version: str,
    stable_version: str,
    now: datetime,
) -> list[CheckResult]:
    common = {"namespace": namespace, "name": name, "interval": analysis.interval}
    canary = variables(track="canary", version=canary_version, **common)
    stable = variables(track="stable", version=stable_version, **common)
    return [
        run_check(
            c,
            provider,
            canary=canary,
            stable=stable,
            min_samples=analysis.min_samples,
            min_labels=analysis.min_labels,
            now=now,
        )
        for c in analysis.metrics
    ]


def run_bake(
    bake: Bake,
    provider: MetricsProvider,
    *,
    analysis: Analysis,
    namespace: str,
    name: str,
    version: str,
    now: datetime,
) -> list[CheckResult]:
    """The bake's checks against the promoted version, now on the stable track."""
    judged = variables(
        namespace=namespace, name=name, track="stable", version=version, interval=bake.interval
    )
    return [
        run_check(
            c,
            provider,
            canary=judged,
            stable=judged,
            min_samples=analysis.min_samples,
            min_labels=bake.min_labels,
            now=now,
        )
        for c in bake.metrics
    ]
