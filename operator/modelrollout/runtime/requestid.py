"""Request ids: the key that joins a delayed ground-truth label to the prediction it judges.

A caller (or a proxy in front of the service) may send its own id in ``X-Request-ID`` so that the
id it stores next to its business record is the one the feedback endpoint later receives. An id we
cannot trust (too long, control characters, spaces) is replaced rather than rejected: a malformed
tracing header must never cost a prediction.
"""

from __future__ import annotations

import re
import uuid

REQUEST_ID_HEADER = "X-Request-ID"
MAX_REQUEST_ID_LENGTH = 128

# Visible ASCII only: ids end up in HTTP headers, logs and database keys, where spaces, control
# characters and non-ASCII bytes cause quoting and encoding trouble.
_VALID_REQUEST_ID = re.compile(rf"[\x21-\x7e]{{1,{MAX_REQUEST_ID_LENGTH}}}")


def is_valid_request_id(value: str | None) -> bool:
    """True when ``value`` is 1..128 visible ASCII characters (no spaces, no control characters)."""
    return value is not None and _VALID_REQUEST_ID.fullmatch(value) is not None


def new_request_id() -> str:
    """A fresh random id: 32 lowercase hex characters (uuid4)."""
    return uuid.uuid4().hex


def resolve_request_id(header_value: str | None) -> str:
    """The caller's id when it is valid, otherwise a fresh one.

    Why not reject: the id is an aid to correlation, not an input of the model; refusing a
    prediction over it would turn a tracing mistake into an outage.
    """
    if is_valid_request_id(header_value):
        return header_value  # type: ignore[return-value]  # checked non-None above
    return new_request_id()


def validate_request_id(value: str) -> str:
    """``value`` unchanged, or ValueError with the reason (used where an id is *input*, e.g. feedback)."""
    if not isinstance(value, str) or not value:
        raise ValueError("request_id must be a non-empty string")
    if len(value) > MAX_REQUEST_ID_LENGTH:
        raise ValueError(
            f"request_id is {len(value)} characters long; at most {MAX_REQUEST_ID_LENGTH} allowed"
        )
    if not is_valid_request_id(value):
        raise ValueError(
            "request_id may contain only visible ASCII characters (no spaces or control characters)"
        )
    return value


# --- ASGI glue -----------------------------------------------------------------------------------
# A plain ASGI middleware (no Starlette or BentoML import) so every response carries the id,
# including the 400s and 500s that BentoML produces before or instead of running the endpoint.

_SCOPE_STATE_KEY = "modelrollout_request_id"
_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode("ascii")


def request_id_from_scope(scope: dict) -> str | None:
    """The id :class:`RequestIdMiddleware` chose for this request (None outside the middleware)."""
    return scope.get("state", {}).get(_SCOPE_STATE_KEY)


class RequestIdMiddleware:
    """Resolve ``X-Request-ID`` once per HTTP request and echo it on the response.

    The chosen id is stored in the ASGI scope's ``state`` (what Starlette exposes as
    ``request.state``); endpoints read it with :func:`request_id_from_scope`.
    """

    def __init__(self, app) -> None:
        self.app = app

    async def __call__(self, scope, receive, send) -> None:
        if scope.get("type") != "http":
            await self.app(scope, receive, send)
            return
        header = next(
            (value for name, value in scope.get("headers", []) if name.lower() == _HEADER_BYTES), None
        )
        request_id = resolve_request_id(header.decode("latin-1") if header is not None else None)
        scope.setdefault("state", {})[_SCOPE_STATE_KEY] = request_id
        encoded = request_id.encode("ascii")

        async def send_with_id(message) -> None:
            if message.get("type") == "http.response.start":
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != _HEADER_BYTES]
                headers.append((_HEADER_BYTES, encoded))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
