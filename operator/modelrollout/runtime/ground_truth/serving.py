"""Ground truth in a serving process: the log writer, the feedback join and the figures, together.

A bento builds one :class:`GroundTruth` when its service starts (after BentoML set up the metrics
directory) and stops it on shutdown. Three store objects on the same URL, each with the wait its
caller can afford: the writer's (the store deadline: its own thread), the feedback join's (half
the deadline, like every store call on behalf of a request) and the figures' (long: a join over
a million predictions takes seconds, on its own thread).
"""

from __future__ import annotations

import logging
import os
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from ..config import RuntimeConfig
from ..store.factory import open_log_store
from ..storecalls import StoreCalls
from .exporter import FiguresExporter
from .feedback import FeedbackJoin
from .metrics import FigureGauges, LogCounters, log_counters
from .records import Origin
from .settings import LogLocation, log_location
from .writer import PredictionLogWriter

log = logging.getLogger("modelrollout.runtime.ground_truth")
FIGURES_TIMEOUT_S = 60.0


@dataclass
class GroundTruth:
    location: LogLocation
    writer: PredictionLogWriter
    feedback: FeedbackJoin
    exporter: FiguresExporter
    counters: LogCounters

    @classmethod
    def start(
        cls, config: RuntimeConfig, *, origin: Origin, calls: StoreCalls, environ: Mapping[str, str] | None = None,
        registry: Any = None, clock: Callable[[], float] = time.time,
    ) -> GroundTruth:  # fmt: skip
        """Open the stores (lazily: nothing is asked of the store before the first write), start the
        writer and the figures threads; logs where the log goes (and a warning if it is not shared)."""
        location = log_location(os.environ if environ is None else environ)
        counters = log_counters(registry)
        writer = PredictionLogWriter(
            open_log_store(location.url, wait_timeout_s=config.store_timeout_s),
            capacity=config.prediction_log_queue, retention_s=config.retention_s, counters=counters, clock=clock,
        )  # fmt: skip
        feedback = FeedbackJoin(
            open_log_store(location.url, wait_timeout_s=config.store_busy_timeout_s), calls=calls,
            count=counters.count_label, writer=writer, flush_timeout_s=config.store_timeout_s / 4, clock=clock,
        )  # fmt: skip
        exporter = FiguresExporter(
            open_log_store(location.url, wait_timeout_s=FIGURES_TIMEOUT_S), origin=origin,
            retention_s=config.retention_s, period_s=config.figures_period_s, positive_class=config.positive_class,
            gauges=FigureGauges(registry), clock=clock,
        )  # fmt: skip
        warning = location.warning()
        if warning:
            log.warning("%s", warning)
        log.info("prediction log: %s; retention %d s; figures of %s %s every %g s; feedback %s",
                 location.describe(), config.retention_s, origin.model, origin.version, config.figures_period_s,
                 "needs the bearer token" if config.feedback_token else "disabled (no token)")  # fmt: skip
        writer.start()
        exporter.start()
        return cls(location, writer, feedback, exporter, counters)

    def stop(self, timeout_s: float = 5.0) -> None:
        """Write what is queued (bounded), then stop both threads."""
        self.exporter.stop(timeout_s=timeout_s)
        self.writer.stop(timeout_s=timeout_s)
