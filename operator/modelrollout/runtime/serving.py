"""The framework-free core of a serving bento: what happens around each model call.

A bento's service class holds one :class:`ServingRuntime` and stays thin: it parses the request,
asks the runtime for faults, calls its own model function, and hands the labels back here to be
logged (queued for the shared prediction log: :mod:`.ground_truth.writer`) and counted. Keeping the model call outside lets a hybrid service answer some rows from a
precomputed table (``path="lookup"``) and the rest from the model (``path="model"``) with the same
bookkeeping.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from .config import RuntimeConfig
from .faults import FaultInjector
from .ground_truth.records import Origin, Record, records
from .metrics import RuntimeMetrics


class PredictionSink(Protocol):
    """Where logged predictions go: :class:`~.ground_truth.writer.PredictionLogWriter` in a bento."""

    def put(self, rows: Sequence[Record]) -> bool: ...


class DiscardingSink:
    """No prediction log (tests of the counters; a process that logs nothing)."""

    def put(self, rows: Sequence[Record]) -> bool:
        return True


@dataclass(frozen=True)
class PredictionReceipt:
    """What the service returns next to the labels, so callers can send feedback and see who answered."""

    request_id: str
    model: str
    version: str
    track: str


class ServingRuntime:
    """Prediction log, counters and fault injection for one serving process."""

    def __init__(
        self,
        config: RuntimeConfig,
        *,
        metrics: RuntimeMetrics,
        log: PredictionSink | None = None,
        rng: random.Random | None = None,
        paths: Sequence[str] = ("model",),
    ) -> None:
        if not config.model_name or not config.model_version:
            raise ValueError(
                "ServingRuntime needs model_name and model_version; "
                "call RuntimeConfig.with_model_defaults() with the loaded model first"
            )
        self.config = config
        self.origin = Origin(model=config.model_name, version=config.model_version, track=config.track)
        self.metrics = metrics
        self.log: PredictionSink = log if log is not None else DiscardingSink()
        self.faults = FaultInjector(
            latency_ms=config.inject_latency_ms,
            error_rate=config.inject_error_rate,
            rng=rng if rng is not None else random.Random(),
        )
        metrics.initialise(self.origin, paths=paths)

    async def before_prediction(self) -> None:
        """Apply injected latency/errors (no-op unless the fault-injection variables are set)."""
        await self.faults.apply()

    def after_prediction(
        self, request_id: str, labels: Sequence[str], *, paths: str | Sequence[str] = "model",
        client_request_id: str | None = None,
    ) -> PredictionReceipt:  # fmt: skip
        """Log the labels for the ground-truth join and count them per path.

        ``paths`` is one path for all rows, or one per row (hybrid: lookup hits and model misses).
        """
        row_paths = [paths] * len(labels) if isinstance(paths, str) else list(paths)
        if len(row_paths) != len(labels):
            raise ValueError(f"got {len(row_paths)} paths for {len(labels)} predictions")
        for path in dict.fromkeys(row_paths):
            self.metrics.count_predictions(self.origin, path=path, rows=row_paths.count(path))
        self.log_predictions(request_id, labels, client_request_id=client_request_id)
        return self.receipt(request_id)

    def log_predictions(
        self, request_id: str, predictions: Sequence[Any], *, keys: Sequence[Any] | None = None,
        client_request_id: str | None = None,
    ) -> bool:  # fmt: skip
        """Queue the rows for the shared log (never waits; False when the queue dropped them).
        A ``None`` prediction (a lookup key nobody answered) is not logged; its row index is kept."""
        rows = records(
            request_id, predictions, origin=self.origin, keys=keys, client_request_id=client_request_id
        )
        return self.log.put(rows)

    def receipt(self, request_id: str) -> PredictionReceipt:
        return PredictionReceipt(
            request_id=request_id,
            model=self.origin.model,
            version=self.origin.version,
            track=self.origin.track,
        )
