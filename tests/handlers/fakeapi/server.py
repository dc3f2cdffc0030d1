"""HTTP face of the fake API server: kmock's Kubernetes scaffold in front of our `Store`.

kmock provides the aiohttp server, the request log (every request with method, URL, params,
headers and body), the DSL for test-specific reactions (`api.kmock['patch', ...] << 500`
takes priority over the store), Kubernetes-style error bodies and the discovery endpoints
(`/api`, `/apis`, `/apis/<group>/<version>`) computed from `resources`. This class adds what
kmock's own `KubernetesEmulator` does not do (see `store.py`): it routes every object request
(GET/LIST/WATCH/POST/PUT/PATCH/DELETE, main resource and `/status`) to the store, parses the
four patch content types (YAML for apply) and streams watches from the store's event log.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import re
import time
from collections.abc import AsyncIterator
from typing import Any

import attrs
import kmock
import yaml

from . import patching as P
from .resources import Resource, ResourceTable
from .store import Store

MAX_WATCH_SECONDS = 1800.0
WATCH_POLL_SECONDS = 0.5  # how often an idle watch checks for a gone client or a shutdown


def _header(request: kmock.Request, name: str) -> str:
    return next((v for k, v in request.headers.items() if k.lower() == name.lower()), "")


def _content_type(request: kmock.Request) -> str:
    return _header(request, "Content-Type").split(";")[0].strip().lower()


def _default_manager(request: kmock.Request) -> str:
    """Like the API server: the user agent up to its first slash (`kopf/1.45` -> `kopf`)."""
    return (_header(request, "User-Agent") or "unknown").split("/")[0] or "unknown"


def _parse_body(request: kmock.Request) -> Any:
    if not request.body:
        return None
    try:
        return json.loads(request.body)
    except ValueError:
        pass
    try:
        return yaml.safe_load(request.body)  # apply-patch+yaml may be real YAML
    except yaml.YAMLError as exc:
        raise kmock.KubernetesError(
            status=400, reason="BadRequest", message=f"unparsable body: {exc}"
        ) from None


@attrs.define(kw_only=True)
class FakeApiServer(kmock.KubernetesScaffold):
    store: Store
    table: ResourceTable
    # Seconds between a change and its watch event, and between two events of one stream: a
    # lagging watch cache or a slow consumer, which real clients must tolerate.
    watch_latency: float = 0.0
    _wakers: set[asyncio.Event] = attrs.field(factory=set, init=False)
    _closing: bool = attrs.field(default=False, init=False)
    # (method, subresource, seconds): requests the server is slow to answer (see FakeCluster.slow_down).
    slow_requests: list[tuple[str, str | None, float]] = attrs.field(factory=list, init=False)

    def __attrs_post_init__(self) -> None:
        super().__attrs_post_init__()
        for res in self.table:
            self.resources[kmock.resource(res.group, res.version, res.plural)] = res.info()
        self.fallback[self._is_object_request] << self._serve
        # The official client asks for `/api/v1/` (trailing slash); kmock only knows `/api/v1`.
        self.fallback["get", re.compile(r"/api/[^/]+/|/apis/[^/]+/[^/]+/")] << self._serve_version
        self.fallback["get", re.compile(r"/apis/[^/]+/")] << self._serve_group
        self.fallback["get /apis/"] << self._serve_apis
        self.fallback["get /api/"] << self._serve_api

    # --- wiring to the outside world ---------------------------------------------------------
    def wake_watches(self) -> None:
        """Called in the server's loop (via call_soon_threadsafe) after every store change."""
        for waker in list(self._wakers):
            waker.set()

    def close_watches(self) -> None:
        self._closing = True
        self.wake_watches()

    # --- routing -----------------------------------------------------------------------------
    @staticmethod
    def _is_object_request(request: kmock.Request) -> bool:
        return request.resource is not None and request.resource.plural is not None

    async def _serve(self, request: kmock.Request) -> kmock.Response:
        res_ref = request.resource
        res = self.table.by_url(res_ref.group, res_ref.version, res_ref.plural)
        if res is None or (res.namespaced is False and request.namespace is not None):
            raise kmock.KubernetesResourceNotFoundError()
        ns, name, sub, params = request.namespace, request.name, request.subresource, request.params
        method = request.method.value
        manager = params.get("fieldManager") or _default_manager(request)
        for slow_method, slow_sub, seconds in list(self.slow_requests):
            if (slow_method, slow_sub) == (method, sub):
                await asyncio.sleep(seconds)
        if method == "GET" and params.get("watch") in ("true", "1"):
            stream = self._watch(request, res, ns)
            await anext(stream)  # validate parameters before the 200 goes out
            return kmock.Response(status=200, payload=stream)
        if method == "GET" and name:
            return kmock.Response(status=200, payload=self.store.get(res, ns, name))
        if method == "GET":
            items, rv = self.store.list(
                res,
                ns,
                label_selector=params.get("labelSelector"),
                field_selector=params.get("fieldSelector"),
            )
            return kmock.Response(
                status=200,
                payload={
                    "apiVersion": res.api_version,
                    "kind": f"{res.kind}List",
                    "metadata": {"resourceVersion": str(rv)},
                    "items": items,
                },
            )
        if method == "POST" and not name:
            return kmock.Response(
                status=201, payload=self.store.create(res, ns, _parse_body(request), manager=manager)
            )
        if method == "PUT" and name:
            return kmock.Response(
                status=200,
                payload=self.store.replace(
                    res, ns, name, _parse_body(request), subresource=sub, manager=manager
                ),
            )
        if method == "PATCH" and name:
            content_type = _content_type(request)
            if content_type not in P.PATCH_TYPES:
                raise kmock.KubernetesError(
                    status=415,
                    reason="UnsupportedMediaType",
                    message=f"the body of the request was in an unknown format: {content_type}",
                )
            return kmock.Response(
                status=200,
                payload=self.store.patch(
                    res,
                    ns,
                    name,
                    _parse_body(request),
                    content_type=content_type,
                    subresource=sub,
                    manager=params.get("fieldManager") or (None if content_type == P.APPLY else manager),
                    force=params.get("force") in ("true", "1"),
                ),
            )
        if method == "DELETE" and name:
            return kmock.Response(status=200, payload=self.store.delete(res, ns, name))
        raise kmock.KubernetesError(
            status=405, reason="MethodNotAllowed", message=f"{method} is not supported on {request.url.path}"
        )

    # --- watching ----------------------------------------------------------------------------
    async def _watch(self, request: kmock.Request, res: Resource, ns: str | None) -> AsyncIterator[Any]:
        """Events after `resourceVersion`; without one, the current objects as ADDED first.

        Reconnecting with the last seen resourceVersion replays nothing already seen, which is
        what kopf does after every stream end (kmock's emulator replays everything as ADDED).
        """
        params = request.params
        labels, fields = params.get("labelSelector"), params.get("fieldSelector")
        try:
            since = params.get("resourceVersion") or "0"
            cursor = int(since)
            timeout = min(float(params.get("timeoutSeconds") or MAX_WATCH_SECONDS), MAX_WATCH_SECONDS)
        except ValueError:
            raise kmock.KubernetesError(
                status=400, reason="BadRequest", message="invalid watch parameters"
            ) from None
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        waker = asyncio.Event()
        self._wakers.add(waker)
        delivered = 0.0
        yield b""  # consumed by _serve: parameters are valid
        try:
            yield b""  # flushes the headers
            if since == "0":
                items, cursor = self.store.list(res, ns, label_selector=labels, field_selector=fields)
                for obj in items:
                    yield {"type": "ADDED", "object": obj}
            while not self._closing:
                waker.clear()
                for event in self.store.events_after(cursor):
                    cursor = event.rv
                    if (
                        event.resource.key == res.key
                        and (ns is None or event.namespace == ns)
                        and self.store.matches(event.object, labels, fields)
                    ):
                        if self.watch_latency:  # a lagging stream: late, and one event per period
                            due = max(event.at, delivered) + self.watch_latency
                            await asyncio.sleep(max(0.0, due - time.monotonic()))
                            delivered = time.monotonic()
                        yield {"type": event.type, "object": event.object}
                remaining = deadline - loop.time()
                transport = request._raw_request.transport if request._raw_request is not None else None
                if remaining <= 0 or transport is None or transport.is_closing():
                    return
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(waker.wait(), timeout=min(WATCH_POLL_SECONDS, remaining))
        finally:
            self._wakers.discard(waker)
