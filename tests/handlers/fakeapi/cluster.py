"""A running fake cluster: the kmock-based API server in a background thread, plus helpers.

The server gets its own thread and event loop so that tests can be plain synchronous code
(the official kubernetes client blocks) and kopf can run in `KopfRunner`'s thread: three
threads, one store. Helpers write to the store directly (as a user or a built-in controller
would; they do not show up in the request log), and `requests()` lists what clients sent.
"""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Callable, Iterator
from typing import Any, TypeVar

import jsonschema
import kmock

from . import patching as P
from .resources import HTTP_ROUTE_CRD, POD_MONITOR_CRD, ResourceTable, builtin_resources, from_crd
from .server import FakeApiServer
from .store import Store

T = TypeVar("T")
TEST_MANAGER = "fake-cluster-test"


def schema_validator(crd: dict[str, Any]) -> Callable[[dict[str, Any]], list[str]]:
    """Validate against the CRD's openAPIV3Schema (draft 4 is what OpenAPI v3.0 builds on).

    Not emulated: CEL rules (`x-kubernetes-validations`), defaulting, pruning of unknown fields.
    """
    schema = crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    validator = jsonschema.Draft4Validator(schema)

    def validate(obj: dict[str, Any]) -> list[str]:
        errors = sorted(validator.iter_errors(obj), key=lambda e: list(e.absolute_path))
        return [f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}" for e in errors[:5]]

    return validate


def wait_for(
    predicate: Callable[[], T], *, timeout: float = 10.0, interval: float = 0.1, message: str = "condition"
) -> T:
    """Poll `predicate` until it returns something truthy (returned); fail after `timeout` s."""
    deadline = time.monotonic() + timeout
    last_error: Exception | None = None
    while True:
        try:
            result = predicate()
            if result:
                return result
        except (KeyError, LookupError, AssertionError, kmock.KubernetesError) as exc:
            last_error = exc
        if time.monotonic() >= deadline:
            detail = f" (last error: {last_error!r})" if last_error else ""
            raise AssertionError(f"timed out after {timeout}s waiting for {message}{detail}")
        time.sleep(interval)


class FakeCluster:
    """Start with `with FakeCluster(crds=[...]) as api:`; `api.url` is the server to point at."""

    def __init__(
        self,
        *,
        crds: list[dict[str, Any]],
        pod_monitors: bool = False,
        http_routes: bool = True,
        namespaces: tuple[str, ...] = ("default",),
        watch_latency: float = 0.0,
    ) -> None:
        crds = [
            *crds,
            *([POD_MONITOR_CRD] if pod_monitors else []),
            *([HTTP_ROUTE_CRD] if http_routes else []),
        ]
        resources = builtin_resources()
        for crd in crds:
            resources.extend(from_crd(crd))
        self.table = ResourceTable(resources)
        validators = {
            r.key: schema_validator(crd)
            for crd in crds
            for r in from_crd(crd)
            if "properties" in crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
        }
        self.store = Store(on_event=self._notify, validators=validators)
        self._seed = [self._crd_object(c) for c in crds] + [
            {"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": ns}} for ns in namespaces
        ]
        self.watch_latency = watch_latency
        self.server: FakeApiServer | None = None
        self.url = ""
        self._loop: asyncio.AbstractEventLoop | None = None
        self._stop: asyncio.Event | None = None
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, name="fake-kube-api", daemon=True)
        self._failure: BaseException | None = None

    @staticmethod
    def _crd_object(crd: dict[str, Any]) -> dict[str, Any]:
        return {k: v for k, v in crd.items() if k != "status"}

    # --- lifecycle ---------------------------------------------------------------------------
    def __enter__(self) -> FakeCluster:
        for obj in self._seed:
            self.create(obj)
        self._thread.start()
        if not self._ready.wait(timeout=10) or self._failure is not None:
            raise RuntimeError(f"the fake API server did not start: {self._failure!r}")
        return self

    def __exit__(self, *exc: object) -> None:
        if self._loop is not None and self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=10)

    def _run(self) -> None:
        try:
            asyncio.run(self._serve())
        except BaseException as exc:  # noqa: BLE001 - reported by __enter__ / server_errors
            self._failure = exc
            self._ready.set()

    async def _serve(self) -> None:
        self._loop = asyncio.get_running_loop()
        self._stop = asyncio.Event()
        self.server = FakeApiServer(store=self.store, table=self.table, watch_latency=self.watch_latency)
        async with self.server as handler, kmock.Server(handler) as server:
            self.url = str(server.url).rstrip("/")
            self._ready.set()
            await self._stop.wait()
            handler.close_watches()
            await asyncio.sleep(0.1)  # let the streams end cleanly before the server closes

    def _notify(self) -> None:
        loop, server = self._loop, self.server
        if loop is not None and server is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop is shutting down
                loop.call_soon_threadsafe(server.wake_watches)

    # --- the request log ---------------------------------------------------------------------
    def requests(
        self,
        method: str | None = None,
        kind: str | None = None,
        *,
        name: str | None = None,
        subresource: str | None = "*",
    ) -> list[kmock.Request]:
        """Requests clients made (oldest first), filtered; `subresource=None` means the main resource."""
        res = self.table.lookup(kind) if kind else None
        out = []
        for request in list(self.server or []):
            if method and request.method.value != method.upper():
                continue
            if res is not None and (
                request.resource is None
                or (request.resource.group, request.resource.version, request.resource.plural) != res.key
            ):
                continue
            if name is not None and request.name != name:
                continue
            if subresource != "*" and request.subresource != subresource:
                continue
            out.append(request)
        return out

    def wait_until_quiet(self, *, quiet: float = 1.0, timeout: float = 10.0) -> None:
        """Wait until no client has sent a request for `quiet` seconds (bounded by `timeout`)."""
        state = {"count": -1, "since": time.monotonic()}

        def settled() -> bool:
            count = len(self.requests())
            if count != state["count"]:
                state["count"], state["since"] = count, time.monotonic()
            return time.monotonic() - state["since"] >= quiet

        wait_for(settled, timeout=timeout, interval=0.05, message=f"{quiet}s without API requests")

    @contextlib.contextmanager
    def failing(
        self,
        method: str,
        kind: str,
        *,
        status: int = 500,
        message: str = "injected failure",
        subresource: str | None = None,
    ) -> Iterator[None]:
        """Answer matching requests with an error while inside the block (a kmock reaction that
        takes priority over the store), e.g. to prove that an operator survives a bad API server."""
        assert self.server is not None, "the fake API server is not running"
        res, active = self.table.lookup(kind), [True]

        def matches(request: kmock.Request) -> bool:
            return bool(
                active[0]
                and request.method.value == method.upper()
                and request.resource is not None
                and (request.resource.group, request.resource.version, request.resource.plural) == res.key
                and request.subresource == subresource
            )

        self.server[matches] << kmock.KubernetesError(
            status=status, reason="InjectedFailure", message=message
        )
        try:
            yield
        finally:
            active[0] = False

    def slow_down(self, method: str, *, subresource: str | None = None, seconds: float) -> None:
        """Answer such requests `seconds` late (from now on), like a loaded API server would."""
        assert self.server is not None, "the fake API server is not running"
        self.server.slow_requests.append((method.upper(), subresource, seconds))

    def server_errors(self) -> list[BaseException]:
        """Unexpected exceptions inside the fake (not the 4xx answers it gives on purpose)."""
        errors = list(self.server._errors[-1]) if self.server is not None and self.server._errors else []
        errors = [e for e in errors if not isinstance(e, kmock.KubernetesError)]
        return errors + ([self._failure] if self._failure else [])

    # --- helpers acting as a user or a built-in controller -----------------------------------
    def create(self, obj: dict[str, Any], *, manager: str = TEST_MANAGER) -> dict[str, Any]:
        res = self.table.by_kind(obj["apiVersion"], obj["kind"])
        return self.store.create(res, obj.get("metadata", {}).get("namespace"), obj, manager=manager)

    def get(self, kind: str, namespace: str | None, name: str) -> dict[str, Any] | None:
        try:
            return self.store.get(self.table.lookup(kind), namespace, name)
        except kmock.KubernetesError as exc:
            if exc.status == 404:
                return None
            raise

    def list(
        self, kind: str, namespace: str | None = None, *, label_selector: str | None = None
    ) -> list[dict[str, Any]]:
        return self.store.list(self.table.lookup(kind), namespace, label_selector=label_selector)[0]

    def patch(
        self,
        kind: str,
        namespace: str | None,
        name: str,
        patch: dict[str, Any],
        *,
        subresource: str | None = None,
        manager: str = TEST_MANAGER,
    ) -> dict[str, Any]:
        """A JSON merge patch (`subresource="status"` to act like a controller writing status)."""
        return self.store.patch(
            self.table.lookup(kind),
            namespace,
            name,
            patch,
            content_type=P.MERGE,
            subresource=subresource,
            manager=manager,
        )

    def set_status(
        self, kind: str, namespace: str | None, name: str, status: dict[str, Any]
    ) -> dict[str, Any]:
        return self.patch(kind, namespace, name, {"status": status}, subresource="status")

    def delete(self, kind: str, namespace: str | None, name: str) -> dict[str, Any]:
        return self.store.delete(self.table.lookup(kind), namespace, name)

    def create_namespace(self, name: str) -> dict[str, Any]:
        return self.create({"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": name}})

    def applied_config(
        self, kind: str, namespace: str | None, name: str, manager: str
    ) -> dict[str, Any] | None:
        return self.store.applied_config(self.table.lookup(kind), namespace, name, manager)
