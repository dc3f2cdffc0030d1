"""The small interface analysis needs from a metrics backend."""

from __future__ import annotations

from typing import Protocol


class ProviderError(Exception):
    """The backend could not answer (unreachable, timeout, invalid query): a verdict of error."""


class MetricsProvider(Protocol):
    def query(self, promql: str) -> float | None:
        """The query's single value now; None when it returns no data. Raises ProviderError."""
        ...
