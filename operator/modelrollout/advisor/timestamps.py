"""Span of a timestamp column, whatever form the timestamps take.

Timestamps may be timestamps (Parquet, ISO 8601 in CSV, which pyarrow recognises), dates,
ISO 8601 strings or epoch numbers. Epoch numbers are seconds unless they are too large to be
seconds (> 1e11, i.e. after the year 5000): then they are milliseconds, microseconds or
nanoseconds by magnitude, since logs written in milliseconds are common and would otherwise
make the request rate a thousand times too small.
"""

from __future__ import annotations

import pyarrow as pa
import pyarrow.compute as pc

from modelrollout.advisor.errors import AdvisorError

# (upper bound of the largest epoch value, divisor to seconds): seconds, ms, us; beyond: ns
_EPOCH_SCALES = ((1e11, 1.0), (1e14, 1e3), (1e17, 1e6))


def epoch_range(values: pa.ChunkedArray, *, column: str) -> tuple[float, float] | None:
    """(min, max) of a timestamp column in epoch seconds; None if every value is null."""
    kind = values.type
    if pa.types.is_dictionary(kind):
        values, kind = values.cast(kind.value_type), kind.value_type
    if pa.types.is_string(kind) or pa.types.is_large_string(kind):
        try:
            values, kind = values.cast(pa.timestamp("us")), pa.timestamp("us")
        except pa.ArrowInvalid as err:
            raise AdvisorError(
                f"timestamp column {column!r} does not hold timestamps ({str(err).strip().splitlines()[0]}): "
                "use ISO 8601 or epoch seconds"
            ) from err
    if pa.types.is_date(kind):
        values, kind = values.cast(pa.timestamp("s")), pa.timestamp("s")
    if pa.types.is_timestamp(kind):
        scale = {"s": 1.0, "ms": 1e3, "us": 1e6, "ns": 1e9}[kind.unit]
        extremes = pc.min_max(values.cast(pa.int64()))
    elif pa.types.is_integer(kind) or pa.types.is_floating(kind):
        extremes, scale = pc.min_max(values), None
    else:
        raise AdvisorError(
            f"timestamp column {column!r} has type {kind}; expected timestamps or epoch numbers"
        )
    low, high = extremes["min"].as_py(), extremes["max"].as_py()
    if low is None or high is None:
        return None
    if scale is None:  # epoch numbers: seconds unless too large to be seconds
        scale = next((s for limit, s in _EPOCH_SCALES if abs(high) < limit), 1e9)
    return float(low) / scale, float(high) / scale
