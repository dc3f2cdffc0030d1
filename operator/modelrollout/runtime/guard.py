"""ASGI middleware refusing what an API endpoint must never read: too large or not JSON.

BentoML reads a whole request body and parses it before the endpoint's own limits (rows per
request) apply, and parsing JSON into Python objects costs ~30x the body's size: a 52 MB body
took a worker from 292 MB to 1.8 GB. This guard answers before any of that:

- ``Content-Type`` other than JSON (``application/json`` or ``application/*+json``, any
  parameters; a missing header counts as JSON, as BentoML reads it) -> 415. BentoML would
  otherwise parse forms and multipart bodies (and fail with 500 on a multipart type without a
  boundary);
- ``Content-Length`` above ``max_body_bytes`` -> 413 at once, without reading a byte of the body;
  a malformed ``Content-Length`` -> 400;
- a body without ``Content-Length`` (chunked) is read here, counting bytes, and refused with 413
  as soon as it passes the limit; below it, it is handed on unchanged.

Only the API endpoints (``paths``, POST) are guarded: health probes and ``/metrics`` pass as they
are. Refusals are JSON ``{"error": "..."}`` and logged at INFO, rate-limited.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Iterable
from typing import Any

from .logsafe import RateLimitedLog

log = logging.getLogger("modelrollout.runtime.guard")


def is_json_media_type(header: str | None) -> bool:
    """True for a missing header, ``application/json`` and ``application/<x>+json`` (any parameters)."""
    if header is None or not header.strip():
        return True
    media = header.split(";", 1)[0].strip().lower()
    return media == "application/json" or (media.startswith("application/") and media.endswith("+json"))


def declared_length(values: list[str]) -> int | None:
    """The body length the ``Content-Length`` header(s) declare; None when absent.

    Raises ValueError for anything but one decimal number (repeats must agree), as RFC 9110 asks.
    """
    if not values:
        return None
    lengths = {v.strip() for value in values for v in value.split(",")}
    if len(lengths) != 1 or not all(x.isascii() and x.isdigit() for x in lengths):
        raise ValueError(f"malformed Content-Length {', '.join(values)!r}")
    return int(lengths.pop())


class RequestGuard:
    """See the module docstring. ``paths``: the API routes (exact paths) to guard."""

    def __init__(self, app: Any, *, max_body_bytes: int, paths: Iterable[str], log_rate: float = 1.0) -> None:
        self.app = app
        self.max_body_bytes = max_body_bytes
        self.paths = frozenset(paths)
        self._log = RateLimitedLog(log, rate=log_rate)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("method") != "POST"
            or scope.get("path") not in self.paths
        ):
            await self.app(scope, receive, send)
            return
        headers = _headers(scope)
        content_type = headers.get(b"content-type", [None])[-1]
        if not is_json_media_type(content_type):
            await self._refuse(
                scope, send, 415, f"Content-Type {content_type!r} is not accepted: send application/json"
            )
            return
        try:
            length = declared_length(headers.get(b"content-length", []))
        except ValueError as exc:
            await self._refuse(scope, send, 400, str(exc))
            return
        if length is not None:
            if length > self.max_body_bytes:
                await self._refuse(scope, send, 413, self._too_large(f"{length} bytes"))
                return
            await self.app(scope, receive, send)
            return
        body = await self._read_bounded(receive)
        if body is None:
            await self._refuse(scope, send, 413, self._too_large(f"more than {self.max_body_bytes} bytes"))
            return
        await self.app(scope, _replay(body, receive), send)

    def _too_large(self, size: str) -> str:
        return (
            f"request body is {size}; at most {self.max_body_bytes} bytes are accepted "
            "(MODELROLLOUT_MAX_BODY_BYTES)"
        )

    async def _read_bounded(self, receive: Any) -> bytes | None:
        """The whole body, or None once it passes the limit (the rest is never read)."""
        chunks: list[bytes] = []
        size = 0
        while True:
            message = await receive()
            if message["type"] != "http.request":  # the client went away: hand on an empty body
                return b"".join(chunks)
            chunk = message.get("body", b"")
            size += len(chunk)
            if size > self.max_body_bytes:
                return None
            chunks.append(chunk)
            if not message.get("more_body", False):
                return b"".join(chunks)

    async def _refuse(self, scope: dict, send: Any, status: int, error: str) -> None:
        self._log.log(
            logging.INFO, "client error %d: %s %s: %s", status, scope.get("method"), scope.get("path"), error
        )
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 413:  # the unread body would follow on this connection: close it
            headers.append((b"connection", b"close"))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


def _headers(scope: dict) -> dict[bytes, list[str]]:
    out: dict[bytes, list[str]] = {}
    for name, value in scope.get("headers", []):
        out.setdefault(name.lower(), []).append(value.decode("latin-1"))
    return out


def _replay(body: bytes, receive: Any) -> Any:
    """A ``receive`` that yields ``body`` once, then whatever the server sends next (disconnect)."""
    sent = False

    async def replay() -> dict:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        return await receive()

    return replay
