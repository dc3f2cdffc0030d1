"""Retries after API errors back off exponentially, with jitter that spreads objects apart."""

from __future__ import annotations

import random
import statistics

import pytest

from modelrollout.reconcile.backoff import retry_delay


@pytest.mark.parametrize(
    ("failures", "ceiling"), [(1, 1.0), (2, 2.0), (3, 4.0), (6, 32.0), (8, 120.0), (50, 120.0)]
)
def test_delays_stay_within_half_the_ceiling_and_the_ceiling(failures, ceiling):
    rng = random.Random(failures)
    delays = [retry_delay(failures, rand=rng.random) for _ in range(2000)]
    assert min(delays) >= ceiling / 2 and max(delays) <= ceiling
    # spread over the whole range, not bunched: every tenth of [ceiling/2, ceiling] is used
    buckets = {int((d - ceiling / 2) / (ceiling / 2) * 10) for d in delays}
    assert buckets >= set(range(10))
    assert statistics.mean(delays) == pytest.approx(0.75 * ceiling, rel=0.05)


def test_the_extremes_of_the_random_draw_give_the_bounds():
    assert retry_delay(3, rand=lambda: 0.0) == 2.0
    assert retry_delay(3, rand=lambda: 1.0) == 4.0


def test_a_thousand_objects_failing_together_do_not_retry_in_lockstep():
    rng = random.Random(7)
    delays = [round(retry_delay(4, rand=rng.random), 1) for _ in range(1000)]
    assert len(set(delays)) > 30  # spread over [4, 8] s in 0.1 s slots
    assert max(delays.count(d) for d in set(delays)) < 100
