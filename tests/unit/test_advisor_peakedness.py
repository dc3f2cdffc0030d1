"""Coverage curves and concentration figures on counts whose answers are known."""

from __future__ import annotations

import numpy as np
import pytest

from modelrollout.advisor.peakedness import (
    held_out_coverage,
    missing_mass,
    observed_coverage,
    top_share,
    zipf_exponent,
)


def test_observed_coverage_is_the_cumulative_share_of_the_most_requested_keys():
    curve = observed_coverage(np.array([1, 6, 3]))
    assert curve.head_sizes.tolist() == [0, 1, 2, 3]
    assert curve.hit_ratios.tolist() == pytest.approx([0, 0.6, 0.9, 1.0])
    assert curve.hit_ratio_at(2) == pytest.approx(0.9)
    assert curve.hit_ratio_at(10) == pytest.approx(1.0)


def test_held_out_coverage_does_not_credit_keys_seen_once_by_chance():
    # uniform over 10^6 keys, 10^5 requests: storing every key seen covers the log entirely,
    # but future requests hit those ~95k keys about 9.5% of the time
    keys = np.random.default_rng(0).integers(0, 10**6, size=10**5)
    counts = np.unique(keys, return_counts=True)[1]
    assert observed_coverage(counts).hit_ratios[-1] == 1.0
    held_out = held_out_coverage(counts, seed=1)
    seen_in_half = held_out.head_sizes[-1]
    assert held_out.hit_ratios[-1] == pytest.approx(seen_in_half / 10**6, abs=0.01)


def test_held_out_coverage_tracks_the_true_coverage_of_a_zipf_workload():
    universe = 10**5
    p = np.arange(1, universe + 1, dtype=float) ** -1.2
    p /= p.sum()
    counts = np.bincount(np.random.default_rng(4).choice(universe, size=4 * 10**5, p=p), minlength=universe)
    curve = held_out_coverage(counts[counts > 0], seed=0)
    for k in (10, 100, 1000):
        assert curve.hit_ratio_at(k) == pytest.approx(p[:k].sum(), abs=0.02)
    assert np.all(np.diff(curve.hit_ratios) >= 0)


def test_held_out_coverage_is_reproducible_for_a_seed():
    counts = np.random.default_rng(2).integers(1, 50, size=1000)
    first, again = held_out_coverage(counts, seed=7), held_out_coverage(counts, seed=7)
    assert np.array_equal(first.hit_ratios, again.hit_ratios)


def test_top_share_reads_as_share_of_requests_of_the_top_percent_of_keys():
    assert top_share(np.full(1000, 5)) == pytest.approx(0.01)
    assert top_share(np.array([901] + [1] * 99)) == pytest.approx(0.901)
    # with a universe of 10^4 keys, the top 1% is 100 keys: all 50 seen ones
    assert top_share(np.full(50, 2), cardinality=10**4) == 1.0


def test_missing_mass_is_the_share_of_requests_for_keys_seen_once():
    assert missing_mass(np.array([1, 1, 2, 6])) == pytest.approx(0.2)
    assert missing_mass(np.array([3, 4])) == 0.0


def test_zipf_exponent_recovers_the_exponent_of_rank_frequency_counts():
    ranks = np.arange(1, 2001, dtype=float)
    counts = np.round(1e6 * ranks**-1.1).astype(np.int64)
    assert zipf_exponent(counts) == pytest.approx(1.1, abs=0.02)
    assert zipf_exponent(np.ones(100, dtype=np.int64)) is None
