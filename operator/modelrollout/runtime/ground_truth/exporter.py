"""Every period, the figures of this pod's model version from the shared store, as gauges.

Every pod of a version computes the same numbers from the same store (so it does not matter
which pod received a label, or which one Prometheus scrapes); the queries take ``max()``. The
window is the retention: all predictions of the version logged within it, with whatever labels
have arrived so far, however late. A failed computation keeps the last values (and their
``updated_timestamp_seconds``), logs a rate-limited warning and is retried at the next period.

Its store connection is its own, with a long deadline (a join over a million predictions may
take seconds); it runs on its own thread and never touches a request.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from typing import Any

from ..logsafe import RateLimitedLog
from .figures import Figures, compute
from .metrics import UPDATED, FigureGauges
from .records import Origin

log = logging.getLogger(__name__)


class FiguresExporter:
    def __init__(
        self, store: Any, *, origin: Origin, retention_s: float, period_s: float, gauges: FigureGauges,
        positive_class: str | None = None, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.store, self.origin, self.gauges = store, origin, gauges
        self.retention_s, self.period_s, self.positive_class = retention_s, period_s, positive_class
        self.clock = clock
        self.latest: Figures | None = None
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._failures = RateLimitedLog(log, rate=0.1)

    def compute(self) -> Figures:
        """Read the store once and set the gauges (blocking; raises what the store raises)."""
        now = self.clock()
        since = now - self.retention_s
        who = {"model": self.origin.model, "version": self.origin.version, "since": since}
        predictions = self.store.count_predictions(**who)
        pairs = self.store.label_pairs(**who)
        figures = compute(predictions, pairs, positive_class=self.positive_class)
        for name, value in figures.as_gauges().items():
            self.gauges.set(name, value)
        self.gauges.set(UPDATED, now)
        self.latest = figures
        return figures

    def start(self) -> FiguresExporter:
        self._thread = threading.Thread(target=self._run, name="ground-truth-figures", daemon=True)
        self._thread.start()
        return self

    def stop(self, timeout_s: float = 5.0) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=timeout_s)

    def _run(self) -> None:
        try:
            while not self._stop.is_set():
                started = time.monotonic()
                try:
                    self.compute()
                except Exception as exc:  # noqa: BLE001 - kept trying every period
                    self._failures.log(logging.WARNING, "ground-truth figures of %s %s not updated: %s: %s",
                                       self.origin.model, self.origin.version, type(exc).__name__,
                                       str(exc).splitlines()[0] if str(exc) else "")  # fmt: skip
                self._stop.wait(max(0.0, self.period_s - (time.monotonic() - started)))
        finally:
            self.store.release_thread()
