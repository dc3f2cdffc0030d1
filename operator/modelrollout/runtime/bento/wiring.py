"""The per-service half of the bento glue: :func:`instrument`, applied above ``@bentoml.service``.

BentoML builds a service's ASGI app from ``Service.middlewares`` once, before any instance exists,
so what wraps requests must be added to the ``Service`` object at import of the service module; a
mixin alone cannot (it sees the class before ``@bentoml.service`` wraps it). In order, outermost
first:

1. :class:`~modelrollout.runtime.requestid.RequestIdMiddleware`: every request gets its server-
   assigned id (``X-Request-ID``), refusals included;
2. :class:`~modelrollout.runtime.ground_truth.feedback.FeedbackAuth`: ``/feedback`` needs the
   bearer token, checked before its body is read;
3. :class:`~modelrollout.runtime.guard.RequestGuard`: 415 for non-JSON, 413 for a body over
   ``MODELROLLOUT_MAX_BODY_BYTES``, on every API route, before anything is read;
4. :class:`~modelrollout.runtime.openapi.OpenApiDocs`: ``/docs.json`` with every status each API
   answers (:mod:`.docs`).

And: BentoML's request metrics labelled by route (``other`` for unknown paths;
:func:`~modelrollout.runtime.routes.install_endpoint_labels`), the log guards of
:mod:`~modelrollout.runtime.logsafe`, and defaults the canary gates rely on where the service set
none: latency buckets from 1 ms and ``max_concurrency`` from ``MODELROLLOUT_MAX_CONCURRENCY``
(429 beyond it).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from .. import logsafe
from ..ground_truth.feedback import FeedbackAuth
from ..ground_truth.metrics import log_counters
from ..guard import RequestGuard
from ..openapi import OpenApiDocs, Status
from ..requestid import RequestIdMiddleware
from ..routes import install_endpoint_labels
from .docs import service_document
from .feedback import FEEDBACK_ROUTE
from .mixin import ModelRollout

# Finer than Prometheus' default buckets (which start at 5 ms): a small model answers in ~1-3 ms
# and the canary latency gate compares quantiles.
DURATION_BUCKETS = [0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0]
_MARK = "__modelrollout_instrumented__"
# BentoML's metrics middleware is one class per process: it labels the routes of every service
# instrumented in this process (a bento whose module defines several services).
_LABELLED_ROUTES: set[str] = set()


def instrument(
    service: Any = None,
    *,
    statuses: Mapping[str, Mapping[int, Status]] | None = None,
    openapi: Callable[[], dict] | None = None,
) -> Any:
    """Wire the modelrollout runtime into a BentoML service whose class mixes in ModelRollout.

    Use as ``@instrument`` (or ``@instrument(statuses=...)``) above ``@bentoml.service``; returns
    the service. ``statuses``: per API route, the statuses it answers besides the standard ones
    (documented in ``/docs.json``); ``openapi``: build the whole document yourself instead.
    """
    if service is None:
        return lambda svc: instrument(svc, statuses=statuses, openapi=openapi)
    inner = getattr(service, "inner", None)
    if not (isinstance(inner, type) and issubclass(inner, ModelRollout)):
        raise TypeError(
            "instrument() takes a @bentoml.service whose class mixes in ModelRollout "
            "(class MyService(ModelRollout, labels=(...)): ...), applied above @bentoml.service"
        )
    if getattr(inner, _MARK, False):
        raise TypeError(f"{inner.__name__} is instrumented already")
    setattr(inner, _MARK, True)
    config = inner.rollout_config
    logsafe.install(
        json_lines=config.log_format == "json", client_errors_per_s=config.client_error_logs_per_s
    )
    _service_defaults(service.config, max_concurrency=config.max_concurrency)
    routes = [api.route for api in service.apis.values()]
    feedback_route = service.apis["feedback"].route if "feedback" in service.apis else FEEDBACK_ROUTE
    rate = config.client_error_logs_per_s
    service.add_asgi_middleware(RequestIdMiddleware)  # outermost of ours: refusals carry the id too
    service.add_asgi_middleware(  # before the body guard: an unauthorised body is never read
        FeedbackAuth,
        token=config.token,
        count=lambda outcome: log_counters().count_label(outcome),
        paths=(feedback_route,),
        log_rate=rate,
    )
    service.add_asgi_middleware(
        RequestGuard, max_body_bytes=config.max_body_bytes, paths=routes, log_rate=rate
    )
    build = openapi or (lambda: service_document(service, config=config, statuses=statuses or {}))
    service.add_asgi_middleware(OpenApiDocs, build=build)
    _LABELLED_ROUTES.update(routes)
    install_endpoint_labels(sorted(_LABELLED_ROUTES))
    return service


def _service_defaults(config: dict, *, max_concurrency: int) -> None:
    """Fill what the canary gates need where the service's own ``@bentoml.service(...)`` is silent."""
    metrics = config.setdefault("metrics", {})
    metrics.setdefault("enabled", True)
    metrics.setdefault("namespace", "bentoml_service")
    metrics.setdefault("duration", {"buckets": list(DURATION_BUCKETS)})
    config.setdefault("traffic", {}).setdefault("max_concurrency", max_concurrency)
