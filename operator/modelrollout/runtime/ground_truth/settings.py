"""Which store the prediction log and the labels live in.

``MODELROLLOUT_GROUND_TRUTH_DSN`` (``spec.groundTruth.store``), else ``MODELROLLOUT_STORE_DSN`` (the
batch store, ``spec.batch.store``), else a SQLite file of this process in the temp directory. The
last one works, but is not shared: a label must then reach the very pod that predicted, and the
figures of a version count only this pod's predictions; the runtime says so in a warning at
start-up.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Mapping
from dataclasses import dataclass

from ..config import ConfigError
from ..store.naming import StoreError
from ..store.urls import redact, store_kind

GROUND_TRUTH_DSN = "MODELROLLOUT_GROUND_TRUTH_DSN"
STORE_DSN = "MODELROLLOUT_STORE_DSN"


@dataclass(frozen=True)
class LogLocation:
    url: str
    shared: bool
    source: str  # the variable the URL came from, or "per-process file"

    def describe(self) -> str:
        return f"{redact(self.url)} (from {self.source})"

    def warning(self) -> str | None:
        """The start-up warning for a log nobody else reads (None when the log is shared)."""
        if self.shared:
            return None
        return (
            f"prediction log is a file of this process ({redact(self.url)}): neither {GROUND_TRUTH_DSN} "
            f"nor {STORE_DSN} is set, so labels (/feedback) must reach this very pod, and the "
            "ground-truth figures count only its own predictions; set spec.groundTruth.store"
        )


def log_location(
    environ: Mapping[str, str], *, tmpdir: str | None = None, pid: int | None = None
) -> LogLocation:
    """Where the log goes; ConfigError (naming the variable) for a URL no store can open."""
    for var in (GROUND_TRUTH_DSN, STORE_DSN):
        url = environ.get(var, "").strip()
        if url:
            try:
                store_kind(url)
            except StoreError as exc:
                raise ConfigError(f"invalid serving environment: {var}: {exc}") from None
            return LogLocation(url=url, shared=True, source=var)
    folder = tmpdir or tempfile.gettempdir()
    path = os.path.join(folder, f"modelrollout-prediction-log-{os.getpid() if pid is None else pid}.sqlite")
    return LogLocation(url=f"sqlite:///{path}", shared=False, source="per-process file")
