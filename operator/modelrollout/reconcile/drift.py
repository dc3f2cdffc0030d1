"""Is a child as we want it? (pure) — skips server-side applies that would change nothing."""

from __future__ import annotations

from typing import Any

from modelrollout.api.base import parse_quantity


def _same_scalar(want: Any, have: Any) -> bool:
    if want == have:
        return True
    if isinstance(want, str | int) and isinstance(have, str | int) and not isinstance(want, bool):
        try:  # the API server canonicalises quantities ("1000m" -> "1")
            return parse_quantity(want) == parse_quantity(have)
        except ValueError:
            return False
    return False


def is_subset(want: Any, have: Any) -> bool:
    """True when every field we set is present with the same value in what the server has.

    Fields the server added (defaults, status, managedFields) do not count as drift."""
    if isinstance(want, dict):
        return isinstance(have, dict) and all(k in have and is_subset(v, have[k]) for k, v in want.items())
    if isinstance(want, list):
        return (
            isinstance(have, list)
            and len(want) == len(have)
            and all(is_subset(w, h) for w, h in zip(want, have, strict=True))
        )
    return _same_scalar(want, have)


def needs_apply(desired: dict[str, Any], observed: dict[str, Any] | None) -> bool:
    return observed is None or not is_subset(desired, observed)


def owns_field(obj: dict[str, Any] | None, manager: str, path: tuple[str, ...]) -> bool:
    """Whether `manager` applied (server-side apply) the field at `path` of `obj`."""
    for entry in (obj or {}).get("metadata", {}).get("managedFields", []) or []:
        if entry.get("manager") != manager or entry.get("operation") != "Apply":
            continue
        node = entry.get("fieldsV1") or {}
        for key in path:
            node = node.get(f"f:{key}") if isinstance(node, dict) else None
            if node is None:
                break
        else:
            return True
    return False
