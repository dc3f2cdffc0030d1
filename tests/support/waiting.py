"""Bounded polling for tests that watch real systems (API servers, processes)."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any


def wait_until(predicate: Callable[[], Any], *, timeout: float, what: str, interval: float = 0.5) -> Any:
    """The predicate's first truthy value; an AssertionError it raises counts as "not yet".
    Fails with the last value seen after `timeout` seconds."""
    deadline = time.monotonic() + timeout
    last: Any = None
    while time.monotonic() < deadline:
        try:
            last = predicate()
            if last:
                return last
        except AssertionError as exc:
            last = exc
        time.sleep(interval)
    raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {last}")
