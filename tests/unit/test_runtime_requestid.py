"""Request ids: caller ids are kept when safe, replaced otherwise, and echoed on every response."""

from __future__ import annotations

import re

import pytest

from modelrollout.runtime.requestid import (
    MAX_REQUEST_ID_LENGTH,
    RequestIdMiddleware,
    is_valid_request_id,
    new_request_id,
    request_id_from_scope,
    resolve_request_id,
    validate_request_id,
)


@pytest.mark.parametrize("value", ["abc", "a" * MAX_REQUEST_ID_LENGTH, "order-42:item/7", "~!#$%&'*+.^_`|"])
def test_visible_ascii_ids_up_to_128_chars_are_valid(value):
    assert is_valid_request_id(value)
    assert resolve_request_id(value) == value
    assert validate_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "a" * (MAX_REQUEST_ID_LENGTH + 1), "has space", "tab\there", "new\nline", "caf\u00e9", "\x00", None],
)
def test_unsafe_ids_are_invalid_and_replaced_by_a_fresh_one(value):
    assert not is_valid_request_id(value)
    resolved = resolve_request_id(value)
    assert resolved != value
    assert re.fullmatch(r"[0-9a-f]{32}", resolved)


def test_new_ids_are_uuid4_hex_and_unique():
    ids = {new_request_id() for _ in range(1000)}
    assert len(ids) == 1000
    assert all(re.fullmatch(r"[0-9a-f]{12}4[0-9a-f]{19}", i) for i in ids)


@pytest.mark.parametrize(
    ("value", "message"),
    [
        ("", "non-empty"),
        ("x" * 129, "129 characters long; at most 128"),
        ("a b", "visible ASCII"),
    ],
)
def test_validate_request_id_explains_what_is_wrong(value, message):
    with pytest.raises(ValueError, match=message):
        validate_request_id(value)


async def _call(app, headers):
    """Drive an ASGI app once; returns (response start message, scope seen by the app)."""
    scope = {"type": "http", "method": "POST", "path": "/predict", "headers": headers}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message):
        sent.append(message)

    await app(scope, receive, send)
    return next(m for m in sent if m["type"] == "http.response.start"), scope


def _echo_app(status=200):
    seen = {}

    async def app(scope, receive, send):
        seen["request_id"] = request_id_from_scope(scope)
        await send(
            {"type": "http.response.start", "status": status, "headers": [(b"x-request-id", b"stale")]}
        )
        await send({"type": "http.response.body", "body": b"{}"})

    return app, seen


async def test_middleware_keeps_a_valid_caller_id_and_echoes_it_once():
    app, seen = _echo_app()
    start, _ = await _call(RequestIdMiddleware(app), [(b"X-Request-ID", b"caller-7")])
    assert seen["request_id"] == "caller-7"
    assert [v for n, v in start["headers"] if n == b"x-request-id"] == [b"caller-7"]


async def test_middleware_replaces_an_invalid_id_and_sets_header_on_errors_too():
    app, seen = _echo_app(status=500)
    start, _ = await _call(RequestIdMiddleware(app), [(b"x-request-id", b"bad id with spaces")])
    assert start["status"] == 500
    assert re.fullmatch(r"[0-9a-f]{32}", seen["request_id"])
    assert [v for n, v in start["headers"] if n == b"x-request-id"] == [seen["request_id"].encode()]


async def test_middleware_generates_an_id_when_header_is_missing():
    app, seen = _echo_app()
    start, scope = await _call(RequestIdMiddleware(app), [])
    assert re.fullmatch(r"[0-9a-f]{32}", seen["request_id"])
    assert request_id_from_scope(scope) == seen["request_id"]


async def test_middleware_passes_non_http_scopes_through_untouched():
    calls = []

    async def app(scope, receive, send):
        calls.append(scope)

    scope = {"type": "lifespan"}
    await RequestIdMiddleware(app)(scope, None, None)
    assert calls == [{"type": "lifespan"}]


def test_request_id_from_scope_is_none_outside_the_middleware():
    assert request_id_from_scope({"type": "http"}) is None
