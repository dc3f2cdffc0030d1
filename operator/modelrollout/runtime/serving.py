"""The framework-free core of a serving bento: what happens around each model call.

A bento's service class holds one :class:`ServingRuntime` and stays thin: it parses the request,
asks the runtime for faults, calls its own model function, and hands the labels back here to be
logged and counted. Keeping the model call outside lets a hybrid service answer some rows from a
precomputed table (``path="lookup"``) and the rest from the model (``path="model"``) with the same
bookkeeping.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from .config import RuntimeConfig
from .faults import FaultInjector
from .metrics import RuntimeMetrics
from .prediction_log import FeedbackVerdict, InMemoryPredictionLog, Origin, PredictionLog
from .requestid import validate_request_id


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
        log: PredictionLog | None = None,
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
        self.log = log if log is not None else InMemoryPredictionLog(capacity=config.prediction_log_size)
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
        self, request_id: str, labels: Sequence[str], *, paths: str | Sequence[str] = "model"
    ) -> PredictionReceipt:
        """Log the labels for the feedback join and count them per path.

        ``paths`` is one path for all rows, or one per row (hybrid: lookup hits and model misses).
        """
        row_paths = [paths] * len(labels) if isinstance(paths, str) else list(paths)
        if len(row_paths) != len(labels):
            raise ValueError(f"got {len(row_paths)} paths for {len(labels)} predictions")
        for path in dict.fromkeys(row_paths):
            self.metrics.count_predictions(self.origin, path=path, rows=row_paths.count(path))
        self.log.record(request_id, labels, origin=self.origin)
        return self.receipt(request_id)

    def receipt(self, request_id: str) -> PredictionReceipt:
        return PredictionReceipt(
            request_id=request_id,
            model=self.origin.model,
            version=self.origin.version,
            track=self.origin.track,
        )

    def feedback(self, request_id: str, *, label: str, row: int = 0) -> FeedbackVerdict:
        """Join a true label to the logged prediction and count the outcome.

        Counted against the version that made the prediction (the log's origin), so a shared log
        behind several pods still attributes accuracy to the right side of a rollout; an unknown
        request is counted against this process's own labels.
        """
        validate_request_id(request_id)
        if not label or len(label) > self.config.max_label_chars:
            raise ValueError(
                f"label must be 1..{self.config.max_label_chars} characters (MODELROLLOUT_MAX_LABEL_CHARS)"
            )
        if row < 0:
            raise ValueError(f"row must be >= 0, got {row}")
        verdict = self.log.judge(request_id, row=row, actual=label)
        self.metrics.count_feedback(verdict.origin or self.origin, outcome=verdict.outcome)
        return verdict
