"""Live figures of a running hybrid ModelDeployment, read from Prometheus.

A running hybrid table shows one point of the coverage curve: its head size and the hit ratio
it achieves on today's traffic. `read_live` queries that point, the request rate and the latency
of lookups and model calls; `figures_from_live` and `facts_from_live` turn them into the inputs
the recommender takes, so the same rules judge a log and a live deployment; `advise_live` does
all of it in one call for the operator. With one point the advice can say whether the current
head pays for itself (keep hybrid), whether the model alone is cheaper (dynamic) or whether
misses are so rare that the table alone serves (static); choosing a new head size needs the
whole curve, i.e. a request log.

Metric and label names default to what `modelrollout.runtime.lookup` exposes and the rendered
PodMonitor attaches, and can be overridden (`LiveMetricNames`):
- counter `modelrollout_lookup_total{result="hit"|"miss"}`
- histogram `modelrollout_lookup_duration_seconds{path="lookup"|"model"}` (each answer path)
- histogram `bentoml_service_request_duration_seconds` (whole requests, filtered on the
  prediction endpoint so health probes do not count)
- gauge `modelrollout_lookup_table_keys` (rows of the published table), read when the head size
  is not passed in
- every series selected by `modelrollout_deployment` (PodMonitor relabeling) and `namespace`.
Queries go through the one metrics provider interface (`metrics/provider.py`), with its policy:
no data and non-finite values are unknown, several series are an error. Blocking: call it from a
thread in async code.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.figures import SECONDS_PER_DAY, WorkloadFigures
from modelrollout.advisor.model_facts import ModelFacts
from modelrollout.advisor.params import CostParams
from modelrollout.advisor.peakedness import CoverageCurve
from modelrollout.advisor.recommend import Recommendation, recommend
from modelrollout.metrics.provider import MetricsProvider, ProviderError, known

_METRIC_NAME = re.compile(r"^[a-zA-Z_:][a-zA-Z0-9_:]*$")
_WINDOW = re.compile(r"^[1-9][0-9]*[smhd]$")
_WINDOW_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400}
DEFAULT_KEY_BYTES = 16.0


@dataclass(frozen=True)
class LiveMetricNames:
    """Where the live figures are; defaults match `modelrollout.runtime.lookup` and the PodMonitor."""

    lookup_counter: str = "modelrollout_lookup_total"
    result_label: str = "result"
    hit_value: str = "hit"
    miss_value: str = "miss"
    duration_histogram: str = "modelrollout_lookup_duration_seconds"
    path_label: str = "path"
    lookup_path: str = "lookup"
    model_path: str = "model"
    request_histogram: str = "bentoml_service_request_duration_seconds"
    request_endpoint: str | None = "/predict"
    head_size_gauge: str = "modelrollout_lookup_table_keys"
    deployment_label: str = "modelrollout_deployment"
    namespace_label: str = "namespace"

    def check(self) -> None:
        metrics = (self.lookup_counter, self.duration_histogram, self.request_histogram, self.head_size_gauge)
        labels = (self.result_label, self.path_label, self.deployment_label, self.namespace_label)
        for name in (*metrics, *labels):
            if not _METRIC_NAME.match(name):
                raise AdvisorError(f"{name!r} is not a Prometheus metric or label name")


@dataclass(frozen=True)
class LiveFigures:
    """Rates per second over `window`; latencies in ms, None where the metric had no data."""

    window: str
    hits_per_second: float
    misses_per_second: float
    head_size: int | None
    latencies_ms: dict[str, float | None] = field(default_factory=dict)

    @property
    def requests_per_second(self) -> float:
        return self.hits_per_second + self.misses_per_second

    @property
    def hit_ratio(self) -> float:
        return self.hits_per_second / self.requests_per_second


def read_live(
    client: MetricsProvider | str,
    *,
    deployment: str,
    namespace: str,
    window: str = "5m",
    names: LiveMetricNames | None = None,
    head_size: int | None = None,
    timeout_seconds: float = 10.0,
    insecure_skip_verify: bool = False,
) -> LiveFigures:
    """Query hit/miss rates, head size and path latencies of one deployment over `window`."""
    names = names or LiveMetricNames()
    names.check()
    if not _WINDOW.match(window):
        raise AdvisorError(f"window {window!r}: expected a Prometheus duration such as 30s, 5m or 1h")
    if isinstance(client, str):
        client = _connect(client, timeout_seconds=timeout_seconds, insecure_skip_verify=insecure_skip_verify)
    own = {names.deployment_label: deployment, names.namespace_label: namespace}

    def rate(result: str) -> float | None:
        selector = _selector({**own, names.result_label: result})
        return _scalar(client, f"sum(rate({names.lookup_counter}{{{selector}}}[{window}]))")

    hits, misses = rate(names.hit_value), rate(names.miss_value)
    if not (hits or misses):
        raise AdvisorError(
            f"no lookups of {namespace}/{deployment} in the last {window} ({names.lookup_counter}): "
            "nothing to advise on yet"
        )
    if head_size is None:
        size = _scalar(client, f"max({names.head_size_gauge}{{{_selector(own)}}})")
        head_size = int(size) if size is not None else None
    endpoint = {"endpoint": names.request_endpoint} if names.request_endpoint else {}
    latencies: dict[str, float | None] = {}
    for path, metric, extra in (
        ("lookup", names.duration_histogram, {names.path_label: names.lookup_path}),
        ("model", names.duration_histogram, {names.path_label: names.model_path}),
        ("request", names.request_histogram, endpoint),
    ):
        buckets = f"{metric}_bucket{{{_selector({**own, **extra})}}}"
        for q in (0.5, 0.99):
            seconds = _scalar(client, f"histogram_quantile({q}, sum by (le) (rate({buckets}[{window}])))")
            latencies[f"{path}_p{round(q * 100)}"] = None if seconds is None else seconds * 1000.0
    return LiveFigures(
        window=window, hits_per_second=hits or 0.0, misses_per_second=misses or 0.0,
        head_size=head_size, latencies_ms=latencies,
    )  # fmt: skip


def figures_from_live(
    live: LiveFigures, *, universe_size: int | None = None, mean_key_bytes: float = DEFAULT_KEY_BYTES
) -> WorkloadFigures:
    """Recommender input from live figures: a one-point coverage curve at the current head."""
    if live.head_size is None:
        raise AdvisorError(
            "the head size of the running table is unknown: pass it or expose the table-size gauge"
        )
    head = int(live.head_size)
    if universe_size is not None and universe_size < head:
        raise AdvisorError(
            f"universe size {universe_size} is smaller than the {head} keys in the running table"
        )
    window_seconds = int(live.window[:-1]) * _WINDOW_SECONDS[live.window[-1]]
    return WorkloadFigures(
        source="live",
        total_requests=round(live.requests_per_second * window_seconds),
        requests_per_day=live.requests_per_second * SECONDS_PER_DAY,
        rate_basis=f"live, last {live.window}",
        distinct_keys=head,
        universe_size=universe_size,
        unseen_key_share=1.0 - live.hit_ratio,
        mean_key_bytes=mean_key_bytes,
        coverage=CoverageCurve(
            head_sizes=np.array([0, head], dtype=np.int64), hit_ratios=np.array([0.0, live.hit_ratio])
        ),
    )


def facts_from_live(live: LiveFigures, base: ModelFacts) -> ModelFacts:
    """`base` with lookup and model latencies replaced by the live ones where both quantiles exist."""
    update: dict[str, Any] = {}
    for path, low, high in (
        ("model", "latency_p50_ms", "latency_p99_ms"),
        ("lookup", "lookup_p50_ms", "lookup_p99_ms"),
    ):
        p50, p99 = live.latencies_ms.get(f"{path}_p50"), live.latencies_ms.get(f"{path}_p99")
        if p50 and p99 and p50 > 0:
            update |= {low: p50, high: max(p99, p50)}
    if not update:
        return base
    return base.model_copy(update={**update, "source": f"live latencies, last {live.window}"})


def advise_live(
    client: MetricsProvider | str,
    *,
    deployment: str,
    namespace: str,
    facts: ModelFacts | None = None,
    costs: CostParams | None = None,
    window: str = "5m",
    head_size: int | None = None,
    universe_size: int | None = None,
    names: LiveMetricNames | None = None,
) -> Recommendation:
    """One call for the operator: read the live figures of a deployment and recommend a mode.

    `facts` supplies what Prometheus cannot tell (CPU per prediction, prediction size); live
    latencies replace its latencies. Blocking: run it in a thread from async handlers. The
    result is advice for status only; nothing here changes the deployment.
    """
    live = read_live(
        client, deployment=deployment, namespace=namespace, window=window, names=names, head_size=head_size
    )
    figures = figures_from_live(live, universe_size=universe_size)
    return recommend(figures, facts_from_live(live, facts or ModelFacts()), costs or CostParams())


def _connect(url: str, *, timeout_seconds: float, insecure_skip_verify: bool = False) -> MetricsProvider:
    from modelrollout.metrics.prometheus import PrometheusProvider

    return PrometheusProvider(url, timeout=timeout_seconds, insecure_skip_verify=insecure_skip_verify)


def _scalar(client: MetricsProvider, query: str) -> float | None:
    """The query's value under the provider's policy: None for no data, NaN or +/-Inf."""
    try:
        return known(client.query(query))
    except ProviderError as err:
        raise AdvisorError(f"Prometheus query failed: {str(err).splitlines()[0][:200]}") from err


def _selector(labels: dict[str, str]) -> str:
    return ",".join(f'{name}="{_escape(value)}"' for name, value in labels.items())


def _escape(value: str) -> str:
    return str(value).replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
