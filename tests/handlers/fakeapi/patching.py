"""Pure functions that turn a write request into the next version of an object.

They emulate the API server's semantics closely enough for an operator's glue code:
JSON merge patch (RFC 7386), JSON patch (RFC 6902, via `jsonpatch`), strategic merge patch
(treated as a merge patch: lists are replaced, not merged by key), server-side apply, and label
and field selectors. No I/O, no locking: `store.py` calls them under its lock.
"""

from __future__ import annotations

import copy
import re
from collections.abc import Iterator
from datetime import UTC, datetime
from typing import Any

import jsonpatch

MERGE = "application/merge-patch+json"
STRATEGIC = "application/strategic-merge-patch+json"
JSON_PATCH = "application/json-patch+json"
APPLY = "application/apply-patch+yaml"
PATCH_TYPES = (MERGE, STRATEGIC, JSON_PATCH, APPLY)

# Metadata the server owns: clients' values are ignored on every write (a real server rejects or
# ignores them; resourceVersion is a precondition, checked separately by the store).
SERVER_METADATA = (
    "uid",
    "resourceVersion",
    "generation",
    "creationTimestamp",
    "deletionTimestamp",
    "managedFields",
    "selfLink",
)


class PatchError(ValueError):
    """A patch the server cannot apply: answered as 422 Unprocessable Entity."""


def merge_patch(target: Any, patch: Any) -> Any:
    """RFC 7386: dicts merge recursively, `null` removes a key, anything else replaces."""
    if not isinstance(patch, dict):
        return copy.deepcopy(patch)
    result = copy.deepcopy(target) if isinstance(target, dict) else {}
    for key, value in patch.items():
        if value is None:
            result.pop(key, None)
        else:
            result[key] = merge_patch(result.get(key), value)
    return result


def json_patch(target: dict[str, Any], operations: Any) -> dict[str, Any]:
    if not isinstance(operations, list):
        raise PatchError("a JSON patch must be a list of operations")
    try:
        return jsonpatch.apply_patch(target, operations)
    except (jsonpatch.JsonPatchException, jsonpatch.JsonPointerException, KeyError, TypeError) as exc:
        raise PatchError(f"the JSON patch cannot be applied: {exc}") from None


def leaf_paths(node: Any, prefix: tuple[str, ...] = ()) -> Iterator[tuple[str, ...]]:
    """Paths through nested dicts; lists and scalars are leaves (SSA treats our lists as atomic)."""
    if isinstance(node, dict) and node:
        for key, value in node.items():
            yield from leaf_paths(value, (*prefix, key))
    elif prefix:
        yield prefix


def _has_path(node: Any, path: tuple[str, ...]) -> bool:
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return False
        node = node[key]
    return True


def _remove_path(node: dict[str, Any], path: tuple[str, ...], keep: dict[str, Any]) -> None:
    """Delete `path`, then parents it leaves empty unless the new applied config has them."""
    parents = [node]
    for key in path[:-1]:
        child = parents[-1].get(key)
        if not isinstance(child, dict):
            return
        parents.append(child)
    parents[-1].pop(path[-1], None)
    for depth in range(len(path) - 1, 0, -1):
        if parents[depth] or _has_path(keep, path[:depth]):
            break
        parents[depth - 1].pop(path[depth - 1], None)


def server_side_apply(
    live: dict[str, Any] | None,
    applied: dict[str, Any],
    *,
    previous: dict[str, Any] | None,
    others: list[dict[str, Any]],
) -> dict[str, Any]:
    """The object after one manager applies `applied` (its complete intent).

    Like a real server: fields this manager applied before but no longer applies are removed
    (unless another manager also applies them); applied fields win (`force`); fields that only
    other writers set stay. Not emulated: per-field ownership of non-apply writes and conflicts
    (the operator always forces), merge keys in lists (lists are replaced whole).
    """
    result = copy.deepcopy(live) if live is not None else {}
    for path in leaf_paths(previous or {}):
        if not _has_path(applied, path) and not any(_has_path(o, path) for o in others):
            _remove_path(result, path, keep=applied)
    return merge_patch(result, _without_nulls(applied))


def _without_nulls(node: Any) -> Any:
    """In an applied config, null means "not set by me", never "delete"."""
    if isinstance(node, dict):
        return {k: _without_nulls(v) for k, v in node.items() if v is not None}
    return node


def strip_server_metadata(obj: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(obj)
    meta = out.get("metadata")
    if isinstance(meta, dict):
        for key in SERVER_METADATA:
            meta.pop(key, None)
    return out


def isolate(
    live: dict[str, Any], new: dict[str, Any], *, subresource: str | None, has_status: bool
) -> dict[str, Any]:
    """What a write may change: `/status` only `.status`; the main resource everything but the
    server-owned metadata, and but `.status` when the resource has a status subresource."""
    if subresource == "status":
        candidate = copy.deepcopy(live)
        candidate.pop("status", None)
        if new.get("status") is not None:
            candidate["status"] = copy.deepcopy(new["status"])
        return candidate
    candidate = strip_server_metadata(new)
    candidate["apiVersion"], candidate["kind"] = live["apiVersion"], live["kind"]
    candidate.pop("status", None)
    status = live.get("status") if has_status else new.get("status")
    if status is not None:
        candidate["status"] = copy.deepcopy(status)
    meta = candidate.setdefault("metadata", {})
    for field in ("name", "namespace", *SERVER_METADATA):
        if field in live["metadata"]:
            meta[field] = copy.deepcopy(live["metadata"][field])
    return candidate


def now() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def record_manager(
    entries: list[dict[str, Any]], api_version: str, manager: str, operation: str, subresource: str | None
) -> list[dict[str, Any]]:
    """`metadata.managedFields` after a write: who wrote, how, when (`fieldsV1` is not emulated)."""
    entry = {"manager": manager, "operation": operation, "apiVersion": api_version, "time": now()}
    entry |= {"fieldsType": "FieldsV1"} | ({"subresource": subresource} if subresource else {})
    same = (manager, operation, subresource)
    return [e for e in entries if (e["manager"], e["operation"], e.get("subresource")) != same] + [entry]


def spec_part(obj: dict[str, Any]) -> dict[str, Any]:
    """What `metadata.generation` tracks: everything except metadata and status."""
    return {k: v for k, v in obj.items() if k not in ("metadata", "status", "apiVersion", "kind")}


# --- selectors ------------------------------------------------------------------------------------

_SET_RE = re.compile(r"^\s*([^\s!=]+)\s+(in|notin)\s+\(([^)]*)\)\s*$")
_EQ_RE = re.compile(r"^\s*([^\s!=]+)\s*(==|=|!=)\s*([^\s]*)\s*$")
_EXISTS_RE = re.compile(r"^\s*(!?)\s*([^\s!=()]+)\s*$")


def _split_terms(selector: str) -> list[str]:
    """Split on commas outside parentheses: `a in (x,y),b=c` -> [`a in (x,y)`, `b=c`]."""
    terms, depth, current = [], 0, ""
    for char in selector:
        depth += {"(": 1, ")": -1}.get(char, 0)
        if char == "," and depth == 0:
            terms.append(current)
            current = ""
        else:
            current += char
    terms.append(current)
    return [t for t in terms if t.strip()]


def label_selector_matches(selector: str | None, labels: dict[str, str] | None) -> bool:
    """Kubernetes label selector syntax: `a=b`, `a==b`, `a!=b`, `a`, `!a`, `a in (x,y)`, `a notin (x)`."""
    labels = labels or {}
    for term in _split_terms(selector or ""):
        if m := _SET_RE.match(term):
            key, op, values = m.group(1), m.group(2), {v.strip() for v in m.group(3).split(",")}
            ok = labels.get(key) in values if op == "in" else labels.get(key) not in values
        elif m := _EQ_RE.match(term):
            key, op, value = m.groups()
            ok = (labels.get(key) == value) if op in ("=", "==") else (labels.get(key) != value)
        elif m := _EXISTS_RE.match(term):
            ok = (m.group(2) in labels) != bool(m.group(1))
        else:
            raise ValueError(f"unable to parse label selector term {term!r}")
        if not ok:
            return False
    return True


FIELD_SELECTORS = {"metadata.name": ("metadata", "name"), "metadata.namespace": ("metadata", "namespace")}


def field_selector_matches(selector: str | None, obj: dict[str, Any]) -> bool:
    """Only `metadata.name` and `metadata.namespace` (`=`, `==`, `!=`), like most resources."""
    for term in _split_terms(selector or ""):
        m = _EQ_RE.match(term)
        if not m or m.group(1) not in FIELD_SELECTORS:
            raise ValueError(f"field selector {term!r} is not supported")
        key, op, value = m.groups()
        section, field = FIELD_SELECTORS[key]
        actual = (obj.get(section) or {}).get(field) or ""
        if (actual == value) != (op in ("=", "==")):
            return False
    return True
