"""``/docs.json`` of an instrumented service: every status each API answers, with its body.

Every API answers its output model (200), a body that fails validation (400,
:class:`~modelrollout.runtime.openapi.ValidationErrorBody`) and the refusals of the guards and of
BentoML itself (413, 415, 429, 500, 504); ``/feedback`` adds its own (401, 403, 404, 409, 503);
a service adds more per route (``instrument(statuses=...)``, which win over these; a route that
is no API, such as ``/readyz``, documents its GET).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel, RootModel

from ..config import RuntimeConfig
from ..openapi import ErrorBody, Status, ValidationErrorBody, document


def refusals(config: RuntimeConfig, *, timeout_s: float) -> dict[int, Status]:
    """What any API route may answer before (or instead of) running the endpoint."""
    return {
        413: Status(
            f"body over {config.max_body_bytes} bytes (MODELROLLOUT_MAX_BODY_BYTES), not read", (ErrorBody,)
        ),
        415: Status("Content-Type is not application/json", (ErrorBody,)),
        429: Status(
            f"over {config.max_concurrency} requests at once (MODELROLLOUT_MAX_CONCURRENCY), not read",
            (ErrorBody,),
        ),
        500: Status("server fault (a bug, or test-only injected errors)", (ErrorBody,)),
        504: Status(f"not answered within the {timeout_s:g} s request timeout", (ErrorBody,)),
    }


DEFAULT_TIMEOUT_S = 60  # BentoML's traffic.timeout when the service sets none
READINESS = {
    200: Status("ready", media_type="text/plain"),
    503: Status("not ready: the model or the runtime is still starting (or the service says so)", media_type="text/plain"),
}  # fmt: skip
INVALID = Status("the body does not match the request schema", (ValidationErrorBody,))


def user_model(spec: Any) -> type[BaseModel] | None:
    """The service's own pydantic model behind a BentoML IO spec (BentoML wraps a returned model
    in a subclass named ``<Model>IODescriptor``; any other return type in a root model: None)."""
    if not (isinstance(spec, type) and issubclass(spec, BaseModel)) or issubclass(spec, RootModel):
        return None
    if not spec.__name__.endswith("IODescriptor"):
        return spec
    own = [b for b in spec.__bases__ if issubclass(b, BaseModel) and not issubclass(b, RootModel)]
    return own[0] if len(own) == 1 else None


def feedback_statuses(response: type[BaseModel]) -> dict[int, Status]:
    return {
        200: Status("accepted: the label is stored (correct says whether it matched)", (response,)),
        400: INVALID,
        401: Status("no 'Authorization: Bearer <token>' with the configured token; body not read", (ErrorBody,)),
        403: Status("feedback is disabled: no token configured (MODELROLLOUT_FEEDBACK_TOKEN)", (ErrorBody,)),
        404: Status("unknown_request: no prediction logged for this request id and row", (response,)),
        409: Status("duplicate: this prediction has a label already; the first one counts", (response,)),
        503: Status("unavailable: the prediction store could not be asked; send it again", (response,)),
    }  # fmt: skip


def api_statuses(api: Any) -> dict[int, Status]:
    """200 with the API's output model (when it is one), 400 for an invalid body."""
    output = user_model(api.output_spec)
    return {200: Status("answered", (output,) if output is not None else ()), 400: INVALID}


def service_document(
    service: Any, *, config: RuntimeConfig, statuses: Mapping[str, Mapping[int, Status]]
) -> dict[str, Any]:
    """BentoML's document for ``service`` with every API's statuses (see the module docstring)."""
    timeout_s = service.config.get("traffic", {}).get("timeout", DEFAULT_TIMEOUT_S)
    refused = refusals(config, timeout_s=timeout_s)
    apis = {}
    for name, api in service.apis.items():
        own = feedback_statuses(user_model(api.output_spec)) if name == "feedback" else api_statuses(api)
        apis[api.route] = (api.input_spec, {**own, **refused, **statuses.get(api.route, {})})
    infra = {"/readyz": READINESS} | {path: s for path, s in statuses.items() if path not in apis}
    secured = {service.apis["feedback"].route: "feedbackToken"} if "feedback" in service.apis else {}
    return document(service.openapi_spec.asdict(), apis=apis, secured=secured, infra=infra)
