"""The CRD is generated from the pydantic models, committed, and structural."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
import yaml

from modelrollout.api.crd import CRD_FILE, crd, crd_yaml
from tests.support.crdschema import CRD_PATH, ROOT

ALLOWED_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]


def test_committed_crd_matches_the_models():
    assert CRD_PATH.name == CRD_FILE
    assert CRD_PATH.read_text() == crd_yaml(), "crds/ is stale: run `make crds`"


def test_chart_ships_the_same_crd():
    chart_copy = ROOT / "charts" / "modelrollout" / "crds" / CRD_FILE
    assert chart_copy.read_text() == CRD_PATH.read_text(), "chart CRD is stale: run `make crds`"


def _nodes(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                yield from _nodes(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from _nodes(node[key], f"{path}.{key}")


def _schema() -> dict[str, Any]:
    return crd()["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


def test_schema_is_structural():
    for path, node in _nodes(_schema()):
        assert "$ref" not in node and "$defs" not in node, path
        assert node.get("additionalProperties") is not False, path
        assert not ("properties" in node and "additionalProperties" in node), path
        assert "patternProperties" not in node and "propertyNames" not in node, path
        assert "nullable" not in node and "title" not in node, path
        for flag in ("exclusiveMinimum", "exclusiveMaximum"):  # booleans in apiextensions/v1
            assert isinstance(node.get(flag, False), bool), path
        if node.get("x-kubernetes-int-or-string"):
            assert node["anyOf"] == ALLOWED_INT_OR_STRING, path
            assert "type" not in node, path
        else:
            assert "anyOf" not in node and "oneOf" not in node, path
            assert node.get("type") in {"object", "array", "string", "integer", "number", "boolean"}, path


def test_defaults_are_valid_for_their_node():
    import jsonschema

    for _path, node in _nodes(_schema()):
        if "default" in node:
            jsonschema.Draft4Validator({k: v for k, v in node.items() if k != "default"}).validate(
                node["default"]
            )


def test_cel_rules_compile_and_have_messages():
    count = 0
    env = celpy.Environment()
    for path, node in _nodes(_schema()):
        for rule in node.get("x-kubernetes-validations", []):
            env.compile(rule["rule"])
            assert rule["message"], path
            count += 1
    assert count >= 8


def test_printer_columns_and_names():
    spec = crd()["spec"]
    version = spec["versions"][0]
    assert spec["names"]["shortNames"] == ["mdep"]
    assert spec["scope"] == "Namespaced"
    assert version["subresources"] == {"status": {}}
    columns = {c["name"]: c["jsonPath"] for c in version["additionalPrinterColumns"]}
    assert columns == {
        "Mode": ".spec.mode",
        "Phase": ".status.phase",
        "Stable": ".status.stableVersion",
        "Canary": ".status.canaryVersion",
        "Weight": ".status.canaryWeight",
        "Age": ".metadata.creationTimestamp",
    }


@pytest.mark.parametrize(
    "path", sorted((ROOT / "bentos").rglob("*modeldeployment*.yaml")), ids=lambda p: p.name
)
def test_sample_modeldeployments_are_valid(path):
    from tests.support.crdschema import validate

    for doc in yaml.safe_load_all(path.read_text()):
        _, errors = validate(doc)
        assert errors == []


def test_every_cel_rule_holds_on_every_default_as_the_api_server_checks():
    from tests.support.crdschema import cel_errors_on_defaults

    assert cel_errors_on_defaults(_schema()) == []


def test_the_default_checker_catches_a_rule_reading_an_undefaulted_field():
    from tests.support.crdschema import cel_errors_on_defaults

    schema = {
        "type": "object",
        "properties": {
            "store": {
                "type": "object",
                "default": {},
                "properties": {"type": {"type": "string", "default": "sqlite"}},
                "x-kubernetes-validations": [{"rule": "self.type != 'postgres'", "message": "m"}],
            }
        },
    }
    assert len(cel_errors_on_defaults(schema)) == 1
