"""The workload figures the recommender works from, whatever they were measured from.

A request log (`figures_from_log`) and live Prometheus metrics (`modelrollout.advisor.live`)
both end up as one `WorkloadFigures`, so the recommender has a single input shape: request rate,
cardinality, the share of requests for keys outside any table built from what was seen, and an
estimated coverage curve (hit ratio by head size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from pydantic import BaseModel, ConfigDict

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.peakedness import (
    CoverageCurve,
    held_out_coverage,
    missing_mass,
    observed_coverage,
    top_share,
    zipf_exponent,
)
from modelrollout.advisor.workload import KeyCounts

SECONDS_PER_DAY = 86_400.0
DEFAULT_ASSUMED_SPAN_HOURS = 24.0


class CoveragePoint(BaseModel):
    """The coverage curve at one head size: estimated (held out) and observed (in sample)."""

    model_config = ConfigDict(frozen=True)

    head_size: int
    estimated: float
    observed: float | None


class WorkloadSummary(BaseModel):
    """The scalar workload figures, as printed and as put into JSON output."""

    model_config = ConfigDict(frozen=True)

    source: str
    total_requests: int
    requests_per_day: float
    rate_basis: str
    distinct_keys: int
    universe_size: int | None
    cardinality: int
    top1_percent_share: float | None
    zipf_exponent: float | None
    unseen_key_share: float | None
    mean_key_bytes: float
    coverage_points: tuple[CoveragePoint, ...] = ()


@dataclass(frozen=True)
class WorkloadFigures:
    """What the recommender needs to know about the requests.

    `unseen_key_share` is the share of requests a table of the `distinct_keys` known keys would
    miss (Good-Turing for a log, the live miss ratio for a running table); None if unknown.
    `coverage` is the curve decisions use (held-out for a log); `observed_coverage` the in-sample
    one, drawn for comparison.
    """

    source: str
    total_requests: int
    requests_per_day: float
    rate_basis: str
    distinct_keys: int
    universe_size: int | None
    unseen_key_share: float | None
    mean_key_bytes: float
    coverage: CoverageCurve
    observed_coverage: CoverageCurve | None = None
    top1_percent_share: float | None = None
    zipf_exponent: float | None = None

    @property
    def cardinality(self) -> int:
        """Keys a static table must hold: the known universe if given, else the keys seen."""
        return self.universe_size if self.universe_size is not None else self.distinct_keys

    def summary(self) -> WorkloadSummary:
        return WorkloadSummary(
            source=self.source,
            total_requests=self.total_requests,
            requests_per_day=self.requests_per_day,
            rate_basis=self.rate_basis,
            distinct_keys=self.distinct_keys,
            universe_size=self.universe_size,
            cardinality=self.cardinality,
            top1_percent_share=self.top1_percent_share,
            zipf_exponent=self.zipf_exponent,
            unseen_key_share=self.unseen_key_share,
            mean_key_bytes=self.mean_key_bytes,
            coverage_points=self.coverage_points(),
        )

    def coverage_points(self) -> tuple[CoveragePoint, ...]:
        """The curves at k = 1, 10, 100, ... (decades up to the largest head), for printing."""
        largest = int(self.coverage.head_sizes[-1])
        sizes = [10**e for e in range(0, 13) if 10**e < largest] + ([largest] if largest > 0 else [])
        observed = self.observed_coverage
        return tuple(
            CoveragePoint(
                head_size=k,
                estimated=self.coverage.hit_ratio_at(k),
                observed=None if observed is None else observed.hit_ratio_at(k),
            )
            for k in sizes
        )


def figures_from_log(
    counts: KeyCounts,
    *,
    universe_size: int | None = None,
    requests_per_second: float | None = None,
    assumed_span_hours: float = DEFAULT_ASSUMED_SPAN_HOURS,
    seed: int = 0,
) -> WorkloadFigures:
    """Figures of a counted log; the rate comes from `requests_per_second`, else the timestamps,
    else the assumption that the log covers `assumed_span_hours` (said so in `rate_basis`)."""
    if universe_size is not None and universe_size < counts.distinct_keys:
        raise AdvisorError(
            f"universe size {universe_size} is smaller than the {counts.distinct_keys} distinct keys in the log"
        )
    per_day, basis = _daily_rate(
        counts, requests_per_second=requests_per_second, assumed_span_hours=assumed_span_hours
    )
    return WorkloadFigures(
        source="log",
        total_requests=counts.total_requests,
        requests_per_day=per_day,
        rate_basis=basis,
        distinct_keys=counts.distinct_keys,
        universe_size=universe_size,
        unseen_key_share=missing_mass(counts.counts),
        mean_key_bytes=counts.mean_key_bytes,
        coverage=held_out_coverage(counts.counts, seed=seed),
        observed_coverage=observed_coverage(counts.counts),
        top1_percent_share=top_share(counts.counts, cardinality=universe_size),
        zipf_exponent=zipf_exponent(counts.counts),
    )


def _daily_rate(
    counts: KeyCounts, *, requests_per_second: float | None, assumed_span_hours: float
) -> tuple[float, str]:
    if requests_per_second is not None:
        if not (math.isfinite(requests_per_second) and requests_per_second > 0):
            raise AdvisorError(f"requests per second must be a positive number, got {requests_per_second}")
        return requests_per_second * SECONDS_PER_DAY, "given"
    span = counts.span_seconds
    if span is not None:
        if span <= 0:
            raise AdvisorError(
                "all timestamps in the log are equal: no rate can be derived; pass the request rate instead"
            )
        return counts.total_requests / span * SECONDS_PER_DAY, f"timestamps ({span / 3600:.3g} h)"
    if not (math.isfinite(assumed_span_hours) and assumed_span_hours > 0):
        raise AdvisorError(f"assumed log span must be a positive number of hours, got {assumed_span_hours}")
    rate = counts.total_requests / (assumed_span_hours * 3600) * SECONDS_PER_DAY
    return rate, f"assumed: the log covers {assumed_span_hours:g} h (no timestamps, no rate given)"
