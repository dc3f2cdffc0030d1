"""The chart on a real API server: rendered by helm, applied server-side; its service account
can do exactly what the code's rule list says (and not more), and the operator runs under that
service account's own token, so the API server enforces the chart's RBAC for real."""

from __future__ import annotations

import json
import subprocess
import uuid

import pytest
import yaml

from modelrollout.kube.permissions import RULES
from tests.cluster.conftest import LOG_DIR, ROOT, apply, events_for, get, kubectl, run_kubectl, wait_until
from tests.cluster.test_operator import model_deployment, ready, status

HELM = ROOT / ".tools" / "helm"

# What the operator must never be able to do (least privilege), in a watched namespace.
DENIED = [
    ("list", "secrets"),
    ("watch", "secrets"),
    ("get", "configmaps"),
    ("create", "pods"),
    ("delete", "modeldeployments.modelrollout.io"),
    ("update", "deployments.apps"),
    ("create", "rolebindings.rbac.authorization.k8s.io"),
    ("patch", "nodes"),
    ("impersonate", "serviceaccounts"),
]


class Release:
    def __init__(self, name: str, namespace: str, docs: list[dict]) -> None:
        self.name, self.namespace, self.docs = name, namespace, docs
        self.service_account = f"{name}-operator"

    @property
    def user(self) -> str:
        return f"system:serviceaccount:{self.namespace}:{self.service_account}"

    def can(self, verb: str, resource: str, namespace: str) -> bool:
        """A SubjectAccessReview (what `kubectl auth can-i --as` asks, without needing the
        resource to be served: PodMonitor and HTTPRoute may not be installed)."""
        name, _, group = resource.partition(".")
        name, _, subresource = name.partition("/")
        review = {
            "apiVersion": "authorization.k8s.io/v1",
            "kind": "SubjectAccessReview",
            "spec": {
                "user": self.user,
                "groups": [
                    "system:serviceaccounts",
                    f"system:serviceaccounts:{self.namespace}",
                    "system:authenticated",
                ],
                "resourceAttributes": {
                    "namespace": namespace,
                    "verb": verb,
                    "group": group,
                    "resource": name,
                    "subresource": subresource,
                },
            },
        }
        answer = json.loads(kubectl("create", "-o", "json", "-f", "-", input=json.dumps(review)))
        return bool(answer["status"].get("allowed"))

    def kubeconfig(self) -> str:
        """A kubeconfig holding only this service account's token (no admin credentials)."""
        token = kubectl(
            "create", "token", self.service_account, "-n", self.namespace, "--duration=1h"
        ).strip()
        view = json.loads(kubectl("config", "view", "--raw", "--minify", "-o", "json"))
        cluster = view["clusters"][0]["cluster"]
        config = {
            "apiVersion": "v1",
            "kind": "Config",
            "clusters": [{"name": "c", "cluster": cluster}],
            "users": [{"name": "sa", "user": {"token": token}}],
            "contexts": [{"name": "sa", "context": {"cluster": "c", "user": "sa"}}],
            "current-context": "sa",
        }
        path = LOG_DIR / f"kubeconfig-{self.name}"
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        path.write_text(yaml.safe_dump(config))
        path.chmod(0o600)
        return str(path)


def install(namespace: str, *values: str) -> Release:
    if not HELM.exists():
        pytest.skip("no helm at .tools/helm (`make test-cluster` fetches it)")
    name = f"mr{uuid.uuid4().hex[:5]}"
    rendered = subprocess.run(
        [
            str(HELM),
            "template",
            name,
            str(ROOT / "charts" / "modelrollout"),
            "--namespace",
            namespace,
            *values,
        ],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    docs = [d for d in yaml.safe_load_all(rendered) if d]
    # every object, the operator's Deployment included, as the API server validates it (the
    # tests below run the operator as a local process under this release's service account)
    apply("\n---\n".join(yaml.safe_dump(d) for d in docs))
    return Release(name, namespace, docs)


@pytest.fixture
def release_cleanup():
    releases: list[Release] = []
    yield releases
    for release in releases:
        for doc in release.docs:
            if doc["kind"] in ("ClusterRole", "ClusterRoleBinding"):
                run_kubectl("delete", doc["kind"].lower(), doc["metadata"]["name"], "--ignore-not-found")


def rbac_denials(log: str) -> list[str]:
    """Lines where the API server's authorizer said no (`... is forbidden: User "..." cannot ...`);
    a 403 for a terminating namespace (another test's) is not one."""
    return [line for line in log.splitlines() if "forbidden: User" in line]


def rule_checks():
    for rule in RULES:
        for resource in rule.resources:
            for verb in rule.verbs:
                name = f"{resource}.{rule.group}"
                yield verb, name, rule.cluster, rule.own_namespace


def test_service_account_can_do_what_the_code_needs_and_no_more(namespace, release_cleanup):
    release = install(namespace)
    release_cleanup.append(release)
    missing = [(v, r) for v, r, _, _ in rule_checks() if not release.can(v, r, namespace)]
    assert missing == []
    granted = [(v, r) for v, r in DENIED if release.can(v, r, namespace)]
    assert granted == []


def test_namespaced_chart_grants_nothing_outside_its_namespaces(namespace_factory, release_cleanup):
    home, watched, other = namespace_factory(), namespace_factory(), namespace_factory()
    release = install(home, "--set", f"watchNamespaces={{{watched}}}")
    release_cleanup.append(release)
    for verb, resource, cluster, own in rule_checks():
        if own:  # needed in the operator's own namespace (a Role there)
            assert release.can(verb, resource, home), (verb, resource)
        else:
            assert release.can(verb, resource, watched), (verb, resource)
        if not cluster:
            assert not release.can(verb, resource, other), (verb, resource)


def test_the_operator_can_read_both_template_kinds_and_not_write_them(namespace, release_cleanup):
    release = install(namespace)
    release_cleanup.append(release)
    for resource in (
        "modelanalysistemplates.modelrollout.io",
        "clustermodelanalysistemplates.modelrollout.io",
    ):
        assert release.can("get", resource, namespace), resource
        for verb in ("list", "watch", "create", "patch", "delete"):
            assert not release.can(verb, resource, namespace), (verb, resource)


def test_operator_under_the_charts_service_account(namespace, release_cleanup, operator_factory, fake_node):
    """Everything the operator does (watch, apply children, status, events, read an auth Secret)
    passes the API server's RBAC with the chart's rules alone."""
    release = install(namespace)
    release_cleanup.append(release)
    operator = operator_factory(kubeconfig=release.kubeconfig(), label="chart-sa")
    kubectl("create", "secret", "generic", "prom", "-n", namespace, "--from-literal=token=s3cret")
    analysis = {
        "prometheus": {"address": "http://127.0.0.1:9", "authSecretRef": {"name": "prom", "key": "token"}},
        "interval": "2s",
        "errorLimit": 100,
        "metrics": [{"name": "errors", "template": "error-rate", "max": 0.01}],
    }
    rollout = {"steps": [{"setWeight": 10, "pause": "1h"}], "analysis": analysis, "progressDeadline": "1h"}
    apply(model_deployment(namespace, rollout=rollout))
    wait_until(lambda: ready(namespace), timeout=90, what="phase Ready under the chart's RBAC")
    assert "PhaseReady" in {e["reason"] for e in events_for(namespace, "iris")}

    v2 = {"name": "iris", "version": "2.0.0", "image": "example.com/iris:2.0.0"}
    apply(model_deployment(namespace, model=v2, rollout=rollout))
    checks = wait_until(
        lambda: (status(namespace).get("rollout") or {}).get("checks"),
        timeout=90,
        what="an analysis under the chart's RBAC",
    )
    # the token Secret was readable: the error is Prometheus being unreachable, not a 403
    assert checks[0]["verdict"] == "error"
    assert "unreachable" in checks[0]["message"] and "Secret" not in checks[0]["message"], checks
    assert rbac_denials(operator.log()) == []
    kubectl("delete", "mdep", "iris", "-n", namespace, "--wait=true", "--timeout=60s")


def test_operator_under_a_namespaced_release(namespace_factory, release_cleanup, operator_factory, fake_node):
    home, watched = namespace_factory(), namespace_factory()
    release = install(home, "--set", f"watchNamespaces={{{watched}}}")
    release_cleanup.append(release)
    operator = operator_factory("-n", watched, kubeconfig=release.kubeconfig(), label="chart-sa-namespaced")
    apply(model_deployment(watched))
    wait_until(lambda: ready(watched), timeout=90, what="phase Ready under a namespaced release")
    assert rbac_denials(operator.log()) == []
    kubectl("delete", "mdep", "iris", "-n", watched, "--wait=true", "--timeout=60s")
    assert get("mdep", "iris", watched) is None


def test_operator_reads_both_template_kinds_and_a_cluster_templates_token_under_the_charts_rbac(
    namespace_factory, release_cleanup, operator_factory, fake_node
):
    """A namespaced release (the strictest RBAC): the ModelDeployment's namespace is watched, the
    cluster template's token Secret lives in the release's own namespace (the Role there)."""
    home, watched = namespace_factory(), namespace_factory()
    release = install(home, "--set", f"watchNamespaces={{{watched}}}")
    release_cleanup.append(release)
    operator = operator_factory(
        "-n",
        watched,
        kubeconfig=release.kubeconfig(),
        label="chart-sa-templates",
        MODELROLLOUT_NAMESPACE=home,
    )
    kubectl("create", "secret", "generic", "central", "-n", home, "--from-literal=token=s3cret")
    cluster_name = f"org-{uuid.uuid4().hex[:5]}"
    errors = {"name": "errors", "template": "error-rate", "max": 0.01}
    apply(
        {
            "apiVersion": "modelrollout.io/v1alpha1",
            "kind": "ClusterModelAnalysisTemplate",
            "metadata": {"name": cluster_name},
            "spec": {
                "prometheus": {"address": "http://127.0.0.1:9", "authSecretRef": {"name": "central"}},
                "metrics": [errors],
            },
        }
    )
    apply(
        {
            "apiVersion": "modelrollout.io/v1alpha1",
            "kind": "ModelAnalysisTemplate",
            "metadata": {"name": "latency", "namespace": watched},
            "spec": {"metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}]},
        }
    )
    try:
        analysis = {
            "interval": "2s",
            "errorLimit": 100,
            "templates": [
                {"name": cluster_name, "kind": "ClusterModelAnalysisTemplate"},
                {"name": "latency"},
            ],
        }
        rollout = {
            "steps": [{"setWeight": 10, "pause": "1h"}],
            "analysis": analysis,
            "progressDeadline": "1h",
        }
        apply(model_deployment(watched, rollout=rollout))
        wait_until(lambda: ready(watched), timeout=90, what="phase Ready under a namespaced release")
        v2 = {"name": "iris", "version": "2.0.0", "image": "example.com/iris:2.0.0"}
        apply(model_deployment(watched, model=v2, rollout=rollout))
        checks = wait_until(
            lambda: (status(watched).get("rollout") or {}).get("checks"), timeout=90, what="an analysis"
        )
        sources = {c["metric"]: c["source"]["kind"] for c in checks}
        assert sources == {"errors": "ClusterModelAnalysisTemplate", "p99": "ModelAnalysisTemplate"}
        # the token was readable in the operator's namespace: unreachable Prometheus, not a 403
        assert all("unreachable" in c["message"] and "Secret" not in c["message"] for c in checks), checks
        assert rbac_denials(operator.log()) == []
        kubectl("delete", "mdep", "iris", "-n", watched, "--wait=true", "--timeout=60s")
    finally:
        run_kubectl("delete", "cmat", cluster_name, "--ignore-not-found")
