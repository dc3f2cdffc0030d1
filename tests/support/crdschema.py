"""Validate objects against the generated CRD the way the API server does, as far as can be
done without one: structural defaulting, OpenAPI value validation, strict unknown-field
rejection (kubectl's default `--validate=strict`), and the CEL `x-kubernetes-validations`
rules evaluated with cel-python."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import celpy
import jsonschema
import yaml

ROOT = Path(__file__).resolve().parents[2]
CRD_PATH = ROOT / "crds" / "modelrollout.io_modeldeployments.yaml"
TEMPLATE_CRD_PATH = ROOT / "crds" / "modelrollout.io_modelanalysistemplates.yaml"
CLUSTER_TEMPLATE_CRD_PATH = ROOT / "crds" / "modelrollout.io_clustermodelanalysistemplates.yaml"
CRD_PATHS = {
    "ModelDeployment": CRD_PATH,
    "ModelAnalysisTemplate": TEMPLATE_CRD_PATH,
    "ClusterModelAnalysisTemplate": CLUSTER_TEMPLATE_CRD_PATH,
}


def load_schema(path: Path = CRD_PATH) -> dict[str, Any]:
    crd = yaml.safe_load(path.read_text())
    return crd["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def apply_defaults(value: Any, schema: dict[str, Any]) -> Any:
    """Structural defaulting: missing fields with a default get it, recursively."""
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name not in value and "default" in sub:
                value[name] = copy.deepcopy(sub["default"])
            if name in value:
                value[name] = apply_defaults(value[name], sub)
    elif isinstance(value, dict) and isinstance(schema.get("additionalProperties"), dict):
        for key in value:
            value[key] = apply_defaults(value[key], schema["additionalProperties"])
    elif isinstance(value, list) and "items" in schema:
        return [apply_defaults(v, schema["items"]) for v in value]
    return value


def _strict(schema: Any) -> Any:
    """Unknown fields are errors (as with kubectl apply's strict field validation)."""
    if isinstance(schema, list):
        return [_strict(s) for s in schema]
    if not isinstance(schema, dict):
        return schema
    out = {k: (v if k == "properties" else _strict(v)) for k, v in schema.items()}
    if "properties" in out:  # metadata is ObjectMeta: the API server checks it, never the schema
        out["properties"] = {k: v if k == "metadata" else _strict(v) for k, v in out["properties"].items()}
    if (
        "properties" in out
        and "additionalProperties" not in out
        and not out.get("x-kubernetes-preserve-unknown-fields")
    ):
        out["additionalProperties"] = False
    return out


def _list_map_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    """`x-kubernetes-list-type: map`: items are unique by their keys (the API server answers
    `Duplicate value`)."""
    errors: list[str] = []
    if isinstance(value, list) and schema.get("x-kubernetes-list-type") == "map":
        keys = schema.get("x-kubernetes-list-map-keys", [])
        seen: set[tuple] = set()
        for i, item in enumerate(value):
            key = tuple(item.get(k) for k in keys) if isinstance(item, dict) else (item,)
            if key in seen:
                errors.append(f"{path}[{i}]: Duplicate value: {dict(zip(keys, key, strict=True))}")
            seen.add(key)
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name in value:
                errors += _list_map_errors(value[name], sub, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _list_map_errors(item, schema["items"], f"{path}[{i}]")
    return errors


def _cel_errors(value: Any, schema: dict[str, Any], path: str) -> list[str]:
    errors: list[str] = []
    for rule in schema.get("x-kubernetes-validations", []):
        env = celpy.Environment()
        program = env.program(env.compile(rule["rule"]))
        message = rule.get("message", rule["rule"])
        try:
            result = program.evaluate({"self": celpy.json_to_cel(value)})
        except celpy.CELEvalError as exc:  # the API server rejects on an evaluation error too
            result = exc
        if isinstance(result, celpy.CELEvalError):
            errors.append(f"{path}: {message} (error evaluating the rule: {result.args[0]})")
        elif not bool(result):
            errors.append(f"{path}: {message}")
    if isinstance(value, dict) and "properties" in schema:
        for name, sub in schema["properties"].items():
            if name in value and name != "metadata":
                errors += _cel_errors(value[name], sub, f"{path}.{name}")
    elif isinstance(value, list) and "items" in schema:
        for i, item in enumerate(value):
            errors += _cel_errors(item, schema["items"], f"{path}[{i}]")
    return errors


def validate(obj: dict[str, Any], schema: dict[str, Any] | None = None) -> tuple[dict[str, Any], list[str]]:
    """(defaulted object, errors) — errors empty when the API server would accept it."""
    schema = schema or load_schema()
    obj = apply_defaults(copy.deepcopy(obj), schema)
    validator = jsonschema.Draft4Validator(_strict(schema))  # OpenAPI v3.0 is draft-4 based
    errors = [
        f"{'.'.join(str(p) for p in e.absolute_path) or '<root>'}: {e.message}"
        for e in validator.iter_errors(obj)
    ]
    errors += _list_map_errors(obj, schema, "")
    if not errors:  # the API server runs CEL only on schema-valid objects
        errors = _cel_errors(obj, schema, "")
    return obj, errors


def analysis_template(
    spec: dict[str, Any], *, name: str = "slo", kind: str = "ModelAnalysisTemplate"
) -> dict[str, Any]:
    """A ModelAnalysisTemplate (namespace default) or a ClusterModelAnalysisTemplate."""
    metadata = {"name": name} | ({"namespace": "default"} if kind == "ModelAnalysisTemplate" else {})
    return {"apiVersion": "modelrollout.io/v1alpha1", "kind": kind, "metadata": metadata, "spec": spec}


def validate_template(obj: dict[str, Any]) -> tuple[dict[str, Any], list[str]]:
    return validate(obj, load_schema(CRD_PATHS[obj["kind"]]))


def model_deployment(spec: dict[str, Any], name: str = "iris") -> dict[str, Any]:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": "default"},
        "spec": spec,
    }


def cel_errors_on_defaults(schema: dict[str, Any]) -> list[str]:
    """What the API server checks when the CRD is created: every `default` is validated against
    its own node, CEL rules included, *as written* (a `default: {}` is not defaulted further
    first). An error here means `kubectl apply -f crds/` is refused."""
    errors: list[str] = []

    def walk(node: dict[str, Any], path: str) -> None:
        if "default" in node:
            try:
                errors.extend(_cel_errors(node["default"], node, f"{path} (default)"))
            except Exception as exc:  # noqa: BLE001 - a rule that cannot evaluate is refused too
                errors.append(f"{path} (default): {type(exc).__name__}: {exc}")
        for name, sub in node.get("properties", {}).items():
            walk(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                walk(node[key], f"{path}.{key}")

    walk(schema, "")
    return errors
