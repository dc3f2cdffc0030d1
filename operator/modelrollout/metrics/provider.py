"""The small interface every reader of metrics uses (the canary analysis and the advisor),
and the one policy for what a value means.

A provider answers a query with one number or None:
- an empty result is None ("no data");
- several series are an error (ProviderError): a threshold needs one value, so a query that
  forgot its `sum` is caught instead of one series being picked at random;
- NaN and +/-Inf are returned as they are; `known()` is the one place that decides they are
  unknown, never a pass or a breach on their own;
- an unreachable server or a refused query raises ProviderError.
"""

from __future__ import annotations

import math
from typing import Protocol


class ProviderError(Exception):
    """The backend could not answer (unreachable, timeout, invalid query): a verdict of error."""


class MetricsProvider(Protocol):
    def query(self, promql: str) -> float | None:
        """The query's single value now; None when it returns no data. Raises ProviderError."""
        ...


def known(value: float | None) -> float | None:
    """The value if it can be judged: None for no data, NaN and +/-Inf."""
    return value if value is not None and math.isfinite(value) else None
