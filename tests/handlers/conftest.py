"""Fixtures to run the real kopf operator against a fake, kmock-based Kubernetes API server.

- `fake_api`: a running `FakeCluster` (URL, store helpers, request log); a test can ask for
  optional APIs with `@pytest.mark.fake_api(pod_monitors=True)`.
- `kube_client`: the official client's `ApiClient` pointed at it (plain HTTP, no TLS).
- `operator`: `modelrollout.handlers` running in `KopfRunner` against it, with short resync
  timers; ready once it watches ModelDeployments.
- `wait_for`: bounded polling (re-exported from `fakeapi`).

The fake has no garbage collector, scheduler or controllers: tests play the Deployment
controller themselves (`fake_api.set_status(...)`). Real garbage collection is for the e2e tests.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import sys
from collections.abc import Iterator
from typing import Any

import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from tests.handlers.fakeapi import FakeCluster, wait_for

OPERATOR_MODULE = "modelrollout.handlers"
MD_RESOURCE = "modelrollout.io/v1alpha1/modeldeployments"
DIFFBASE_ANNOTATION = "modelrollout.io/last-handled-configuration"
OPERATOR_START_TIMEOUT = 15.0
OPERATOR_STOP_TIMEOUT = 15.0

__all__ = ["wait_for"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_api(pod_monitors=False, http_routes=True, watch_latency=0.0): optional APIs the fake serves, "
        "and how late its watch events arrive",
    )


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    from modelrollout.api.crd import crd as generate

    return generate()


@pytest.fixture()
def fake_api(request: pytest.FixtureRequest, crd: dict[str, Any]) -> Iterator[FakeCluster]:
    marker = request.node.get_closest_marker("fake_api")
    options = dict(marker.kwargs) if marker else {}
    with FakeCluster(crds=[crd], **options) as api:
        yield api
        errors = api.server_errors()
    assert not errors, f"the fake API server itself failed: {errors!r}"


@pytest.fixture()
def kube_client(fake_api: FakeCluster) -> Iterator[k8s.ApiClient]:
    configuration = k8s.Configuration(host=fake_api.url)
    configuration.verify_ssl = False
    with k8s.ApiClient(configuration) as api_client:
        yield api_client


def _fresh_registry() -> kopf.OperatorRegistry:
    """Import (or re-import) the operator module into a registry of its own.

    The module reads its environment and memoises its client at import time, so a plain cached
    import would keep the first test's server URL and timer interval for every later test.
    """
    registry = kopf.OperatorRegistry()
    previous = kopf.get_default_registry()
    kopf.set_default_registry(registry)
    try:
        if OPERATOR_MODULE in sys.modules:
            importlib.reload(sys.modules[OPERATOR_MODULE])
        else:
            importlib.import_module(OPERATOR_MODULE)
    finally:
        kopf.set_default_registry(previous)
    return registry


def _wait_until_settled(api: FakeCluster) -> None:
    """Best effort: let kopf finish handling every live ModelDeployment before stopping it.

    An object whose handling completes after kopf's stop flag gets its timers/daemons spawned
    after kopf's daemon killer has gone, which delays kopf's exit by its 5 s hung-task timeout.
    """

    def settled() -> bool:
        for md in api.list(MD_RESOURCE):
            handled = (md["metadata"].get("annotations") or {}).get(DIFFBASE_ANNOTATION)
            if not md["metadata"].get("deletionTimestamp") and (
                handled is None or json.loads(handled).get("spec") != md.get("spec")
            ):
                return False
        return True

    with contextlib.suppress(AssertionError):
        wait_for(settled, timeout=5, message="kopf to finish handling")


@pytest.fixture()
def operator(fake_api: FakeCluster, monkeypatch: pytest.MonkeyPatch) -> Iterator[KopfRunner]:
    monkeypatch.setenv("MODELROLLOUT_KUBE_SERVER", fake_api.url)
    monkeypatch.setenv("MODELROLLOUT_RESYNC_SECONDS", "1")
    monkeypatch.delenv("KUBECONFIG", raising=False)
    monkeypatch.delenv("MODELROLLOUT_METRICS_PORT", raising=False)
    default_registry = kopf.get_default_registry()  # kopf's CLI replaces it with ours
    registry = _fresh_registry()
    args = ["run", "--standalone", "--all-namespaces", "--verbose", "-m", OPERATOR_MODULE]
    runner = KopfRunner(args, registry=registry, timeout=OPERATOR_STOP_TIMEOUT)
    try:
        with runner:
            wait_for(
                lambda: any(r.params.get("watch") == "true" for r in fake_api.requests("GET", MD_RESOURCE)),
                timeout=OPERATOR_START_TIMEOUT,
                message="the operator to watch ModelDeployments",
            )
            yield runner
            _wait_until_settled(fake_api)
    finally:
        kopf.set_default_registry(default_registry)
        if runner.future.done() and runner.future.exception() is None:
            # Shown by pytest for failing tests only: the operator's own log.
            print(runner.output)
