"""kopf registrations only: each handler hands one object to `reconcile.pipeline.reconcile`.

One async daemon per ModelDeployment is its reconcile loop: it runs a reconcile in a worker
thread (the kubernetes and Prometheus clients block; the event loop never does), then sleeps
until the plan says something is due (an analysis, a step's end, pods to check) or the resync
period passes, whichever is first — so a rollback is not delayed by a fixed timer. Create,
spec and annotation changes wake the loop at once. Concurrency across all objects is bounded by
one thread pool; an idle object costs one sleeping coroutine and a few GETs per resync.
"""

from __future__ import annotations

import asyncio
import collections
import concurrent.futures
import copy
import functools
import logging
import os
import threading
from typing import Any

import kopf

from modelrollout import GROUP, PLURAL, VERSION
from modelrollout.kube.client import ApiError, KubeClient, load_api_client
from modelrollout.reconcile import children, operator_metrics, pipeline
from modelrollout.reconcile.backoff import retry_delay
from modelrollout.reconcile.plan import Plan

RESOURCE = (GROUP, VERSION, PLURAL)
RESYNC_SECONDS = float(os.environ.get("MODELROLLOUT_RESYNC_SECONDS", "30"))
MAX_WORKERS = int(os.environ.get("MODELROLLOUT_MAX_WORKERS", "16"))
METRICS_PORT = int(os.environ.get("MODELROLLOUT_METRICS_PORT", "0"))
TRANSIENT = {409, 429, 500, 502, 503, 504}

log = logging.getLogger(__name__)
_pool = concurrent.futures.ThreadPoolExecutor(max_workers=MAX_WORKERS, thread_name_prefix="reconcile")
_wakers: dict[str, asyncio.Event] = {}
# One lock per object: a reconcile and the deletion cleanup never overlap, and once an object is
# being deleted no reconcile (even one already queued in the pool) applies children again.
_locks: dict[str, threading.Lock] = {}
_deleting: collections.OrderedDict[str, None] = collections.OrderedDict()
DELETING_MEMORY = 10_000


@functools.cache
def kube() -> KubeClient:
    return KubeClient(load_api_client())


def _waker(uid: str) -> asyncio.Event:
    return _wakers.setdefault(uid, asyncio.Event())


def _guarded_reconcile(uid: str, snapshot: dict[str, Any]) -> Plan | None:
    """Runs in the pool. None: the object is being deleted, nothing was done."""
    with _locks.setdefault(uid, threading.Lock()):
        if uid in _deleting or snapshot["metadata"].get("deletionTimestamp"):
            return None
        return pipeline.reconcile(kube(), snapshot)


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration"
    )
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = MAX_WORKERS
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330
    if METRICS_PORT:
        from prometheus_client import start_http_server

        start_http_server(METRICS_PORT)


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    server = os.environ.get("MODELROLLOUT_KUBE_SERVER")
    if server:
        return kopf.ConnectionInfo(server=server, insecure=True)
    return kopf.login_via_client(**kwargs)


@kopf.on.event(*RESOURCE)
def wake(event: dict[str, Any], body: kopf.Body, uid: str, **_: Any) -> None:
    """A new spec (generation not yet observed) or an unhandled request annotation: reconcile
    now rather than at the next resync. Raw events persist nothing, so this cannot loop."""
    if event.get("type") in ("ADDED", "MODIFIED") and pipeline.needs_attention(body):
        _waker(uid).set()


@kopf.daemon(*RESOURCE, cancellation_timeout=30)
async def reconcile_loop(body: kopf.Body, uid: str, stopped: kopf.DaemonStopped, **_: Any) -> None:
    waker = _waker(uid)
    loop = asyncio.get_running_loop()
    # The status this loop last wrote. Only this loop writes the object's status, and kopf's
    # cached body can lag behind that write (watch latency), so the next reconcile starts from
    # what was written, never from an older status.
    written: dict[str, Any] | None = None
    failures = 0  # failed reconciles in a row: the retry backs off (with jitter, see backoff.py)
    try:
        while not stopped:
            waker.clear()
            snapshot = copy.deepcopy({key: body[key] for key in body})  # the live body changes under us
            if written is not None:
                snapshot["status"] = written
            try:
                result = await loop.run_in_executor(_pool, _guarded_reconcile, uid, snapshot)
                if result is None:
                    return
                written = pipeline.status_wire(result.status)
                delay = min(result.requeue_after or RESYNC_SECONDS, RESYNC_SECONDS)
                failures = 0
            except ApiError as exc:
                failures += 1
                delay = retry_delay(failures)
                level = logging.INFO if exc.status in TRANSIENT else logging.WARNING
                log.log(
                    level,
                    "reconcile of %s failed (retry in %.1fs): %s",
                    snapshot["metadata"].get("name"),
                    delay,
                    exc,
                )
            except Exception:  # noqa: BLE001 - one object's bug must not stop its loop for good
                failures += 1
                delay = retry_delay(failures, base=RESYNC_SECONDS, cap=max(RESYNC_SECONDS, 300.0))
                log.exception("reconcile of %s crashed", snapshot["metadata"].get("name"))
            await _sleep(stopped, waker, max(delay, 0.05))
    finally:
        _wakers.pop(uid, None)


async def _sleep(stopped: kopf.DaemonStopped, waker: asyncio.Event, seconds: float) -> None:
    async def stop() -> None:
        await stopped.wait(seconds)

    tasks = [asyncio.ensure_future(stop()), asyncio.ensure_future(waker.wait())]
    try:
        await asyncio.wait(tasks, timeout=seconds, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for task in tasks:
            task.cancel()


@kopf.on.delete(*RESOURCE, optional=True)
def cleanup(name: str, namespace: str, uid: str, **_: Any) -> None:
    """Children carry controller ownerReferences, so the garbage collector removes them; this
    also deletes them right away, which matters where no collector runs. A reconcile in flight
    finishes first and none runs after (it would bring the children back)."""
    _deleting[uid] = None
    while len(_deleting) > DELETING_MEMORY:
        _deleting.popitem(last=False)
    with _locks.setdefault(uid, threading.Lock()):
        _delete_children(name, namespace)
    _locks.pop(uid, None)
    operator_metrics.forget(namespace, name)


def _delete_children(name: str, namespace: str) -> None:
    client = kube()
    for child in children.CHILDREN:
        if child.optional_api and not client.served(child.kind):
            continue  # an API this cluster does not serve holds nothing of ours
        client.delete(child.kind, namespace, child.name(name))


def configure_logging(*, log_format: str, verbose: bool) -> None:
    """plain: text lines; json: kopf's JSON formatter (one object per line, with the object's
    namespace and name under `object` for lines about one ModelDeployment)."""
    if log_format == "json":
        kopf.configure(verbose=verbose, log_format=kopf.LogFormat.JSON, log_refkey="object")
        return
    logging.basicConfig(
        level=logging.DEBUG if verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )


def run(*, namespaces: list[str], liveness_endpoint: str | None) -> None:
    """Run the operator until it is stopped (SIGTERM/SIGINT): cluster-wide without namespaces."""
    asyncio.run(kopf.operator(standalone=True, liveness_endpoint=liveness_endpoint, **scope(namespaces)))


def scope(namespaces: list[str]) -> dict[str, object]:
    """kopf's scope arguments: cluster-wide with no namespaces, else exactly those namespaces.
    kopf iterates `namespaces` in both modes, so it is a tuple, never None (None crashed its
    namespace observer at start-up in cluster-wide mode)."""
    return {"clusterwide": not namespaces, "namespaces": tuple(namespaces)}
