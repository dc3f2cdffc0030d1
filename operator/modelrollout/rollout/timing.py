"""Time arithmetic of the rollout machine over the RFC 3339 stamps kept in status (pure)."""

from __future__ import annotations

from datetime import datetime

from modelrollout.api import conditions as C

POLL_SECONDS = 2.0  # how soon to look again while waiting on pods or routes


def ts(now: datetime) -> str:
    return C.rfc3339(now)


def parse_ts(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


def elapsed(since: str | None, now: datetime) -> float:
    start = parse_ts(since)
    return 0.0 if start is None else (now - start).total_seconds()
