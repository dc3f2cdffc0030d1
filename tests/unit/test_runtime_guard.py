"""The request guard: 415 for what is not JSON, 413 before reading a body over the limit."""

from __future__ import annotations

import asyncio
import json

import pytest

from modelrollout.runtime.guard import RequestGuard, declared_length, is_json_media_type

LIMIT = 1024


class Downstream:
    """The app behind the guard: records the body it read."""

    def __init__(self) -> None:
        self.bodies: list[bytes] = []

    async def __call__(self, scope, receive, send) -> None:
        body = b""
        while True:
            message = await receive()
            body += message.get("body", b"")
            if not message.get("more_body"):
                break
        self.bodies.append(body)
        await send({"type": "http.response.start", "status": 200, "headers": []})
        await send({"type": "http.response.body", "body": b"ok"})


def call(headers: dict[str, str], chunks: list[bytes], *, path: str = "/predict", method: str = "POST"):
    """Run one request through the guard; (status, response body, app bodies, chunks read)."""
    app = Downstream()
    guard = RequestGuard(app, max_body_bytes=LIMIT, paths=["/predict", "/lookup"])
    pending = list(chunks)
    read = 0

    async def receive() -> dict:
        nonlocal read
        if not pending:
            return {"type": "http.disconnect"}
        read += 1
        chunk = pending.pop(0)
        return {"type": "http.request", "body": chunk, "more_body": bool(pending)}

    sent: list[dict] = []

    async def send(message: dict) -> None:
        sent.append(message)

    scope = {"type": "http", "method": method, "path": path,
             "headers": [(k.lower().encode(), v.encode()) for k, v in headers.items()]}  # fmt: skip
    asyncio.run(guard(scope, receive, send))
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:]), app.bodies, read


@pytest.mark.parametrize(
    "content_type",
    ["multipart/form-data", "multipart/form-data; boundary=x", "text/plain", "application/x-www-form-urlencoded",
     "application/vnd.bentoml+pickle", "application/jsonx", "json"],
)  # fmt: skip
def test_anything_but_json_is_415_unread(content_type):
    status, body, bodies, read = call({"Content-Type": content_type, "Content-Length": "2"}, [b"{}"])
    assert (status, bodies, read) == (415, [], 0)
    assert "send application/json" in json.loads(body)["error"]


@pytest.mark.parametrize(
    "content_type", [None, "application/json", "Application/JSON; charset=utf-8", "application/problem+json"]
)
def test_json_and_a_missing_content_type_pass(content_type):
    headers = {"Content-Length": "2"} | ({"Content-Type": content_type} if content_type else {})
    assert call(headers, [b"{}"])[:3] == (200, b"ok", [b"{}"])


def test_a_declared_length_over_the_limit_is_413_without_reading_the_body():
    status, body, bodies, read = call({"Content-Length": str(LIMIT + 1)}, [b"x" * (LIMIT + 1)])
    assert (status, bodies, read) == (413, [], 0)
    assert f"{LIMIT + 1} bytes; at most {LIMIT}" in json.loads(body)["error"]


def test_a_chunked_body_is_counted_and_refused_once_past_the_limit():
    chunks = [b"x" * 400] * 10
    status, _, bodies, read = call({}, chunks)
    assert (status, bodies, read) == (413, [], 3)  # stopped reading at the chunk that passed 1024


def test_a_chunked_body_under_the_limit_reaches_the_app_unchanged():
    chunks = [b'{"rows": ', b"[[1, 2, 3, 4]]", b"}"]
    assert call({}, chunks)[:3] == (200, b"ok", [b"".join(chunks)])


@pytest.mark.parametrize(("path", "method"), [("/readyz", "POST"), ("/predict", "GET"), ("/other", "POST")])
def test_only_the_api_routes_are_guarded(path, method):
    assert (
        call({"Content-Type": "text/plain", "Content-Length": "5000"}, [b"x"], path=path, method=method)[0]
        == 200
    )


@pytest.mark.parametrize(("values", "length"), [([], None), (["12"], 12), (["12, 12"], 12), (["0"], 0)])
def test_content_length_is_read_as_rfc_9110_says(values, length):
    assert declared_length(values) == length


@pytest.mark.parametrize("values", [["-1"], ["1e3"], ["12", "13"], ["12, 13"], ["１２"], [""]])
def test_a_malformed_content_length_is_refused(values):
    with pytest.raises(ValueError):
        declared_length(values)


def test_a_malformed_content_length_is_a_400_unread():
    assert call({"Content-Length": "1e3"}, [b"x"])[::3] == (400, 0)


def test_media_types():
    assert is_json_media_type(None) and is_json_media_type("  ")
    assert not is_json_media_type("multipart/form-data")
