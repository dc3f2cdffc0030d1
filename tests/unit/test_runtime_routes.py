"""Metric labels from a closed set: the route template, never the raw path."""

from __future__ import annotations

import asyncio

import pytest

from modelrollout.runtime.routes import OTHER, SYSTEM_PREFIXES, endpoint_label, install_endpoint_labels

ROUTES = frozenset({"/predict", "/lookup", "/metrics", "/readyz"})


@pytest.mark.parametrize(
    ("path", "label"),
    [
        ("/predict", "/predict"),
        ("/metrics", "/metrics"),
        ("/predict/", OTHER),
        ("/predict/1", OTHER),
        ("//predict", OTHER),
        ("/PREDICT", OTHER),
        ("/f3c1e2d0a9b8", OTHER),
        ("/predict\n2026 [ERROR]", OTHER),
        ("/static_content/swagger-ui.css", "/static_content"),
        ("/static_contentx", OTHER),
        ("", OTHER),
    ],
)
def test_a_path_maps_to_its_route_or_other(path, label):
    assert endpoint_label(path, routes=ROUTES, prefixes=SYSTEM_PREFIXES) == label


def test_bentomls_metrics_middleware_sees_the_label_and_the_app_the_real_path(monkeypatch):
    """The replacement hands BentoML's middleware the label and the app behind it the real scope."""
    from bentoml._internal.server.http import instruments

    seen: dict[str, str] = {}

    class FakeOriginal:
        def __init__(self, app, **options) -> None:
            self.app = app

        async def __call__(self, scope, receive, send) -> None:
            seen["label"] = scope["path"]
            await self.app(scope, receive, send)

    async def app(scope, receive, send) -> None:
        seen["app"] = scope["path"]

    monkeypatch.setattr(instruments, "RunnerTrafficMetricsMiddleware", FakeOriginal)
    install_endpoint_labels(["/predict"])
    installed = instruments.RunnerTrafficMetricsMiddleware
    assert installed.modelrollout_original is FakeOriginal
    middleware = installed(app, namespace="x")
    asyncio.run(middleware({"type": "http", "path": "/a%0Ab", "method": "GET"}, None, None))
    assert seen == {"label": OTHER, "app": "/a%0Ab"}
    asyncio.run(middleware({"type": "http", "path": "/predict", "method": "POST"}, None, None))
    assert seen == {"label": "/predict", "app": "/predict"}
    install_endpoint_labels(["/predict"])  # installing twice wraps the original once
    assert instruments.RunnerTrafficMetricsMiddleware.modelrollout_original is FakeOriginal
