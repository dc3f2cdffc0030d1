"""The one place that talks to the Kubernetes API server.

Blocking (the official client is synchronous): callers in async code run these methods in
a thread. Requests are built by hand on the official client's transport (auth, TLS, proxies
from kubeconfig) so that server-side apply, the status subresource and merge patches are
exactly the HTTP calls the API conventions describe, with no per-call discovery.
"""

from __future__ import annotations

import json
import logging
import os
import secrets
import threading
import time
from collections.abc import Iterator
from typing import Any

from kubernetes import client as k8s
from kubernetes import config as k8s_config

from modelrollout import FIELD_MANAGER
from modelrollout.kube.kinds import EVENT, MODEL_DEPLOYMENT, Kind, kind_of

log = logging.getLogger(__name__)

APPLY = "application/apply-patch+yaml"
MERGE = "application/merge-patch+json"
REQUEST_TIMEOUT = (5, 30)  # connect, read (seconds)


class ApiError(Exception):
    """A non-2xx answer, with the server's Status message."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(f"{status}: {message}")
        self.status = status
        self.message = message


def load_api_client() -> k8s.ApiClient:
    """From `MODELROLLOUT_KUBE_SERVER` (tests, local fakes), in-cluster config, or kubeconfig."""
    server = os.environ.get("MODELROLLOUT_KUBE_SERVER")
    if server:
        configuration = k8s.Configuration(host=server)
        configuration.verify_ssl = False
        return k8s.ApiClient(configuration)
    try:
        k8s_config.load_incluster_config()
    except k8s_config.ConfigException:
        k8s_config.load_kube_config()
    return k8s.ApiClient()


def event_name(involved_name: str, now_ns: int | None = None) -> str:
    """`<object>.<hex time><hex random>`, as client-go's recorder names events. Not
    `generateName: <object>.`: the API server refuses a generateName ending in a dot (a name
    must be a DNS subdomain), so every event would be lost."""
    stamp = time.time_ns() if now_ns is None else now_ns
    return f"{involved_name}.{stamp:x}{secrets.randbelow(1 << 16):04x}"


def connect(*, kubeconfig: str | None = None, context: str | None = None) -> tuple[KubeClient, str]:
    """A client for the CLI, and the namespace its context names ("default" in-cluster or when
    the context names none)."""
    if os.environ.get("MODELROLLOUT_KUBE_SERVER") and not (kubeconfig or context):
        return KubeClient(load_api_client()), "default"
    try:
        _, active = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
        if context is not None:
            contexts, _ = k8s_config.list_kube_config_contexts(config_file=kubeconfig)
            active = next((c for c in contexts if c["name"] == context), None)
            if active is None:
                raise ValueError(f"context {context!r} not found in the kubeconfig")
        configuration = k8s.Configuration()
        k8s_config.load_kube_config(
            config_file=kubeconfig, context=context, client_configuration=configuration
        )
        namespace = (active or {}).get("context", {}).get("namespace") or "default"
        return KubeClient(k8s.ApiClient(configuration)), namespace
    except k8s_config.ConfigException as exc:
        if kubeconfig or context:  # asked for explicitly: never fall back to something else
            raise ValueError(f"cannot use the kubeconfig: {exc}") from None
        try:
            k8s_config.load_incluster_config()
        except k8s_config.ConfigException:
            raise ValueError(f"no kubeconfig ({exc}) and not running in a cluster") from None
        return KubeClient(k8s.ApiClient()), "default"


class KubeClient:
    def __init__(self, api_client: k8s.ApiClient) -> None:
        self.api = api_client
        self._served: dict[str, tuple[float, bool]] = {}
        self._served_lock = threading.Lock()

    # --- transport ---------------------------------------------------------------------------
    def _request(
        self,
        method: str,
        path: str,
        *,
        query: list[tuple[str, str]] | None = None,
        body: Any = None,
        content_type: str = "application/json",
    ) -> dict[str, Any]:
        headers = {"Accept": "application/json", "Content-Type": content_type}
        method, url, headers, body, post = self.api.param_serialize(
            method=method,
            resource_path=path,
            query_params=query or [],
            header_params=headers,
            body=body,
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method, url, header_params=headers, body=body, post_params=post, _request_timeout=REQUEST_TIMEOUT
        )
        data = response.read()
        text = data.decode() if isinstance(data, bytes) else (data or "")
        if not 200 <= response.status < 300:
            try:
                message = json.loads(text).get("message", text)
            except ValueError:
                message = text
            raise ApiError(response.status, message)
        return json.loads(text) if text else {}

    # --- objects -----------------------------------------------------------------------------
    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        try:
            return self._request("GET", kind.object_path(namespace, name))
        except ApiError as exc:
            if exc.status == 404:
                return None
            raise

    def list(self, kind: Kind, namespace: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        query = [("labelSelector", label_selector)] if label_selector else []
        return self._request("GET", kind.collection_path(namespace), query=query).get("items", [])

    def watch(
        self,
        kind: Kind,
        namespace: str | None,
        *,
        name: str | None = None,
        resource_version: str | None = None,
        timeout_seconds: int = 60,
    ) -> Iterator[dict[str, Any]]:
        """The watch events ({type, object}) of `kind` (one object with `name`), from
        `resource_version`, until the server ends the stream (after `timeout_seconds`) or the
        caller stops iterating. The connection is closed either way."""
        query = [("watch", "true"), ("timeoutSeconds", str(int(timeout_seconds)))]
        if name:
            query.append(("fieldSelector", f"metadata.name={name}"))
        if resource_version:
            query.append(("resourceVersion", resource_version))
        method, url, headers, body, post = self.api.param_serialize(
            method="GET",
            resource_path=kind.collection_path(namespace),
            query_params=query,
            header_params={"Accept": "application/json"},
            auth_settings=["BearerToken"],
        )
        response = self.api.call_api(
            method, url, header_params=headers, _request_timeout=(REQUEST_TIMEOUT[0], timeout_seconds + 10)
        )
        if not 200 <= response.status < 300:
            raise ApiError(response.status, (response.read() or b"").decode(errors="replace")[:500])
        raw = response.response
        try:
            yield from _json_lines(raw.stream(amt=None, decode_content=True))
        finally:
            raw.close()  # never back into the pool half-read

    def apply(self, manifest: dict[str, Any], *, field_manager: str = FIELD_MANAGER) -> dict[str, Any]:
        """Server-side apply with the operator's field manager (force: the operator owns these)."""
        kind = kind_of(manifest)
        meta = manifest["metadata"]
        return self._request(
            "PATCH",
            kind.object_path(meta.get("namespace"), meta["name"]),
            query=[("fieldManager", field_manager), ("force", "true")],
            body=manifest,
            content_type=APPLY,
        )

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        """Delete with background propagation; False if it was already gone."""
        try:
            self._request(
                "DELETE",
                kind.object_path(namespace, name),
                body={"kind": "DeleteOptions", "apiVersion": "v1", "propagationPolicy": "Background"},
            )
            return True
        except ApiError as exc:
            if exc.status == 404:
                return False
            raise

    def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], kind: Kind = MODEL_DEPLOYMENT
    ) -> None:
        """Merge-patch `.status` through the status subresource (never the main resource)."""
        self._request(
            "PATCH",
            kind.object_path(namespace, name) + "/status",
            query=[("fieldManager", FIELD_MANAGER)],
            body={"status": status},
            content_type=MERGE,
        )

    def patch(
        self,
        kind: Kind,
        namespace: str,
        name: str,
        patch: dict[str, Any],
        *,
        field_manager: str | None = None,
    ) -> dict[str, Any]:
        query = [("fieldManager", field_manager)] if field_manager else []
        return self._request(
            "PATCH", kind.object_path(namespace, name), query=query, body=patch, content_type=MERGE
        )

    # --- discovery ---------------------------------------------------------------------------
    def served(self, kind: Kind, ttl: float = 300.0) -> bool:
        """Whether the API serves `kind` (e.g. PodMonitor only with prometheus-operator).

        Cached for `ttl` seconds per kind, so 1,000 objects do not mean 1,000 discovery calls.
        """
        key = f"{kind.api_version}/{kind.plural}"
        now = time.monotonic()
        with self._served_lock:
            cached = self._served.get(key)
        if cached is not None and now - cached[0] < ttl:
            return cached[1]
        base = f"/apis/{kind.api_version}" if "/" in kind.api_version else f"/api/{kind.api_version}"
        try:
            found = any(r.get("name") == kind.plural for r in self._request("GET", base).get("resources", []))
        except ApiError as exc:
            if exc.status not in (404, 503):
                raise
            found = False
        with self._served_lock:
            self._served[key] = (now, found)
        return found

    # --- events ------------------------------------------------------------------------------
    def event(self, involved: dict[str, Any], *, type: str, reason: str, message: str, action: str) -> None:
        """Record an events.k8s.io/v1 Event about `involved`; failures are logged, never raised."""
        meta = involved["metadata"]
        now = time.strftime("%Y-%m-%dT%H:%M:%S.000000Z", time.gmtime())
        event = {
            "apiVersion": EVENT.api_version,
            "kind": "Event",
            "metadata": {"name": event_name(meta["name"]), "namespace": meta["namespace"]},
            "eventTime": now,
            "reportingController": f"modelrollout.io/{FIELD_MANAGER}",
            "reportingInstance": os.environ.get("HOSTNAME", FIELD_MANAGER),
            "action": action,
            "reason": reason,
            "note": message[:1024],
            "type": type,
            "regarding": {
                "apiVersion": involved["apiVersion"],
                "kind": involved["kind"],
                "name": meta["name"],
                "namespace": meta["namespace"],
                "uid": meta.get("uid"),
                "resourceVersion": meta.get("resourceVersion"),
            },
        }
        try:
            self._request("POST", EVENT.collection_path(meta["namespace"]), body=event)
        except Exception as exc:  # noqa: BLE001 - an event must never break a reconcile
            log.warning("could not record event %s on %s: %s", reason, meta["name"], exc)


def _json_lines(chunks: Iterator[bytes]) -> Iterator[dict[str, Any]]:
    """A watch stream is one JSON object per line, split across chunks anyhow."""
    buffer = b""
    for chunk in chunks:
        buffer += chunk
        while b"\n" in buffer:
            line, buffer = buffer.split(b"\n", 1)
            if line.strip():
                yield json.loads(line)
    if buffer.strip():
        yield json.loads(buffer)
