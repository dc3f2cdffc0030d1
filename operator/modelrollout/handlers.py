"""kopf registrations only: each handler hands one object to `controller.reconcile`.

Handlers are plain `def`s, so kopf runs them in its bounded thread pool and the blocking
kubernetes client never runs on the event loop. Create/update/resume kick a reconcile at
once; a timer per object re-observes the children and repairs drift (level-based).
"""

from __future__ import annotations

import functools
import logging
import os
from typing import Any

import kopf

from modelrollout import GROUP, PLURAL, VERSION, controller
from modelrollout.kube import kinds as K
from modelrollout.kube.client import ApiError, KubeClient, load_api_client
from modelrollout.render import labels as L

RESOURCE = (GROUP, VERSION, PLURAL)
RESYNC_SECONDS = float(os.environ.get("MODELROLLOUT_RESYNC_SECONDS", "30"))
MAX_WORKERS = int(os.environ.get("MODELROLLOUT_MAX_WORKERS", "16"))
TRANSIENT = {409, 429, 500, 502, 503, 504}

log = logging.getLogger(__name__)


@functools.cache
def kube() -> KubeClient:
    return KubeClient(load_api_client())


@kopf.on.startup()
def configure(settings: kopf.OperatorSettings, **_: Any) -> None:
    settings.persistence.finalizer = f"{GROUP}/finalizer"
    settings.persistence.progress_storage = kopf.AnnotationsProgressStorage(prefix=GROUP)
    settings.persistence.diffbase_storage = kopf.AnnotationsDiffBaseStorage(
        prefix=GROUP, key="last-handled-configuration")
    settings.posting.level = logging.WARNING
    settings.execution.max_workers = MAX_WORKERS
    settings.watching.server_timeout = 300
    settings.watching.client_timeout = 330


@kopf.on.login()
def login(**kwargs: Any) -> kopf.ConnectionInfo | None:
    server = os.environ.get("MODELROLLOUT_KUBE_SERVER")
    if server:
        return kopf.ConnectionInfo(server=server, insecure=True)
    return kopf.login_via_client(**kwargs)


def _reconcile(body: kopf.Body) -> None:
    try:
        controller.reconcile(kube(), dict(body))
    except ApiError as exc:
        if exc.status in TRANSIENT:
            raise kopf.TemporaryError(f"API server: {exc}", delay=5) from exc
        raise


@kopf.on.resume(*RESOURCE)
@kopf.on.create(*RESOURCE)
@kopf.on.update(*RESOURCE, field="spec")
def kick(body: kopf.Body, **_: Any) -> None:
    _reconcile(body)


@kopf.timer(*RESOURCE, interval=RESYNC_SECONDS, initial_delay=RESYNC_SECONDS)
def resync(body: kopf.Body, **_: Any) -> None:
    _reconcile(body)


@kopf.on.delete(*RESOURCE, optional=True)
def cleanup(name: str, namespace: str, **_: Any) -> None:
    """Children carry controller ownerReferences, so the garbage collector removes them; this
    also deletes them right away, which matters where no collector runs."""
    client = kube()
    for kind, child in ((K.DEPLOYMENT, L.track_name(name, "stable")), (K.DEPLOYMENT, L.track_name(name, "canary")),
                        (K.HPA, L.track_name(name, "stable")), (K.SERVICE, name),
                        (K.SERVICE, L.track_name(name, "stable")), (K.SERVICE, L.track_name(name, "canary")),
                        (K.CRONJOB, L.batch_name(name))):
        client.delete(kind, namespace, child)
    if client.served(K.POD_MONITOR):
        client.delete(K.POD_MONITOR, namespace, name)
