"""An OpenAPI document that says what the endpoints really answer, served on ``/docs.json``.

BentoML 1.4 documents every API with its 200 body plus a generic ``{"error"}`` for 400/404/500,
drops ``null`` from nullable fields and leaves out the statuses a service or its middleware
produce (413, 415, 503, 504). :func:`document` rewrites its spec from the pydantic models the
service really validates and returns: the request body is the API's own input model, each status
gets the model of the body that comes with it (several models: ``anyOf``), pydantic's JSON Schema
is converted to OpenAPI 3.0 (``nullable: true``, ``enum`` for literals, ``$defs`` moved to
``components``). :class:`OpenApiDocs` serves the result in place of BentoML's document.

The bodies BentoML itself produces are modelled here: :class:`ValidationErrorBody` (400 for a body
that fails validation) and :class:`ErrorBody` (413/415 from :mod:`.guard`, 500, the 504 of the
request timeout).
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from pydantic import BaseModel, Field

log = logging.getLogger(__name__)
REF = "#/components/schemas/{model}"
REQUEST_ID_HEADER = {
    "X-Request-ID": {
        "description": "The id the server assigned to this request (quote it in /feedback); a caller's own "
        "X-Request-ID is only logged next to the prediction.",
        "schema": {"type": "string"},
    }
}


class ErrorBody(BaseModel):
    """Refused or failed request, without an endpoint body: 413, 415, 500, 504."""

    error: str


class ValidationIssue(BaseModel):
    type: str
    loc: list[str | int]
    msg: str
    url: str = Field(default="", description="pydantic's documentation of the error type")


class ValidationErrorBody(BaseModel):
    """The request body did not match the request schema (400, from BentoML's input validation)."""

    error: str
    detail: list[ValidationIssue]


@dataclass(frozen=True)
class Status:
    """One documented status: description and the body model(s) that come with it."""

    description: str
    models: tuple[type[BaseModel], ...] = ()
    media_type: str = "application/json"


def openapi30(schema: Any) -> Any:
    """A pydantic (JSON Schema 2020-12) schema as an OpenAPI 3.0 Schema Object."""
    if isinstance(schema, list):
        return [openapi30(item) for item in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: openapi30(v) for k, v in schema.items() if k not in ("$defs", "examples")}
    if isinstance(out.get("$ref"), str):
        out["$ref"] = REF.format(model=out["$ref"].rsplit("/", 1)[-1])
    if "const" in out:
        out["enum"] = [out.pop("const")]
    for bound, inclusive in (("exclusiveMinimum", "minimum"), ("exclusiveMaximum", "maximum")):
        if isinstance(out.get(bound), (int, float)) and not isinstance(out.get(bound), bool):
            out[inclusive], out[bound] = out[bound], True
    for combinator in ("anyOf", "oneOf"):
        members = out.get(combinator)
        if isinstance(members, list) and {"type": "null"} in members:
            rest = [m for m in members if m != {"type": "null"}]
            del out[combinator]
            if len(rest) == 1 and "$ref" not in rest[0]:
                out = {**rest[0], **out}
            else:
                out["anyOf" if len(rest) > 1 else "allOf"] = rest
            out["nullable"] = True
    return out


def add_model(components: dict[str, Any], model: type[BaseModel], *, name: str | None = None) -> dict:
    """Put ``model`` (and the models it uses) into ``components``; returns a reference to it."""
    schema = model.model_json_schema(ref_template=REF)
    for def_name, definition in schema.pop("$defs", {}).items():
        components[def_name] = openapi30(definition)
    name = name or model.__name__
    components[name] = openapi30({**schema, "title": name})
    return {"$ref": REF.format(model=name)}


def _response(components: dict[str, Any], status: Status, *, headers: bool) -> dict:
    response: dict[str, Any] = {"description": status.description}
    if status.models:
        refs = [add_model(components, m) for m in status.models]
        schema = refs[0] if len(refs) == 1 else {"anyOf": refs}
        response["content"] = {status.media_type: {"schema": schema}}
    elif status.media_type != "application/json":
        response["content"] = {status.media_type: {"schema": {"type": "string"}}}
    if headers:
        response["headers"] = copy.deepcopy(REQUEST_ID_HEADER)
    return response


def document(
    spec: Mapping[str, Any],
    *,
    apis: Mapping[str, tuple[type[BaseModel], Mapping[int, Status]]],
    infra: Mapping[str, Mapping[int, Status]] = {},  # noqa: B006 - read only
    secured: Mapping[str, str] = {},  # noqa: B006 - read only
) -> dict[str, Any]:
    """BentoML's ``spec`` with the POST operations of ``apis`` (path -> (request model, statuses))
    and the GET operations of ``infra`` (path -> statuses) documented from the models; the POST
    operations of ``secured`` (path -> scheme name) need a bearer token."""
    out = copy.deepcopy(dict(spec))
    components: dict[str, Any] = {}
    for path, (request, statuses) in apis.items():
        operation = out["paths"][path]["post"]
        name = path.strip("/").replace("/", "_").title().replace("_", "") + "Request"
        operation["requestBody"] = {
            "required": True,
            "content": {"application/json": {"schema": add_model(components, request, name=name)}},
        }
        operation["responses"] = {
            str(code): _response(components, status, headers=True)
            for code, status in sorted(statuses.items())
        }
    for path, statuses in infra.items():
        operation = out["paths"][path]["get"]
        operation["responses"] = {
            str(code): _response(components, status, headers=False)
            for code, status in sorted(statuses.items())
        }
    out["components"] = {"schemas": dict(sorted(components.items()))}
    for path, scheme in secured.items():
        out["paths"][path]["post"]["security"] = [{scheme: []}]
        out["components"].setdefault("securitySchemes", {})[scheme] = {"type": "http", "scheme": "bearer"}
    return out


class OpenApiDocs:
    """ASGI middleware answering ``GET path`` with ``build()`` (computed once, on first request)."""

    def __init__(self, app: Any, *, build: Callable[[], dict], path: str = "/docs.json") -> None:
        self.app, self.build, self.path = app, build, path
        self._body: bytes | None = None

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("path") != self.path
            or scope.get("method") not in ("GET", "HEAD")
        ):
            await self.app(scope, receive, send)
            return
        if self._body is None:
            self._body = json.dumps(self.build()).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(self._body)).encode())]
        await send({"type": "http.response.start", "status": 200, "headers": headers})
        await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else self._body})
