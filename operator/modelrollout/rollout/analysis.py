"""One analysis run: render every (due) check's queries, ask the provider, judge the answers."""

from __future__ import annotations

import math
from collections.abc import Collection, Mapping, Sequence
from datetime import datetime

from modelrollout.api.checks import ARGS_PREFIX, MetricCheck
from modelrollout.api.conditions import rfc3339
from modelrollout.api.rollout import DEFAULT_ENDPOINTS, Analysis, Bake
from modelrollout.api.status import CheckResult, TemplateSource
from modelrollout.metrics.provider import MetricsProvider, ProviderError
from modelrollout.rollout.cadence import check_window
from modelrollout.rollout.ground_truth import COVERAGE, is_ground_truth
from modelrollout.rollout.templates import (
    TemplateError,
    endpoints_regex,
    query_for,
    render,
    samples_query_for,
)
from modelrollout.rollout.verdict import assess


def variables(
    *,
    namespace: str,
    name: str,
    track: str,
    version: str,
    interval: str,
    window: str | None = None,
    endpoints: Sequence[str] = DEFAULT_ENDPOINTS,
    args: Mapping[str, str] | None = None,
) -> dict[str, str]:
    """The variables of a check's queries. `{{window}}` is the range (default `interval`);
    `{{interval}}` is the same value, for queries written before checks had a window."""
    return {
        "namespace": namespace,
        "name": name,
        "track": track,
        "version": version,
        "window": window or interval,
        "interval": window or interval,
        "endpoints": endpoints_regex(endpoints),
        "endpoint": endpoints[0],
        **{ARGS_PREFIX + k: v for k, v in (args or {}).items()},
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
    only: Collection[str] | None = None,
    sources: Mapping[str, TemplateSource] | None = None,
    args: Mapping[str, Mapping[str, str]] | None = None,
) -> list[CheckResult]:
    """Every check of the analysis (or those named in `only`), each over its own window, with
    the arguments of the template it came from; the result records that template (`sources`)."""
    results = []
    for check in analysis.metrics:
        if only is not None and check.name not in only:
            continue
        common = {
            "namespace": namespace,
            "name": name,
            "interval": analysis.interval,
            "window": check_window(check, analysis),
            "endpoints": analysis.endpoints,
            "args": (args or {}).get(check.name),
        }
        canary = variables(track="canary", version=canary_version, **common)
        stable = variables(track="stable", version=stable_version, **common)
        result = run_check(
            check,
            provider,
            canary=canary,
            stable=stable,
            min_samples=analysis.min_samples,
            min_labels=analysis.min_labels,
            now=now,
        )
        source = (sources or {}).get(check.name)
        results.append(result.model_copy(update={"source": source}) if source else result)
    return results


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
        namespace=namespace,
        name=name,
        track="stable",
        version=version,
        interval=bake.interval,
        endpoints=analysis.endpoints,
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
