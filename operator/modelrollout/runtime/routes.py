"""The ``endpoint`` label of BentoML's request metrics, from a closed set of route templates.

BentoML's HTTP metrics middleware (``RunnerTrafficMetricsMiddleware`` in
``bentoml._internal.server.http.instruments``, outermost in the app, before any middleware a
service may add) labels ``bentoml_service_request_total``, ``..._request_duration_seconds`` and
``..._request_in_progress`` with the raw ``scope["path"]``: every distinct path a client invents
becomes new series (1,000 random paths took ``/metrics`` from 875 to 18,875 series), enough to
exhaust Prometheus. :func:`install_endpoint_labels` replaces that class, before the app is built,
by a subclass that shows it the route template instead (``other`` for anything no route serves)
and hands the real scope on to the app. Routing, logs and handlers still see the real path.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

OTHER = "other"
_RAW_SCOPE = "modelrollout.raw_scope"
# Served by every BentoML 1.4 service besides its APIs (system routes, OpenAPI, the docs page).
SYSTEM_ROUTES = ("/", "/livez", "/healthz", "/readyz", "/metrics", "/docs.json", "/schema.json")
SYSTEM_PREFIXES = ("/static_content", "/assets")


def endpoint_label(path: str, *, routes: frozenset[str], prefixes: tuple[str, ...] = ()) -> str:
    """``path`` when a route serves exactly it, the mount prefix for a path under a mount, else ``other``."""
    if path in routes:
        return path
    for prefix in prefixes:
        if path.startswith(prefix + "/"):
            return prefix
    return OTHER


class _RealScope:
    """Inner app wrapper: swaps the labelled scope back for the request's real one."""

    def __init__(self, app: Any) -> None:
        self.app = app

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        await self.app(scope.get(_RAW_SCOPE, scope), receive, send)


def install_endpoint_labels(api_routes: Iterable[str]) -> None:
    """Make BentoML's request metrics label endpoints from ``api_routes`` + :data:`SYSTEM_ROUTES`.

    Call it at import of the service module (before ``bentoml serve`` builds the app). Fails loudly
    if BentoML no longer has the middleware this replaces, rather than silently exposing raw paths.
    """
    from bentoml._internal.server.http import instruments

    current = instruments.RunnerTrafficMetricsMiddleware
    original = getattr(current, "modelrollout_original", current)
    routes = frozenset((*SYSTEM_ROUTES, *api_routes))

    class ClosedEndpointMetricsMiddleware(original):  # type: ignore[misc, valid-type]
        modelrollout_original = original

        def __init__(self, app: Any, **options: Any) -> None:
            super().__init__(_RealScope(app), **options)

        async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
            if scope.get("type") in ("http", "websocket"):
                label = endpoint_label(scope["path"], routes=routes, prefixes=SYSTEM_PREFIXES)
                if label != scope["path"]:
                    scope = {**scope, "path": label, _RAW_SCOPE: scope}
            await super().__call__(scope, receive, send)

    instruments.RunnerTrafficMetricsMiddleware = ClosedEndpointMetricsMiddleware
