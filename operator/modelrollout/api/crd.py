"""Generate the ModelDeployment CRD from the pydantic models.

Pydantic emits JSON Schema (with $refs, `anyOf: [X, null]` for optionals, titles, ...); the
API server wants a *structural* OpenAPI v3 schema: every node typed, refs inlined, no
`additionalProperties: false` (pruning does that), no `propertyNames`. `to_structural`
bridges the two, so the models stay the single source of truth.
"""

from __future__ import annotations

from typing import Any

from modelrollout import GROUP, KIND, PLURAL, VERSION
from modelrollout.api import yamlio
from modelrollout.api.resource import MAX_NAME_LENGTH, NAME_PATTERN
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import ModelDeploymentStatus

SINGULAR = KIND.lower()
SHORT_NAMES = ["mdep"]
CRD_NAME = f"{PLURAL}.{GROUP}"
CRD_FILE = f"{GROUP}_{PLURAL}.yaml"

# Keys pydantic emits that have no place (or no meaning) in a CRD schema.
_DROPPED_KEYS = {"title", "propertyNames", "$defs", "examples"}

PRINTER_COLUMNS = [
    {"name": "Mode", "type": "string", "jsonPath": ".spec.mode"},
    {"name": "Phase", "type": "string", "jsonPath": ".status.phase"},
    {"name": "Stable", "type": "string", "jsonPath": ".status.stableVersion"},
    {"name": "Canary", "type": "string", "jsonPath": ".status.canaryVersion"},
    {
        "name": "Weight",
        "type": "integer",
        "jsonPath": ".status.canaryWeight",
        "description": "Percent of traffic on the canary track.",
    },
    {"name": "Age", "type": "date", "jsonPath": ".metadata.creationTimestamp"},
]


def _resolve(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    ref = node.get("$ref")
    if ref is None:
        return node
    target = defs[ref.rsplit("/", 1)[-1]]
    merged = {**target, **{k: v for k, v in node.items() if k != "$ref"}}
    return _resolve(merged, defs)


def _strip_null(node: dict[str, Any], defs: dict[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` (pydantic's Optional) becomes X; a None default is dropped."""
    options = node.get("anyOf")
    if options and any(o.get("type") == "null" for o in options):
        rest = [o for o in options if o.get("type") != "null"]
        outer = {k: v for k, v in node.items() if k != "anyOf"}
        node = {**_resolve(rest[0], defs), **outer} if len(rest) == 1 else {**outer, "anyOf": rest}
    if "default" in node and node["default"] is None:
        node = {k: v for k, v in node.items() if k != "default"}
    return node


def to_structural(node: Any, defs: dict[str, Any]) -> Any:
    """Convert one pydantic JSON Schema node (recursively) into a structural schema node."""
    if isinstance(node, list):
        return [to_structural(item, defs) for item in node]
    if not isinstance(node, dict):
        return node
    node = _strip_null(_resolve(node, defs), defs)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED_KEYS or (key == "additionalProperties" and value is False):
            continue
        if key == "const":
            out["enum"] = [value]
        elif key in ("exclusiveMinimum", "exclusiveMaximum") and not isinstance(value, bool):
            # JSON Schema 2020 numbers; OpenAPI v3 (and so apiextensions/v1) wants a bound plus a flag
            out["minimum" if key == "exclusiveMinimum" else "maximum"] = value
            out[key] = True
        elif key == "properties":
            out[key] = {name: to_structural(sub, defs) for name, sub in value.items()}
        elif key in ("items", "additionalProperties", "anyOf"):
            out[key] = to_structural(value, defs)
        elif key == "patternProperties":
            # Structural schemas have no patternProperties: the value schema stays, the key
            # pattern is enforced by the operator's parse (pydantic) instead.
            (value_schema,) = value.values()
            out["additionalProperties"] = to_structural(value_schema, defs)
        else:
            out[key] = value
    if "properties" in out:
        out.setdefault("type", "object")
    if "default" in out:
        # The whole default, as the model would fill it in. Not `{}`: the API server validates
        # every default against its node's CEL rules *as written* when the CRD is created, so
        # a rule reading `self.type` fails on a bare `{}` (and the CRD is refused).
        out["default"] = _without_nulls(out["default"])
    if "enum" in out and "type" not in out:
        out["type"] = "string"
    return out


def _without_nulls(value: Any) -> Any:
    """A default as it appears on the wire: unset optionals left out (pydantic writes null)."""
    if isinstance(value, dict):
        return {k: _without_nulls(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_without_nulls(v) for v in value]
    return value


def model_schema(model: type) -> dict[str, Any]:
    raw = model.model_json_schema(by_alias=True, mode="validation")
    return to_structural(raw, raw.get("$defs", {}))


def openapi_schema() -> dict[str, Any]:
    spec = model_schema(ModelDeploymentSpec)
    status = model_schema(ModelDeploymentStatus)
    return {
        "type": "object",
        "description": "A model served on Kubernetes (online, batch or hybrid) and rolled out by canary.",
        "required": ["spec"],
        # Children are named after the object (<name>-stable, <name>-batch, Service <name>): it must
        # be a name every child kind accepts (Services want DNS-1035 labels, CronJobs <= 52).
        "x-kubernetes-validations": [
            {
                "rule": f"size(self.metadata.name) <= {MAX_NAME_LENGTH}",
                "message": f"metadata.name must be at most {MAX_NAME_LENGTH} characters",
            },
            {
                "rule": f"self.metadata.name.matches('{NAME_PATTERN}')",
                "message": "metadata.name must be a DNS-1035 label (lowercase letters, digits and '-', "
                "starting with a letter): Services are named after it",
            },
        ],
        "properties": {
            "apiVersion": {"type": "string"},
            "kind": {"type": "string"},
            "metadata": {"type": "object"},
            "spec": spec,
            "status": status,
        },
    }


def crd() -> dict[str, Any]:
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": CRD_NAME, "labels": {"app.kubernetes.io/part-of": "modelrollout"}},
        "spec": {
            "group": GROUP,
            "scope": "Namespaced",
            "names": {
                "kind": KIND,
                "listKind": f"{KIND}List",
                "plural": PLURAL,
                "singular": SINGULAR,
                "shortNames": SHORT_NAMES,
                "categories": ["modelrollout"],
            },
            "versions": [
                {
                    "name": VERSION,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}},
                    "additionalPrinterColumns": PRINTER_COLUMNS,
                    "schema": {"openAPIV3Schema": openapi_schema()},
                }
            ],
        },
    }


def crd_yaml() -> str:
    header = "# Generated by `make crds` from operator/modelrollout/api; do not edit by hand.\n"
    return header + yamlio.dump(crd())
