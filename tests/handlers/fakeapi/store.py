"""The fake API server's object store: what etcd plus the API server's write path would do.

Thread-safe (one lock): the HTTP server runs in its own thread and loop, while tests read and
write from the test thread. Semantics kept from a real API server, because operators depend
on them:

- `metadata.resourceVersion` is a global counter bumped on every change, `uid` and
  `creationTimestamp` are set once, `generation` moves only when something other than
  metadata/status changes.
- A write that changes nothing is a no-op: no new resourceVersion, no watch event.
- With a status subresource, writes to the main resource keep the stored `.status` and writes
  to `/status` change nothing but `.status`.
- Deleting an object with finalizers only sets `deletionTimestamp`; it goes away when its
  finalizers become empty.
- Namespaced objects need an existing namespace (NamespaceLifecycle admission).
- Every change is appended to an event log, which watches replay from a resourceVersion.
"""

from __future__ import annotations

import bisect
import copy
import secrets
import threading
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from kmock import KubernetesError

from . import patching as P
from .resources import Resource

ObjectKey = tuple[tuple[str, str, str], str | None, str]
Validator = Callable[[dict[str, Any]], list[str]]


@dataclass(frozen=True)
class WatchEvent:
    rv: int
    resource: Resource
    namespace: str | None
    type: str  # ADDED | MODIFIED | DELETED
    object: dict[str, Any]
    at: float  # time.monotonic() of the change


def _error(code: int, reason: str, message: str) -> KubernetesError:
    return KubernetesError(status=code, reason=reason, message=message, details={"causes": []})


class Store:
    def __init__(
        self,
        *,
        on_event: Callable[[], None] = lambda: None,
        validators: dict[tuple[str, str, str], Validator] | None = None,
    ) -> None:
        self._lock = threading.RLock()
        self._objects: dict[ObjectKey, dict[str, Any]] = {}
        self._applied: dict[ObjectKey, dict[tuple[str, str | None], dict[str, Any]]] = {}
        self._rv = 0
        self._events: list[WatchEvent] = []
        self._event_rvs: list[int] = []
        self._on_event = on_event
        self._validators = validators or {}

    # --- reads -------------------------------------------------------------------------------
    @property
    def resource_version(self) -> int:
        with self._lock:
            return self._rv

    def get(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            return copy.deepcopy(self._live(res, namespace, name))

    def list(
        self,
        res: Resource,
        namespace: str | None,
        *,
        label_selector: str | None = None,
        field_selector: str | None = None,
    ) -> tuple[list[dict[str, Any]], int]:
        """Items (sorted by namespace/name) and the resourceVersion the list is consistent at."""
        with self._lock:
            found = [
                (ns or "", name, obj)
                for (key, ns, name), obj in self._objects.items()
                if key == res.key
                and (namespace is None or ns == namespace)
                and self.matches(obj, label_selector, field_selector)
            ]
            return [copy.deepcopy(obj) for _, _, obj in sorted(found, key=lambda t: t[:2])], self._rv

    @staticmethod
    def matches(obj: dict[str, Any], label_selector: str | None, field_selector: str | None) -> bool:
        try:
            return P.label_selector_matches(
                label_selector, obj.get("metadata", {}).get("labels")
            ) and P.field_selector_matches(field_selector, obj)
        except ValueError as exc:
            raise _error(400, "BadRequest", str(exc)) from None

    def events_after(self, rv: int) -> list[WatchEvent]:
        with self._lock:
            return self._events[bisect.bisect_right(self._event_rvs, rv) :]

    def applied_config(
        self, res: Resource, namespace: str | None, name: str, manager: str, subresource: str | None = None
    ) -> dict[str, Any] | None:
        """What `manager` last server-side-applied to the object (for assertions)."""
        with self._lock:
            found = self._applied.get(self._key(res, namespace, name), {}).get((manager, subresource))
            return copy.deepcopy(found)

    # --- writes ------------------------------------------------------------------------------
    def create(
        self, res: Resource, namespace: str | None, body: Any, *, manager: str, operation: str = "Update"
    ) -> dict[str, Any]:
        with self._lock:
            obj = self._prepare_new(res, namespace, body)
            key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
            if key in self._objects:
                raise _error(409, "AlreadyExists", f'{res.plural} "{key[2]}" already exists')
            return self._insert(res, key, obj, manager=manager, operation=operation)

    def replace(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        body: Any,
        *,
        subresource: str | None,
        manager: str,
    ) -> dict[str, Any]:
        with self._lock:
            live = self._live(res, namespace, name)
            if not isinstance(body, dict):
                raise _error(400, "BadRequest", "the body of a PUT must be an object")
            self._check_precondition(live, body)
            return self._commit(
                res, live, copy.deepcopy(body), subresource=subresource, manager=manager, operation="Update"
            )

    def patch(
        self,
        res: Resource,
        namespace: str | None,
        name: str,
        patch: Any,
        *,
        content_type: str,
        subresource: str | None,
        manager: str | None,
        force: bool = False,
    ) -> dict[str, Any]:
        with self._lock:
            key = self._key(res, namespace, name)
            if content_type == P.APPLY:
                return self._apply(res, key, patch, subresource=subresource, manager=manager, force=force)
            live = self._live(res, namespace, name)
            if isinstance(patch, dict):
                self._check_precondition(live, patch)
            try:
                if content_type in (P.MERGE, P.STRATEGIC):
                    if not isinstance(patch, dict):
                        raise P.PatchError("a merge patch must be an object")
                    new = P.merge_patch(live, patch)
                elif content_type == P.JSON_PATCH:
                    new = P.json_patch(live, patch)
                else:
                    raise _error(
                        415, "UnsupportedMediaType", f"the patch type {content_type!r} is not supported"
                    )
            except P.PatchError as exc:
                raise _error(422, "Invalid", str(exc)) from None
            return self._commit(
                res, live, new, subresource=subresource, manager=manager or "unknown", operation="Update"
            )

    def delete(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        with self._lock:
            live = self._live(res, namespace, name)
            if live["metadata"].get("finalizers"):
                if live["metadata"].get("deletionTimestamp"):
                    return copy.deepcopy(live)
                new = copy.deepcopy(live)
                new["metadata"]["deletionTimestamp"] = P.now()
                new["metadata"]["deletionGracePeriodSeconds"] = 0
                return self._store(res, new, "MODIFIED")
            return self._remove(res, live)

    # --- internals ---------------------------------------------------------------------------
    def _key(self, res: Resource, namespace: str | None, name: str) -> ObjectKey:
        return (res.key, namespace if res.namespaced else None, name)

    def _live(self, res: Resource, namespace: str | None, name: str) -> dict[str, Any]:
        obj = self._objects.get(self._key(res, namespace, name))
        if obj is None:
            what = f"{res.plural}.{res.group}" if res.group else res.plural
            raise _error(404, "NotFound", f'{what} "{name}" not found')
        return obj

    def _check_precondition(self, live: dict[str, Any], body: dict[str, Any]) -> None:
        wanted = (body.get("metadata") or {}).get("resourceVersion")
        if wanted and wanted != live["metadata"]["resourceVersion"]:
            raise _error(
                409,
                "Conflict",
                "the object has been modified; please apply your changes to the latest version and try again",
            )

    def _prepare_new(self, res: Resource, namespace: str | None, body: Any) -> dict[str, Any]:
        if not isinstance(body, dict):
            raise _error(400, "BadRequest", "the body must be an object")
        obj = P.strip_server_metadata(body)
        if (
            obj.setdefault("apiVersion", res.api_version) != res.api_version
            or obj.setdefault("kind", res.kind) != res.kind
        ):
            raise _error(
                400, "BadRequest", f"{obj['apiVersion']}/{obj['kind']} does not belong to {res.plural}"
            )
        meta = obj.setdefault("metadata", {})
        if res.namespaced:
            if meta.get("namespace") not in (None, namespace):
                raise _error(
                    400,
                    "BadRequest",
                    "the namespace of the provided object does not match the namespace sent on the request",
                )
            meta["namespace"] = namespace
            if (("", "v1", "namespaces"), None, namespace) not in self._objects:
                raise _error(404, "NotFound", f'namespaces "{namespace}" not found')
        else:
            meta.pop("namespace", None)
        if not meta.get("name"):
            if not meta.get("generateName"):
                raise _error(
                    422, "Invalid", "metadata.name: Required value: name or generateName is required"
                )
            meta["name"] = meta["generateName"] + secrets.token_hex(3)[:5]
        if res.has_status:
            obj.pop("status", None)
        return obj

    def _insert(
        self,
        res: Resource,
        key: ObjectKey,
        obj: dict[str, Any],
        *,
        manager: str,
        operation: str,
        subresource: str | None = None,
    ) -> dict[str, Any]:
        self._validate(res, obj)
        meta = obj["metadata"]
        meta["uid"] = str(uuid.uuid4())
        meta["creationTimestamp"] = P.now()
        meta["generation"] = 1
        meta["managedFields"] = P.record_manager([], res.api_version, manager, operation, subresource)
        return self._store(res, obj, "ADDED")

    def _apply(
        self,
        res: Resource,
        key: ObjectKey,
        applied: Any,
        *,
        subresource: str | None,
        manager: str | None,
        force: bool,
    ) -> dict[str, Any]:
        if not manager:
            raise _error(400, "BadRequest", "PATCH, application/apply-patch+yaml: fieldManager is required")
        if not isinstance(applied, dict) or not applied.get("apiVersion") or not applied.get("kind"):
            raise _error(400, "BadRequest", "an applied configuration needs apiVersion, kind and metadata")
        applied_meta = applied.get("metadata") or {}
        if applied_meta.get("name") not in (None, key[2]) or applied_meta.get("namespace") not in (
            None,
            key[1],
        ):
            raise _error(
                400, "BadRequest", "the name or namespace of the applied object does not match the URL"
            )
        applied = P.strip_server_metadata(applied)
        configs = self._applied.setdefault(key, {})
        live = self._objects.get(key)
        if live is None:
            if subresource is not None:
                raise _error(404, "NotFound", f'{res.plural} "{key[2]}" not found')
            obj = self._prepare_new(
                res, key[1], dict(applied, metadata={**applied.get("metadata", {}), "name": key[2]})
            )
            configs[(manager, None)] = applied
            return self._insert(res, key, obj, manager=manager, operation="Apply")
        others = [c for k, c in configs.items() if k != (manager, subresource)]
        new = P.server_side_apply(live, applied, previous=configs.get((manager, subresource)), others=others)
        result = self._commit(res, live, new, subresource=subresource, manager=manager, operation="Apply")
        configs[(manager, subresource)] = applied
        return result

    def _commit(
        self,
        res: Resource,
        live: dict[str, Any],
        new: dict[str, Any],
        *,
        subresource: str | None,
        manager: str,
        operation: str,
    ) -> dict[str, Any]:
        """Isolate status, keep server-owned metadata, then store unless nothing changed."""
        if subresource not in (None, "status") or (subresource == "status" and not res.has_status):
            raise _error(404, "NotFound", f"{res.plural} has no subresource {subresource!r}")
        candidate = P.isolate(live, new, subresource=subresource, has_status=res.has_status)
        if candidate == live:
            return copy.deepcopy(live)  # a no-op write: no new resourceVersion, no event
        self._validate(res, candidate)
        meta = candidate["metadata"]
        if P.spec_part(candidate) != P.spec_part(live):
            meta["generation"] = int(meta.get("generation", 0)) + 1
        meta["managedFields"] = P.record_manager(
            meta.get("managedFields", []), res.api_version, manager, operation, subresource
        )
        if meta.get("deletionTimestamp") and not meta.get("finalizers"):
            return self._remove(res, candidate)
        return self._store(res, candidate, "MODIFIED")

    def _validate(self, res: Resource, obj: dict[str, Any]) -> None:
        validator = self._validators.get(res.key)
        problems = validator(obj) if validator else []
        if problems:
            raise _error(
                422,
                "Invalid",
                f'{res.kind} "{obj["metadata"].get("name")}" is invalid: ' + "; ".join(problems),
            )

    def _store(self, res: Resource, obj: dict[str, Any], event_type: str) -> dict[str, Any]:
        self._rv += 1
        obj["metadata"]["resourceVersion"] = str(self._rv)
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self._objects[key] = obj
        self._emit(res, event_type, obj)
        return copy.deepcopy(obj)

    def _remove(self, res: Resource, obj: dict[str, Any]) -> dict[str, Any]:
        key = self._key(res, obj["metadata"].get("namespace"), obj["metadata"]["name"])
        self._objects.pop(key, None)
        self._applied.pop(key, None)
        self._rv += 1
        gone = copy.deepcopy(obj)
        gone["metadata"]["resourceVersion"] = str(self._rv)
        self._emit(res, "DELETED", gone)
        return copy.deepcopy(gone)

    def _emit(self, res: Resource, event_type: str, obj: dict[str, Any]) -> None:
        self._events.append(
            WatchEvent(
                self._rv,
                res,
                obj["metadata"].get("namespace"),
                event_type,
                copy.deepcopy(obj),
                time.monotonic(),
            )
        )
        self._event_rvs.append(self._rv)
        self._on_event()
