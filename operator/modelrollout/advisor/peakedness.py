"""How concentrated requests are on few keys: coverage curves and single figures.

Coverage of a head of k keys is the share of requests whose key is among the k most requested
ones. Measured on the log it was computed from ("observed") it is optimistic: a key seen once
looks as valuable as any other, yet most keys seen once by chance will not come back. Decisions
therefore use the *held-out* curve: every request of the log is assigned at random to one of two
halves (binomial thinning of each key's count, equivalent to splitting the rows), keys are ranked
on the first half and the coverage is measured on the second. That estimates the hit ratio a head
chosen from past traffic gets on future traffic of the same distribution.

Single figures:
- `top_share`: share of requests covered by the most requested 1% of the key universe (at least
  one key). A uniform workload scores about 0.01, a fully concentrated one 1.0. It is chosen over
  a Gini coefficient because it reads directly as "1% of keys serve X% of requests".
- `missing_mass`: Good-Turing estimate of the share of future requests whose key does not occur
  in the log at all (keys seen exactly once / requests). A table of every key seen misses that
  share; static serving is only possible when it is (almost) zero or the universe is known.
- `zipf_exponent`: s of count ~ rank^-s, least squares on log-log over the ranks whose count is
  at least 5 (rarer keys are dominated by sampling noise); None when fewer than 10 such ranks.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

TOP_SHARE_OF_KEYS = 0.01
_ZIPF_MIN_COUNT = 5
_ZIPF_MIN_POINTS = 10


@dataclass(frozen=True)
class CoverageCurve:
    """Hit ratio of a head of `head_sizes[i]` keys is `hit_ratios[i]`; starts at (0, 0)."""

    head_sizes: np.ndarray
    hit_ratios: np.ndarray

    def __post_init__(self) -> None:
        if self.head_sizes.shape != self.hit_ratios.shape or self.head_sizes.size == 0:
            raise ValueError("a coverage curve needs as many hit ratios as head sizes, at least one")

    def hit_ratio_at(self, k: int) -> float:
        """Hit ratio of the largest listed head not larger than k (curves are step functions)."""
        index = int(np.searchsorted(self.head_sizes, k, side="right")) - 1
        return float(self.hit_ratios[max(index, 0)])


def observed_coverage(counts: np.ndarray) -> CoverageCurve:
    """In-sample coverage: the top-k share of the very requests the ranking came from."""
    ranked = np.sort(np.asarray(counts, dtype=np.int64))[::-1]
    cumulative = np.concatenate(([0], np.cumsum(ranked)))
    return CoverageCurve(
        head_sizes=np.arange(ranked.size + 1, dtype=np.int64),
        hit_ratios=cumulative / max(int(cumulative[-1]), 1),
    )


def held_out_coverage(counts: np.ndarray, *, seed: int = 0) -> CoverageCurve:
    """Coverage of heads ranked on one random half of the requests, measured on the other.

    Only keys seen in the ranking half can be in a head, so the curve ends at their number.
    Ties in the ranking are broken at random, so that the measuring half does not leak into it.
    With fewer than two requests there is nothing to hold out: the observed curve is returned.
    """
    counts = np.asarray(counts, dtype=np.int64)
    rng = np.random.default_rng(seed)
    ranking = rng.binomial(counts, 0.5)
    measuring = counts - ranking
    if int(measuring.sum()) == 0 or int(ranking.sum()) == 0:
        return observed_coverage(counts)
    order = np.lexsort((rng.random(counts.size), -ranking))
    order = order[ranking[order] > 0]
    cumulative = np.concatenate(([0], np.cumsum(measuring[order])))
    return CoverageCurve(
        head_sizes=np.arange(order.size + 1, dtype=np.int64),
        hit_ratios=cumulative / float(measuring.sum()),
    )


def top_share(
    counts: np.ndarray, *, cardinality: int | None = None, share_of_keys: float = TOP_SHARE_OF_KEYS
) -> float:
    """Share of requests covered by the top `share_of_keys` of `cardinality` keys (>= 1 key)."""
    counts = np.asarray(counts, dtype=np.int64)
    universe = max(int(cardinality or 0), counts.size)
    k = max(1, math.ceil(share_of_keys * universe))
    total = int(counts.sum())
    if total == 0:
        return 0.0
    if k >= counts.size:
        return 1.0
    return float(np.partition(counts, counts.size - k)[counts.size - k :].sum()) / total


def missing_mass(counts: np.ndarray) -> float:
    """Good-Turing estimate of the share of future requests for keys never seen in the log."""
    counts = np.asarray(counts, dtype=np.int64)
    total = int(counts.sum())
    return float(np.count_nonzero(counts == 1)) / total if total else 1.0


def zipf_exponent(counts: np.ndarray) -> float | None:
    """Fitted s of count ~ rank^-s over the reliably counted head; None if that head is too short."""
    ranked = np.sort(np.asarray(counts, dtype=np.float64))[::-1]
    ranked = ranked[ranked >= _ZIPF_MIN_COUNT]
    if ranked.size < _ZIPF_MIN_POINTS:
        return None
    ranks = np.log(np.arange(1, ranked.size + 1, dtype=np.float64))
    slope = np.polyfit(ranks, np.log(ranked), deg=1)[0]
    return float(-slope)
