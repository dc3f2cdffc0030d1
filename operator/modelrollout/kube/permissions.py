"""What the operator may do in the API, in one list: the chart's RBAC is generated from it
(`make crds`), a unit test checks the committed chart against it, and the cluster tier runs
the operator under the chart's service account and asks `kubectl auth can-i` for each rule.

Least privilege: only the verbs the code uses. Server-side apply is a `patch` that creates a
missing object, which the API server also authorises as `create`.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout.kube import kinds as K


@dataclass(frozen=True)
class Rule:
    group: str
    resources: tuple[str, ...]
    verbs: tuple[str, ...]
    why: str
    cluster: bool = False  # needed cluster-wide even when the operator watches some namespaces
    own_namespace: bool = False  # needed in the operator's own namespace (a Role there)


def _group(kind: K.Kind) -> str:
    return kind.api_version.rpartition("/")[0]


OWNED = ("get", "create", "patch", "delete")  # observe, server-side apply, clean up

RULES: tuple[Rule, ...] = (
    Rule(
        _group(K.MODEL_DEPLOYMENT),
        (K.MODEL_DEPLOYMENT.plural,),
        ("get", "list", "watch", "patch"),
        "kopf watches ModelDeployments and patches their annotations and finalizer",
    ),
    Rule(
        _group(K.MODEL_DEPLOYMENT),
        (f"{K.MODEL_DEPLOYMENT.plural}/status",),
        ("patch",),
        "status is written through the status subresource only",
    ),
    Rule(_group(K.DEPLOYMENT), (K.DEPLOYMENT.plural,), OWNED, "the stable and canary tracks"),
    Rule(_group(K.SERVICE), (K.SERVICE.plural,), OWNED, "the Service clients call, per-track Services"),
    Rule(_group(K.HPA), (K.HPA.plural,), OWNED, "the stable track's autoscaler"),
    Rule(_group(K.CRONJOB), (K.CRONJOB.plural,), OWNED, "batch runs"),
    Rule(_group(K.JOB), (K.JOB.plural,), ("list",), "batch run status"),
    Rule(_group(K.POD), (K.POD.plural,), ("list",), "the batch runner's report (termination message)"),
    Rule(_group(K.SECRET), (K.SECRET.plural,), ("get",), "Prometheus bearer tokens (authSecretRef)"),
    Rule(
        _group(K.ANALYSIS_TEMPLATE),
        (K.ANALYSIS_TEMPLATE.plural,),
        ("get",),
        "the analysis templates a ModelDeployment references",
    ),
    Rule(_group(K.POD_MONITOR), (K.POD_MONITOR.plural,), OWNED, "scraping, when prometheus-operator runs"),
    Rule(_group(K.HTTP_ROUTE), (K.HTTP_ROUTE.plural,), OWNED, "canary weights with the gatewayAPI router"),
    Rule(_group(K.EVENT), (K.EVENT.plural,), ("create",), "the operator's events"),
    Rule("", ("events",), ("create",), "kopf's events (core/v1)"),
    Rule("", ("namespaces",), ("list", "watch"), "kopf, cluster-wide: which namespaces exist", cluster=True),
    Rule(
        _group(K.CLUSTER_ANALYSIS_TEMPLATE),
        (K.CLUSTER_ANALYSIS_TEMPLATE.plural,),
        ("get",),
        "the cluster-scoped analysis templates a ModelDeployment references",
        cluster=True,
    ),
    Rule(
        _group(K.SECRET),
        (K.SECRET.plural,),
        ("get",),
        "ClusterModelAnalysisTemplate tokens, read from the operator's namespace by default",
        own_namespace=True,
    ),
    Rule(
        "apiextensions.k8s.io",
        ("customresourcedefinitions",),
        ("list", "watch"),
        "kopf notices the CRD being (re)installed",
        cluster=True,
    ),
)


def rules_yaml(rules: tuple[Rule, ...], indent: int = 2) -> str:
    """The rules as a YAML list (one line per field, a comment saying why)."""
    pad = " " * indent
    lines = []
    for rule in rules:
        lines.append(f"{pad}# {rule.why}")
        lines.append(f'{pad}- apiGroups: ["{rule.group}"]')
        lines.append(f"{pad}  resources: [{', '.join(rule.resources)}]")
        lines.append(f"{pad}  verbs: [{', '.join(rule.verbs)}]")
    return "\n".join(lines)


def chart_rbac_template() -> str:
    """charts/modelrollout/templates/rbac.yaml: a ClusterRole for what is cluster-wide by
    nature; the rest in a ClusterRole (all namespaces) or one Role per watched namespace; what
    is needed in the operator's own namespace in a Role there."""
    cluster = tuple(r for r in RULES if r.cluster)
    own = tuple(r for r in RULES if r.own_namespace)
    namespaced = tuple(r for r in RULES if not r.cluster and not r.own_namespace)
    parts = [
        HEADER + _role("ClusterRole", "-cluster", rules_yaml(cluster)),
        _binding("ClusterRoleBinding", "ClusterRole", "-cluster"),
        _role("Role", "-own", rules_yaml(own), namespace="{{ .Release.Namespace }}"),
        _binding("RoleBinding", "Role", "-own", namespace="{{ .Release.Namespace }}"),
        _role("ClusterRole", "", rules_yaml(namespaced)),
    ]
    per_namespace = _binding("RoleBinding", "ClusterRole", "", namespace="{{ . }}", scope="$")
    everywhere = _binding("ClusterRoleBinding", "ClusterRole", "")
    return (
        "\n---\n".join(parts)
        + "\n{{- if .Values.watchNamespaces }}\n{{- range .Values.watchNamespaces }}\n---\n"
        + per_namespace
        + "\n{{- end }}\n{{- else }}\n---\n"
        + everywhere
        + "\n{{- end }}\n"
    )


HEADER = (
    "# Generated by `make crds` from operator/modelrollout/kube/permissions.py; do not edit by hand.\n"
    "# Least privilege: only the verbs the operator's code uses.\n"
)


def _meta(suffix: str, *, namespace: str | None, scope: str) -> str:
    lines = [
        "metadata:",
        f'  name: {{{{ include "modelrollout.fullname" {scope} }}}}{suffix}',
        *([f"  namespace: {namespace}"] if namespace else []),
        f'  labels: {{{{- include "modelrollout.labels" {scope} | nindent 4 }}}}',
    ]
    return "\n".join(lines)


def _role(kind: str, suffix: str, rules: str, *, namespace: str | None = None) -> str:
    return f"apiVersion: rbac.authorization.k8s.io/v1\nkind: {kind}\n{_meta(suffix, namespace=namespace, scope='.')}\nrules:\n{rules}"


def _binding(
    kind: str, role_kind: str, suffix: str, *, namespace: str | None = None, scope: str = "."
) -> str:
    """A binding of the operator's service account (in the release's namespace) to a role."""
    release = "$.Release.Namespace" if scope == "$" else ".Release.Namespace"
    return "\n".join(
        [
            "apiVersion: rbac.authorization.k8s.io/v1",
            f"kind: {kind}",
            _meta(suffix, namespace=namespace, scope=scope),
            "roleRef:",
            "  apiGroup: rbac.authorization.k8s.io",
            f"  kind: {role_kind}",
            f'  name: {{{{ include "modelrollout.fullname" {scope} }}}}{suffix}',
            "subjects:",
            "  - kind: ServiceAccount",
            f'    name: {{{{ include "modelrollout.serviceAccount" {scope} }}}}',
            f"    namespace: {{{{ {release} }}}}",
        ]
    )
