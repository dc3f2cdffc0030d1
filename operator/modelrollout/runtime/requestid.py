"""Request ids: the key that joins a delayed ground-truth label to the prediction it judges.

The server assigns every request its id (a uuid4, 32 hex characters) and returns it in the
``X-Request-ID`` response header (and in the JSON body): that id keys the prediction log, and
``/feedback`` quotes it. Why never the caller's: with caller-chosen keys, anyone could overwrite
or pre-empt the log entry of another client's request by reusing its id (issue 11). A caller's own
``X-Request-ID`` (a tracing id, an order number) is kept next to the prediction as
``client_request_id`` when it is safe to store (1..128 visible ASCII characters), and otherwise
ignored: a malformed tracing header never costs a prediction.
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


def client_request_id(header_value: str | None) -> str | None:
    """The caller's id when it is safe to store, else None (never an error: see the module docstring)."""
    return header_value if is_valid_request_id(header_value) else None


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
_CLIENT_STATE_KEY = "modelrollout_client_request_id"
_HEADER_BYTES = REQUEST_ID_HEADER.lower().encode("ascii")


def request_id_from_scope(scope: dict) -> str | None:
    """The id :class:`RequestIdMiddleware` assigned to this request (None outside the middleware)."""
    return scope.get("state", {}).get(_SCOPE_STATE_KEY)


def client_request_id_from_scope(scope: dict) -> str | None:
    """The caller's own ``X-Request-ID`` when it was safe to keep (None otherwise)."""
    return scope.get("state", {}).get(_CLIENT_STATE_KEY)


class RequestIdMiddleware:
    """Assign every HTTP request a fresh id and send it back in ``X-Request-ID``.

    The id (and the caller's own header, if valid) is stored in the ASGI scope's ``state`` (what
    Starlette exposes as ``request.state``); endpoints read them with :func:`request_id_from_scope`
    and :func:`client_request_id_from_scope`. A caller's ``X-Request-ID`` never comes back as the
    response's: the response header is always the id the server assigned.
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
        request_id = new_request_id()
        state = scope.setdefault("state", {})
        state[_SCOPE_STATE_KEY] = request_id
        state[_CLIENT_STATE_KEY] = client_request_id(header.decode("latin-1") if header is not None else None)
        encoded = request_id.encode("ascii")

        async def send_with_id(message) -> None:
            if message.get("type") == "http.response.start":
                headers = [(n, v) for n, v in message.get("headers", []) if n.lower() != _HEADER_BYTES]
                headers.append((_HEADER_BYTES, encoded))
                message = {**message, "headers": headers}
            await send(message)

        await self.app(scope, receive, send_with_id)
