"""Time arithmetic of the rollout machine over the RFC 3339 stamps kept in status (pure)."""

from __future__ import annotations

from datetime import datetime

from modelrollout.api import conditions as C
from modelrollout.api.base import parse_duration
from modelrollout.api.status import RolloutStatus

POLL_SECONDS = 2.0  # how soon to look again while waiting on pods or routes


def ts(now: datetime) -> str:
    return C.rfc3339(now)


def parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def elapsed(since: str | None, now: datetime) -> float:
    start = parse_ts(since)
    return 0.0 if start is None else (now - start).total_seconds()


def analysis_wait(r: RolloutStatus, interval: float, now: datetime) -> float:
    """Seconds until the next analysis: one full interval of data at this step's weight first,
    then one interval after the previous analysis."""
    since_step = elapsed(r.step_started_at, now)
    analysed_this_step = r.last_analysis_at is not None and parse_ts(r.last_analysis_at) >= parse_ts(
        r.step_started_at
    )
    since = min(elapsed(r.last_analysis_at, now), since_step) if analysed_this_step else since_step
    return interval - since


def next_due(r: RolloutStatus, pause: float, spec, now: datetime) -> float:
    waits = [pause - elapsed(r.step_started_at, now)]
    if spec.analysis is not None:
        waits.append(analysis_wait(r, parse_duration(spec.analysis.interval), now))
    positive = [w for w in waits if w > 0]
    return min(positive) if positive else POLL_SECONDS
