"""Metrics registered once per prometheus_client registry (the process's, or a test's own).

prometheus_client refuses a second metric of one name on one registry, and the runtime's pieces
are built more than once per process (reloads, tests): each family of metrics is created once per
registry and cached here. ``prometheus_client`` is imported only when a metric is first needed
(see metrics.py: BentoML must have set up multiprocess mode before the import).
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, TypeVar

T = TypeVar("T")

_cache: dict[tuple[str, int], tuple[Any, Any]] = {}
_lock = threading.Lock()


def once_per_registry(family: str, registry: Any, create: Callable[[Any], T]) -> T:
    """`create(registry)` the first time `family` is asked for on `registry`; the same after."""
    if registry is None:
        import prometheus_client

        registry = prometheus_client.REGISTRY
    key = (family, id(registry))
    with _lock:
        cached = _cache.get(key)
        if cached is None or cached[0] is not registry:
            cached = (registry, create(registry))
            _cache[key] = cached
    return cached[1]
