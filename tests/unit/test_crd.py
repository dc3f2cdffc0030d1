"""The CRDs (ModelDeployment and the two analysis templates) are generated from the pydantic
models, committed, structural, and shipped in the chart as templates."""

from __future__ import annotations

from typing import Any

import celpy
import pytest
import yaml

from modelrollout.api.crd import CRD_FILE, CRDS, chart_crd_files, crd, crd_files
from tests.support.crdschema import CRD_PATH, ROOT

ALLOWED_INT_OR_STRING = [{"type": "integer"}, {"type": "string"}]
KINDS = {kind.kind: kind for kind in CRDS}


@pytest.mark.parametrize("name", sorted(crd_files()))
def test_committed_crd_matches_the_models(name):
    assert (ROOT / "crds" / name).read_text() == crd_files()[name], "crds/ is stale: run `make crds`"


def test_no_stale_crd_is_committed():
    assert CRD_PATH.name == CRD_FILE
    assert sorted(p.name for p in (ROOT / "crds").glob("*.yaml")) == sorted(crd_files())


@pytest.mark.parametrize("name", sorted(chart_crd_files()))
def test_chart_ships_every_crd_as_a_template(name):
    chart_copy = ROOT / "charts" / "modelrollout" / "templates" / "crds" / name
    assert chart_copy.read_text() == chart_crd_files()[name], "chart CRDs are stale: run `make crds`"
    # Helm installs crds/ once and never upgrades it: the chart must not ship the CRDs there too
    assert not (ROOT / "charts" / "modelrollout" / "crds").exists()


def _nodes(node: Any, path: str = ""):
    if isinstance(node, dict):
        yield path, node
        for key in ("properties",):
            for name, sub in node.get(key, {}).items():
                yield from _nodes(sub, f"{path}.{name}")
        for key in ("items", "additionalProperties"):
            if isinstance(node.get(key), dict):
                yield from _nodes(node[key], f"{path}.{key}")


def _schema(kind: str = "ModelDeployment") -> dict[str, Any]:
    return crd(KINDS[kind])["spec"]["versions"][0]["schema"]["openAPIV3Schema"]


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_schema_is_structural(kind):
    for path, node in _nodes(_schema(kind)):
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


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_defaults_are_valid_for_their_node(kind):
    import jsonschema

    for _path, node in _nodes(_schema(kind)):
        if "default" in node:
            jsonschema.Draft4Validator({k: v for k, v in node.items() if k != "default"}).validate(
                node["default"]
            )


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_cel_rules_compile_and_have_messages(kind):
    count = 0
    env = celpy.Environment()
    for path, node in _nodes(_schema(kind)):
        for rule in node.get("x-kubernetes-validations", []):
            env.compile(rule["rule"])
            assert rule["message"], path
            count += 1
    assert count >= 8


def test_template_crds_names_and_scopes():
    namespaced = crd(KINDS["ModelAnalysisTemplate"])["spec"]
    cluster = crd(KINDS["ClusterModelAnalysisTemplate"])["spec"]
    assert namespaced["scope"] == "Namespaced" and cluster["scope"] == "Cluster"
    assert namespaced["names"]["shortNames"] == ["mat"] and cluster["names"]["shortNames"] == ["cmat"]
    for spec in (namespaced, cluster):
        assert spec["group"] == "modelrollout.io" and "subresources" not in spec["versions"][0]
    # only the cluster-scoped template's authSecretRef may name a namespace
    auth = "prometheus.authSecretRef"
    assert "namespace" in _fields(_schema("ClusterModelAnalysisTemplate"), f"spec.{auth}")
    assert "namespace" not in _fields(_schema("ModelAnalysisTemplate"), f"spec.{auth}")
    assert "namespace" not in _fields(_schema(), f"spec.rollout.analysis.{auth}")


def _fields(schema: dict[str, Any], dotted: str) -> set[str]:
    node = schema
    for part in dotted.split("."):
        node = node["properties"][part]
    return set(node["properties"])


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


@pytest.mark.parametrize("kind", sorted(KINDS))
def test_every_cel_rule_holds_on_every_default_as_the_api_server_checks(kind):
    from tests.support.crdschema import cel_errors_on_defaults

    assert cel_errors_on_defaults(_schema(kind)) == []


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
