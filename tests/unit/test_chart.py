"""The Helm chart: RBAC generated from the code's one list, rendered by the real `helm`, and
valid Kubernetes objects in both scopes (cluster-wide and some namespaces); the CRDs rendered as
templates (so `helm upgrade` upgrades them), kept on uninstall unless told otherwise."""

from __future__ import annotations

import subprocess
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from modelrollout.api.crd import CRDS, crd
from modelrollout.kube import kinds as K
from modelrollout.kube.permissions import RULES, chart_rbac_template

ROOT = Path(__file__).resolve().parents[2]
CHART = ROOT / "charts" / "modelrollout"
HELM = ROOT / ".tools" / "helm"


def test_committed_rbac_template_is_generated_from_the_rules():
    assert (CHART / "templates" / "rbac.yaml").read_text() == chart_rbac_template(), (
        "chart RBAC is stale: run `make crds`"
    )


def test_every_kind_the_client_touches_has_a_rule():
    covered = {(r.group, res) for r in RULES for res in r.resources}
    for kind in K.BY_KIND.values():
        group = kind.api_version.rpartition("/")[0]
        assert (group, kind.plural) in covered, kind.kind


def test_no_rule_grants_wildcards_or_escalation():
    for rule in RULES:
        assert "*" not in rule.verbs and "*" not in rule.resources
        assert not {"escalate", "bind", "impersonate", "update", "deletecollection"} & set(rule.verbs)
    secrets = [r for r in RULES if "secrets" in r.resources]
    assert {r.verbs for r in secrets} == {("get",)}  # never list/watch: that would read every Secret
    assert not any(r.cluster for r in secrets)


def test_template_kinds_are_readable_and_nothing_more():
    verbs = {res: r.verbs for r in RULES for res in r.resources}
    assert verbs["modelanalysistemplates"] == ("get",)
    assert verbs["clustermodelanalysistemplates"] == ("get",)
    cluster = {res for r in RULES if r.cluster for res in r.resources}
    assert "clustermodelanalysistemplates" in cluster  # cluster-scoped: a ClusterRole binding
    assert "modelanalysistemplates" not in cluster  # namespaced: only where the operator watches


def helm_template(*args: str) -> list[dict]:
    if not HELM.exists():
        pytest.skip("no helm at .tools/helm (`make test` fetches it; see the Makefile)")
    out = subprocess.run(
        [str(HELM), "template", "mr", str(CHART), "--namespace", "ops", *args],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    return [doc for doc in yaml.safe_load_all(out) if doc]


def bindings(docs: list[dict]) -> dict[tuple[str, str | None], str]:
    """(binding kind, namespace) -> role it binds, for the operator's service account."""
    out = {}
    for doc in docs:
        if doc["kind"] in ("ClusterRoleBinding", "RoleBinding"):
            (subject,) = doc["subjects"]
            assert subject == {"kind": "ServiceAccount", "name": "mr-operator", "namespace": "ops"}
            out[(doc["kind"], doc["metadata"].get("namespace"), doc["roleRef"]["name"])] = doc["roleRef"][
                "kind"
            ]
    return out


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced"])
def test_chart_renders_valid_objects(scope):
    args = [] if scope == "cluster-wide" else ["--set", "watchNamespaces={ml,team-b}"]
    docs = helm_template(*args)
    for doc in docs:
        kubernetes_validate.validate(doc, "1.31.0", strict=True)  # raises on an invalid object
    kinds = sorted(d["kind"] for d in docs)
    assert kinds.count("Deployment") == 1 and kinds.count("ServiceAccount") == 1


def test_cluster_wide_chart_binds_both_roles_cluster_wide():
    docs = helm_template()
    assert bindings(docs) == {
        ("ClusterRoleBinding", None, "mr-operator-cluster"): "ClusterRole",
        ("ClusterRoleBinding", None, "mr-operator"): "ClusterRole",
        ("RoleBinding", "ops", "mr-operator-own"): "Role",
    }
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    assert container["args"] == ["operator", "--log-format=plain"]
    namespace_env = next(e for e in container["env"] if e["name"] == "MODELROLLOUT_NAMESPACE")
    assert namespace_env["valueFrom"] == {"fieldRef": {"fieldPath": "metadata.namespace"}}


def test_json_logs_are_a_value():
    docs = helm_template("--set", "logFormat=json")
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    assert "--log-format=json" in deployment["spec"]["template"]["spec"]["containers"][0]["args"]


def test_namespaced_chart_grants_the_namespaced_rules_only_in_those_namespaces():
    docs = helm_template("--set", "watchNamespaces={ml,team-b}")
    assert bindings(docs) == {
        ("ClusterRoleBinding", None, "mr-operator-cluster"): "ClusterRole",
        ("RoleBinding", "ml", "mr-operator"): "ClusterRole",
        ("RoleBinding", "team-b", "mr-operator"): "ClusterRole",
        ("RoleBinding", "ops", "mr-operator-own"): "Role",
    }
    (deployment,) = [d for d in docs if d["kind"] == "Deployment"]
    args = deployment["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args == ["operator", "--log-format=plain", "--namespace=ml", "--namespace=team-b"]


def test_rendered_roles_hold_exactly_the_rules_of_the_code():
    docs = helm_template()
    rendered = {
        (doc["kind"], g, res, tuple(rule["verbs"]))
        for doc in docs
        if doc["kind"] in ("ClusterRole", "Role")
        for rule in doc["rules"]
        for g in rule["apiGroups"]
        for res in rule["resources"]
    }
    expected = {
        ("Role" if r.own_namespace else "ClusterRole", r.group, res, r.verbs)
        for r in RULES
        for res in r.resources
    }
    assert rendered == expected


def crds_of(docs: list[dict]) -> dict[str, dict]:
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "CustomResourceDefinition"}


def test_chart_installs_every_crd_as_generated_and_keeps_it_on_uninstall():
    rendered = crds_of(helm_template())
    assert sorted(rendered) == sorted(kind.name for kind in CRDS)
    for kind in CRDS:
        got = rendered[kind.name]
        assert got["metadata"].pop("annotations") == {"helm.sh/resource-policy": "keep"}
        # exactly the generated CRD: `{{namespace}}` in descriptions survives Helm's templating
        assert got == crd(kind)
    descriptions = yaml.safe_dump(rendered)
    assert "{{namespace}}" in descriptions


def test_crds_can_be_left_to_helm_uninstall_or_not_installed():
    unkept = crds_of(helm_template("--set", "crds.keep=false"))
    assert len(unkept) == len(CRDS) and all("annotations" not in d["metadata"] for d in unkept.values())
    assert crds_of(helm_template("--set", "crds.install=false")) == {}


def test_helm_lint_passes():
    helm_template()  # skips without helm
    result = subprocess.run([str(HELM), "lint", str(CHART)], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stdout + result.stderr
