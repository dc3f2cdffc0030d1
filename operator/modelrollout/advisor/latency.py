"""Latency quantiles of a mix of fast lookups and slower model calls.

Only two quantiles are known of each path (p50 and p99, measured or given), so each path is
modelled as the log-normal distribution through them: median p50, sigma = ln(p99/p50) / z(0.99).
Service latencies are right-skewed and positive, which a log-normal captures with exactly these
two numbers. A hybrid request is a lookup (share h, the hit ratio) or a lookup followed by a model
call (share 1 - h); the miss path is taken as the log-normal through the sums of the two paths'
quantiles, which is slightly pessimistic (quantiles of a sum are at most the sum of quantiles
for such co-monotone paths). Quantiles of the mix are found by bisection on its CDF, which lies
between the smallest and the largest of the components' quantiles.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from statistics import NormalDist

_NORMAL = NormalDist()
Z99 = _NORMAL.inv_cdf(0.99)
_BISECTION_STEPS = 100


@dataclass(frozen=True)
class Latency:
    """A latency distribution given by its median and 99th percentile, in milliseconds."""

    p50_ms: float
    p99_ms: float

    def __post_init__(self) -> None:
        if not (self.p50_ms > 0 and self.p99_ms >= self.p50_ms and math.isfinite(self.p99_ms)):
            raise ValueError(f"latency needs 0 < p50 <= p99, got p50={self.p50_ms} p99={self.p99_ms}")

    @property
    def sigma(self) -> float:
        return math.log(self.p99_ms / self.p50_ms) / Z99

    def cdf(self, x_ms: float) -> float:
        if x_ms <= 0:
            return 0.0
        if self.sigma == 0:
            return 1.0 if x_ms >= self.p50_ms else 0.0
        return _NORMAL.cdf(math.log(x_ms / self.p50_ms) / self.sigma)

    def quantile(self, q: float) -> float:
        return self.p50_ms * math.exp(self.sigma * _NORMAL.inv_cdf(q))

    def then(self, other: Latency) -> Latency:
        """One path followed by another (a lookup that missed, then the model)."""
        return Latency(p50_ms=self.p50_ms + other.p50_ms, p99_ms=self.p99_ms + other.p99_ms)


def mixture_quantile(q: float, parts: Sequence[tuple[float, Latency]]) -> float:
    """The q-quantile of a mix of latency distributions with the given weights (summing to 1)."""
    parts = [(w, d) for w, d in parts if w > 0]
    if not parts:
        raise ValueError("a latency mix needs a part with positive weight")
    if len(parts) == 1:
        return parts[0][1].quantile(q)
    low = min(d.quantile(q) for _, d in parts)
    high = max(d.quantile(q) for _, d in parts)
    for _ in range(_BISECTION_STEPS):
        middle = 0.5 * (low + high)
        if sum(w * d.cdf(middle) for w, d in parts) < q:
            low = middle
        else:
            high = middle
        if high - low <= 1e-9 * high:
            break
    return high


def hybrid_quantile(q: float, *, hit_ratio: float, lookup: Latency, model: Latency) -> float:
    """q-quantile of hybrid serving: hits are lookups, misses are a lookup then the model."""
    return mixture_quantile(q, [(hit_ratio, lookup), (1.0 - hit_ratio, lookup.then(model))])


def required_hit_ratio(target_ms: float, *, lookup: Latency, model: Latency, q: float = 0.99) -> float | None:
    """Smallest hit ratio whose hybrid q-quantile meets `target_ms`; None if even 100% cannot."""
    if hybrid_quantile(q, hit_ratio=1.0, lookup=lookup, model=model) > target_ms:
        return None
    if hybrid_quantile(q, hit_ratio=0.0, lookup=lookup, model=model) <= target_ms:
        return 0.0
    low, high = 0.0, 1.0  # quantile falls as the hit ratio rises
    for _ in range(60):
        middle = 0.5 * (low + high)
        if hybrid_quantile(q, hit_ratio=middle, lookup=lookup, model=model) <= target_ms:
            high = middle
        else:
            low = middle
    return high
