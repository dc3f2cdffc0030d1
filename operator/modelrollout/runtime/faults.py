"""Fault injection for tests: make one version slow or failing on purpose.

The canary analysis must be seen to roll back a slow or failing challenger; these knobs create one
from the same image, driven by ``MODELROLLOUT_INJECT_LATENCY_MS`` (sleep added before every
prediction) and ``MODELROLLOUT_INJECT_ERROR_RATE`` (share of predictions that raise
:class:`InjectedFault`, which BentoML answers with HTTP 500). Both default to 0 (off). Never set
them in production.
"""

from __future__ import annotations

import asyncio
import random
from dataclasses import dataclass, field


class InjectedFault(RuntimeError):
    """Raised on purpose by :class:`FaultInjector`; never a real model failure."""


def should_fail(*, error_rate: float, draw: float) -> bool:
    """True for a uniform ``draw`` in [0, 1) that falls inside ``error_rate`` (1.0 always fails, 0 never)."""
    return draw < error_rate


@dataclass
class FaultInjector:
    """Applies the configured latency and error rate to one prediction at a time."""

    latency_ms: float = 0.0
    error_rate: float = 0.0
    rng: random.Random = field(default_factory=random.Random)

    @property
    def active(self) -> bool:
        return self.latency_ms > 0 or self.error_rate > 0

    async def apply(self) -> None:
        """Sleep the injected latency (without blocking the event loop), then maybe fail."""
        if self.latency_ms > 0:
            await asyncio.sleep(self.latency_ms / 1000.0)
        if self.error_rate > 0 and should_fail(error_rate=self.error_rate, draw=self.rng.random()):
            raise InjectedFault(f"injected failure (MODELROLLOUT_INJECT_ERROR_RATE={self.error_rate})")
