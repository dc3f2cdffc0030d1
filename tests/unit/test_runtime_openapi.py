"""The OpenAPI document says what the endpoints answer: OpenAPI 3.0 schemas from the pydantic models."""

from __future__ import annotations

import asyncio
import json
from typing import Literal

from pydantic import BaseModel

from modelrollout.runtime.openapi import (
    ErrorBody,
    OpenApiDocs,
    Status,
    ValidationErrorBody,
    document,
    openapi30,
)


class Answer(BaseModel):
    key: int | str
    message: str | None = None
    source: Literal["lookup", "model"] | None = None
    status: Literal[200, 404]


class Reply(BaseModel):
    answers: list[Answer]
    track: Literal["stable"]


class Request(BaseModel):
    keys: list[int]


def test_nullable_fields_are_declared_nullable_and_literals_are_enums():
    assert openapi30({"anyOf": [{"type": "string"}, {"type": "null"}], "default": None}) == {
        "type": "string", "default": None, "nullable": True,
    }  # fmt: skip
    assert openapi30({"anyOf": [{"$ref": "#/$defs/X"}, {"type": "null"}]}) == {
        "allOf": [{"$ref": "#/components/schemas/X"}], "nullable": True,
    }  # fmt: skip
    assert openapi30({"anyOf": [{"type": "integer"}, {"type": "string"}, {"type": "null"}]}) == {
        "anyOf": [{"type": "integer"}, {"type": "string"}], "nullable": True,
    }  # fmt: skip
    assert openapi30({"const": "stable", "type": "string"}) == {"enum": ["stable"], "type": "string"}
    assert openapi30({"type": "number", "exclusiveMinimum": 0}) == {
        "type": "number",
        "minimum": 0,
        "exclusiveMinimum": True,
    }


def spec() -> dict:
    base = {"openapi": "3.0.2", "paths": {"/lookup": {"post": {"responses": {"400": {"description": "x"}}}},
                                          "/readyz": {"get": {"responses": {"200": {"description": "ok"}}}}}}  # fmt: skip
    return document(
        base,
        apis={
            "/lookup": (
                Request,
                {
                    200: Status("ok", (Reply,)),
                    400: Status("bad", (ValidationErrorBody, Reply)),
                    413: Status("too large", (ErrorBody,)),
                },
            )
        },  # fmt: skip
        infra={
            "/readyz": {
                200: Status("ready", media_type="text/plain"),
                503: Status("not ready", media_type="text/plain"),
            }
        },
    )


def test_every_status_has_the_body_model_that_comes_with_it():
    out = spec()
    responses = out["paths"]["/lookup"]["post"]["responses"]
    assert set(responses) == {"200", "400", "413"}
    assert responses["400"]["content"]["application/json"]["schema"] == {
        "anyOf": [
            {"$ref": "#/components/schemas/ValidationErrorBody"},
            {"$ref": "#/components/schemas/Reply"},
        ]
    }
    assert "X-Request-ID" in responses["200"]["headers"]
    request = out["paths"]["/lookup"]["post"]["requestBody"]["content"]["application/json"]["schema"]
    assert request == {"$ref": "#/components/schemas/LookupRequest"}
    schemas = out["components"]["schemas"]
    assert set(schemas) == {
        "Answer",
        "ErrorBody",
        "LookupRequest",
        "Reply",
        "ValidationErrorBody",
        "ValidationIssue",
    }
    assert schemas["Answer"]["properties"]["message"]["nullable"] is True
    assert schemas["Answer"]["properties"]["status"]["enum"] == [200, 404]
    assert schemas["ValidationErrorBody"]["properties"]["detail"]["items"] == {
        "$ref": "#/components/schemas/ValidationIssue"
    }
    assert "$defs" not in json.dumps(out) and "#/$defs/" not in json.dumps(out)
    assert set(out["paths"]["/readyz"]["get"]["responses"]) == {"200", "503"}


def test_the_document_is_served_in_place_of_bentomls():
    built: list[int] = []

    async def app(scope, receive, send) -> None:
        await send({"type": "http.response.start", "status": 404, "headers": []})

    def build() -> dict:
        built.append(1)
        return {"openapi": "3.0.2"}

    docs = OpenApiDocs(app, build=build)
    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    for _ in range(2):
        asyncio.run(docs({"type": "http", "path": "/docs.json", "method": "GET"}, None, send))
    asyncio.run(docs({"type": "http", "path": "/other", "method": "GET"}, None, send))
    assert [m["status"] for m in sent if m["type"] == "http.response.start"] == [200, 200, 404]
    assert json.loads(sent[1]["body"]) == {"openapi": "3.0.2"} and built == [1]
