"""How long a reconcile loop waits after a failed reconcile (pure).

Exponential backoff with "equal jitter": after the n-th failure in a row the ceiling is
base * 2**n (capped), and the wait is uniform in [ceiling/2, ceiling]. The doubling eases an
API server that answers 429 or 5xx; the jitter spreads 1,000 objects that failed together
(an API server restart) over the interval instead of retrying in lockstep; the lower half
keeps a retry from coming almost at once.
"""

from __future__ import annotations

import random
from collections.abc import Callable

BASE_SECONDS = 1.0
CAP_SECONDS = 120.0


def retry_delay(
    failures: int,
    *,
    base: float = BASE_SECONDS,
    cap: float = CAP_SECONDS,
    rand: Callable[[], float] = random.random,
) -> float:
    """Seconds to wait after `failures` (>= 1) failed reconciles in a row."""
    ceiling = min(cap, base * 2 ** min(max(failures - 1, 0), 32))
    return ceiling / 2 + rand() * ceiling / 2
