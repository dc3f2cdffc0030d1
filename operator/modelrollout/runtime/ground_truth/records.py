"""One logged prediction: who answered, when, for which request row and key, and what.

Predictions are stored as text (labels are compared with them as strings), keys as text too: a
scalar key as written (``42``, ``user-7``), a composite key as compact JSON with sorted columns
(``{"region":"eu","user":7}``), so a label file can name the same key the lookup was asked for.
"""

from __future__ import annotations

import json
import time
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

# Outcomes of one label, as counted in modelrollout_labels_total{outcome}.
Outcome = Literal["accepted", "duplicate", "unknown_request", "invalid", "unauthorized", "unavailable"]
OUTCOMES: tuple[Outcome, ...] = (
    "accepted", "duplicate", "unknown_request", "invalid", "unauthorized", "unavailable",
)  # fmt: skip

# One row of modelrollout_predictions, in PREDICTION_COLUMNS order (store/predlog.py).
Record = tuple[str, int, float, str, str, str, "str | None", str, "str | None"]


@dataclass(frozen=True, slots=True)
class Origin:
    """Which model answered; a label is judged against this, whichever pod receives it."""

    model: str
    version: str
    track: str


def key_text(key: Any) -> str | None:
    """A lookup key as stored in the log (None: no key, e.g. ``/predict``)."""
    if key is None:
        return None
    if isinstance(key, dict):
        return json.dumps(key, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    if isinstance(key, (list, tuple)):
        return json.dumps(list(key), separators=(",", ":"), ensure_ascii=False)
    return str(key)


def prediction_text(value: Any) -> str:
    """A prediction as the label is compared with it: its string form (``setosa``, ``1.5``, ``True``)."""
    return value if isinstance(value, str) else str(value)


def records(
    request_id: str,
    predictions: Sequence[Any],
    *,
    origin: Origin,
    ts: float | None = None,
    keys: Sequence[Any] | None = None,
    client_request_id: str | None = None,
) -> list[Record]:
    """The log rows of one request: row ``i`` is ``predictions[i]`` (and ``keys[i]``). A ``None``
    prediction (a lookup key nobody answered) is not logged, so a label for it is unknown, while
    the other rows keep their index."""
    if keys is not None and len(keys) != len(predictions):
        raise ValueError(f"got {len(keys)} keys for {len(predictions)} predictions")
    when = time.time() if ts is None else ts
    model, version, track = origin.model, origin.version, origin.track
    return [
        (request_id, row, when, model, version, track, key_text(keys[row]) if keys is not None else None,
         prediction_text(value), client_request_id)
        for row, value in enumerate(predictions)
        if value is not None
    ]  # fmt: skip
