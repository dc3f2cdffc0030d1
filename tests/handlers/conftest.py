"""Fixtures to run the real kopf operator against a fake, kmock-based Kubernetes API server.

- `fake_api`: a running `FakeCluster` (URL, store helpers, request log); a test can ask for
  optional APIs with `@pytest.mark.fake_api(pod_monitors=True)`.
- `kube_client`: the official client's `ApiClient` pointed at it (plain HTTP, no TLS).
- `operator`: `modelrollout.handlers` running in `KopfRunner` against it, with short resync
  timers; ready once it watches ModelDeployments.
- `wait_for`: bounded polling (re-exported from `fakeapi`).
- `deployment_controller`: a background thread playing the Deployment controller: every
  Deployment whose spec its status has not caught up with is reported rolled out.

The fake has no garbage collector, scheduler or controllers: tests play the Deployment
controller themselves (`fake_api.set_status(...)`). Real garbage collection is for the e2e tests.
"""

from __future__ import annotations

import contextlib
import copy
import importlib
import json
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import kmock
import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s

from tests.handlers.fakeapi import FakeCluster, wait_for
from tests.handlers.fakeapi.resources import from_crd

OPERATOR_MODULE = "modelrollout.handlers"
MD_RESOURCE = "modelrollout.io/v1alpha1/modeldeployments"
DIFFBASE_ANNOTATION = "modelrollout.io/last-handled-configuration"
OPERATOR_START_TIMEOUT = 15.0
OPERATOR_STOP_TIMEOUT = 15.0

__all__ = ["wait_for"]


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "fake_api(pod_monitors=False, http_routes=True, watch_latency=0.0, namespaces=('default',)): "
        "optional APIs the fake serves, how late its watch events arrive, the namespaces it has",
    )


@pytest.fixture(scope="session")
def crd() -> dict[str, Any]:
    from modelrollout.api.crd import crd as generate

    return generate()


@pytest.fixture(scope="session")
def template_crds() -> list[dict[str, Any]]:
    """ModelAnalysisTemplate and ClusterModelAnalysisTemplate, as generated."""
    from modelrollout.api.crd import ANALYSIS_TEMPLATE, CLUSTER_ANALYSIS_TEMPLATE
    from modelrollout.api.crd import crd as generate

    return [generate(ANALYSIS_TEMPLATE), generate(CLUSTER_ANALYSIS_TEMPLATE)]


@pytest.fixture()
def fake_api(
    request: pytest.FixtureRequest, crd: dict[str, Any], template_crds: list[dict[str, Any]]
) -> Iterator[FakeCluster]:
    marker = request.node.get_closest_marker("fake_api")
    options = dict(marker.kwargs) if marker else {}
    with FakeCluster(crds=[crd, *template_crds], **options) as api:
        _prune_nulls_before_validation(api, crd)
        yield api
        errors = api.server_errors()
    assert not errors, f"the fake API server itself failed: {errors!r}"


def prune_nulls(obj: Any, schema: dict[str, Any]) -> Any:
    """What the API server does to a custom resource before validating it (Kubernetes >= 1.20,
    `PruneNonNullableNullsWithoutDefaults` then defaulting): a null in a field that is not
    `nullable` is dropped, or replaced by the field's default. So a merge patch that writes
    `{"value": null}` inside a list item is stored without `value`, not rejected. In place."""
    if isinstance(obj, dict):
        properties = schema.get("properties") or {}
        additional = schema.get("additionalProperties")
        for key in list(obj):
            sub = properties.get(key, additional if isinstance(additional, dict) else None)
            if sub is None:
                continue
            if obj[key] is None and not sub.get("nullable"):
                if "default" in sub:
                    obj[key] = copy.deepcopy(sub["default"])
                else:
                    del obj[key]
            else:
                prune_nulls(obj[key], sub)
    elif isinstance(obj, list) and isinstance(schema.get("items"), dict):
        for item in obj:
            prune_nulls(item, schema["items"])
    return obj


def _prune_nulls_before_validation(api: FakeCluster, crd: dict[str, Any]) -> None:
    """The fake validates custom resources but does not prune (see `fakeapi`); until its store
    does, wrap its validator for the CRD so that the object is pruned (in place) first."""
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    for res in from_crd(crd):
        validate = api.store._validators.get(res.key)
        if validate is not None:
            api.store._validators[res.key] = lambda obj, validate=validate: validate(prune_nulls(obj, schema))


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


class DeploymentController:
    """Plays the Deployment controller in a thread: every Deployment whose status has not caught
    up with its spec (generation or replica count) is reported fully rolled out, all replicas
    updated, ready and available. `hold(name)` keeps one Deployment's pods from becoming ready
    (its status untouched), as a crash-looping or slow image would.

    Bounded: it polls every `interval` s and stops at `stop()` or after `lifetime` s.
    """

    def __init__(
        self, api: FakeCluster, *, namespace: str = "default", interval: float = 0.1, lifetime: float = 120.0
    ) -> None:
        self.api, self.namespace, self.interval, self.lifetime = api, namespace, interval, lifetime
        self._held: set[str] = set()
        self._stop = threading.Event()
        self._errors: list[BaseException] = []
        self._thread = threading.Thread(target=self._run, name="fake-deployment-controller", daemon=True)

    def hold(self, name: str) -> None:
        self._held.add(name)

    def release(self, name: str) -> None:
        self._held.discard(name)

    def start(self) -> DeploymentController:
        self._thread.start()
        return self

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)
        assert not self._errors, f"the fake Deployment controller failed: {self._errors!r}"

    def _run(self) -> None:
        deadline = time.monotonic() + self.lifetime
        while not self._stop.is_set() and time.monotonic() < deadline:
            try:
                for dep in self.api.list("Deployment", self.namespace):
                    if dep["metadata"]["name"] not in self._held:
                        self._roll_out(dep)
            except kmock.KubernetesError as exc:  # deleted between list and write: next round
                if exc.status != 404:
                    self._errors.append(exc)
            except Exception as exc:  # noqa: BLE001 - reported by stop()
                self._errors.append(exc)
                return
            self._stop.wait(self.interval)

    def _roll_out(self, dep: dict[str, Any]) -> None:
        want = dep["spec"].get("replicas", 1)
        status = dep.get("status") or {}
        generation = dep["metadata"]["generation"]
        if status.get("observedGeneration") == generation and status.get("readyReplicas", 0) == want:
            return
        self.api.set_status(
            "Deployment",
            self.namespace,
            dep["metadata"]["name"],
            {
                "observedGeneration": generation,
                "replicas": want,
                "updatedReplicas": want,
                "readyReplicas": want,
                "availableReplicas": want,
                "conditions": [{"type": "Available", "status": "True", "reason": "MinimumReplicasAvailable"}],
            },
        )


@pytest.fixture()
def deployment_controller(fake_api: FakeCluster) -> Iterator[DeploymentController]:
    controller = DeploymentController(fake_api).start()
    try:
        yield controller
    finally:
        controller.stop()
