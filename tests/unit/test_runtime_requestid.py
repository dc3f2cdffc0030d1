"""Request ids: the server assigns every request its own; a caller's id is only kept beside it."""

from __future__ import annotations

import re

import pytest

from modelrollout.runtime.requestid import (
    MAX_REQUEST_ID_LENGTH,
    RequestIdMiddleware,
    client_request_id,
    client_request_id_from_scope,
    is_valid_request_id,
    new_request_id,
    request_id_from_scope,
    validate_request_id,
)


@pytest.mark.parametrize("value", ["abc", "a" * MAX_REQUEST_ID_LENGTH, "order-42:item/7", "~!#$%&'*+.^_`|"])
def test_visible_ascii_ids_up_to_128_chars_are_valid(value):
    assert is_valid_request_id(value)
    assert client_request_id(value) == value
    assert validate_request_id(value) == value


@pytest.mark.parametrize(
    "value",
    ["", "a" * (MAX_REQUEST_ID_LENGTH + 1), "has space", "tab\there", "new\nline", "caf\u00e9", "\x00", None],
)
def test_unsafe_caller_ids_are_invalid_and_not_kept(value):
    assert not is_valid_request_id(value)
    assert client_request_id(value) is None


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


async def test_middleware_assigns_its_own_id_and_keeps_the_callers_beside_it():
    """A caller's X-Request-ID never becomes the key: reusing another client's id claims nothing."""
    app, seen = _echo_app()
    start, scope = await _call(RequestIdMiddleware(app), [(b"X-Request-ID", b"caller-7")])
    assert re.fullmatch(r"[0-9a-f]{32}", seen["request_id"])
    assert client_request_id_from_scope(scope) == "caller-7"
    assert [v for n, v in start["headers"] if n == b"x-request-id"] == [seen["request_id"].encode()]


async def test_two_requests_with_the_same_caller_id_get_different_ids():
    app, seen = _echo_app()
    await _call(RequestIdMiddleware(app), [(b"X-Request-ID", b"same")])
    first = seen["request_id"]
    await _call(RequestIdMiddleware(app), [(b"X-Request-ID", b"same")])
    assert seen["request_id"] != first


async def test_middleware_drops_an_invalid_caller_id_and_sets_header_on_errors_too():
    app, seen = _echo_app(status=500)
    start, scope = await _call(RequestIdMiddleware(app), [(b"x-request-id", b"bad id with spaces")])
    assert start["status"] == 500
    assert client_request_id_from_scope(scope) is None
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
