"""What each serving protection costs per request, measured in one process (A/B, interleaved).

End-to-end latencies of two server processes on a shared 2-core machine differ by a few tenths of
a millisecond for reasons that have nothing to do with their code (which core, which neighbour);
this part measures the protections themselves, each against what the bento did before, in the same
process and loop, alternating call by call:

- ASGI layers: request id only, vs. BentoML's concurrency limit + the metric-label wrapper + request
  id + body/content-type guard + OpenAPI route, around the same trivial endpoint;
- log line: the control-character escaping of one access-log record (nothing before);
- store call: one lookup of a real SQLite table on the store's own pool with a deadline, vs. on the
  loop's default executor without one.
"""

from __future__ import annotations

import asyncio
import logging
import statistics
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from prometheus_client import CollectorRegistry

from modelrollout.runtime.guard import RequestGuard
from modelrollout.runtime.logsafe import EscapingFilter
from modelrollout.runtime.lookup import LookupService
from modelrollout.runtime.openapi import OpenApiDocs
from modelrollout.runtime.requestid import RequestIdMiddleware
from modelrollout.runtime.routes import install_endpoint_labels
from modelrollout.runtime.store import open_store
from modelrollout.runtime.storecalls import StoreCalls

SCOPE = {
    "type": "http", "method": "POST", "path": "/predict",
    "headers": [(b"host", b"127.0.0.1"), (b"content-type", b"application/json"), (b"content-length", b"32"),
                (b"user-agent", b"python-httpx/0.28.1"), (b"accept", b"*/*"), (b"connection", b"keep-alive")],
}  # fmt: skip
BODY = {"type": "http.request", "body": b'{"rows": [[5.1, 3.5, 1.4, 0.2]]}', "more_body": False}


async def _endpoint(scope: dict, receive: Any, send: Any) -> None:
    await receive()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": b"{}"})


class _Metrics:
    """Stands for BentoML's metrics middleware: reads the label from the scope, calls on."""

    def __init__(self, app: Any, **options: Any) -> None:
        self.app, self.seen = app, None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        self.seen = scope["path"]
        await self.app(scope, receive, send)


def asgi_stacks() -> tuple[Any, Any]:
    from bentoml._internal.server.http import instruments
    from bentoml._internal.server.http.traffic import MaxConcurrencyMiddleware

    saved = instruments.RunnerTrafficMetricsMiddleware
    instruments.RunnerTrafficMetricsMiddleware = _Metrics
    try:
        install_endpoint_labels(["/predict", "/lookup", "/feedback"])
        labelled = instruments.RunnerTrafficMetricsMiddleware
    finally:
        instruments.RunnerTrafficMetricsMiddleware = saved
    before = _Metrics(RequestIdMiddleware(_endpoint))
    inner = RequestIdMiddleware(RequestGuard(OpenApiDocs(_endpoint, build=dict), max_body_bytes=1 << 20, paths=["/predict"]))  # fmt: skip
    after = MaxConcurrencyMiddleware(labelled(inner), max_concurrency=100)
    return before, after


async def _asgi_call(app: Any) -> None:
    async def receive() -> dict:
        return BODY

    async def send(message: dict) -> None:
        pass

    await app(dict(SCOPE), receive, send)


def _record() -> logging.LogRecord:
    args = ("127.0.0.1:40700", "scheme=http,method=POST,path=/predict,type=application/json,length=32",
            "status=200,type=application/json,length=132", 2.171)  # fmt: skip
    return logging.LogRecord("bentoml.access", logging.INFO, __file__, 1, "%s (%s) (%s) %.3fms", args, None)


async def _ab(before: Callable[[], Awaitable], after: Callable[[], Awaitable], n: int) -> tuple[float, float]:
    """Median seconds of each, calls alternating."""
    a, b = [], []
    for i in range(n):
        for fn, out in ((before, a), (after, b)) if i % 2 else ((after, b), (before, a)):
            started = time.perf_counter()
            await fn()
            out.append(time.perf_counter() - started)
    return statistics.median(a), statistics.median(b)


def layer_costs(db: Path, *, calls: int) -> list[list]:
    """Rows: piece, before us, with the protection us, added us (all p50)."""
    rows = []
    before, after = asgi_stacks()
    base, hard = asyncio.run(_ab(lambda: _asgi_call(before), lambda: _asgi_call(after), calls))
    rows.append(["ASGI layers around the endpoint", base * 1e6, hard * 1e6, (hard - base) * 1e6])
    escaping = EscapingFilter()

    async def nothing() -> None:
        _record()

    async def escape() -> None:
        escaping.filter(_record())

    base, hard = asyncio.run(_ab(nothing, escape, calls))
    rows.append(["escaping one access-log line", base * 1e6, hard * 1e6, (hard - base) * 1e6])
    with open_store(f"sqlite:///{db}", wait_timeout_s=1.0) as store:
        lookups = LookupService(store, "iris", mode="batch", registry=CollectorRegistry())
        pool = StoreCalls(threads=4, deadline_s=2.0, registry=CollectorRegistry())
        base, hard = asyncio.run(
            _ab(lambda: asyncio.to_thread(lookups.find, [7]), lambda: pool.run(lookups.find, [7]), calls)
        )
        pool.close()
    rows.append(
        ["store call: own pool + deadline vs default executor", base * 1e6, hard * 1e6, (hard - base) * 1e6]
    )
    return rows
