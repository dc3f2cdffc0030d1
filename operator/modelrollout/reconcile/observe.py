"""Observation: the reads one reconcile makes, driven by the table of children."""

from __future__ import annotations

import base64
from typing import Any

from modelrollout.api import conditions as C
from modelrollout.api.analysis_template import CLUSTER_TEMPLATE_KIND
from modelrollout.api.checks import SecretKeySelector
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.kube import kinds as K
from modelrollout.kube.client import ApiError, KubeClient
from modelrollout.metrics.provider import ProviderError
from modelrollout.reconcile.children import to_observe
from modelrollout.reconcile.observed import Observed
from modelrollout.render import cronjob as CJ
from modelrollout.render import labels as L
from modelrollout.rollout.decision import ACTIVE, identity

OPTIONAL_KINDS = (K.POD_MONITOR, K.HTTP_ROUTE)


def observe(kube: KubeClient, md: ModelDeployment, previous: ModelDeploymentStatus) -> Observed:
    """GET the children worth looking up (see `children.to_observe`), and the batch runs."""
    served = frozenset(kind.kind for kind in OPTIONAL_KINDS if kube.served(kind))
    children = {
        child.key: kube.get(child.kind, md.namespace, child.name(md.name))
        for child in to_observe(md, previous, served)
    }
    jobs: tuple[dict[str, Any], ...] = ()
    pods: dict[str, list[dict[str, Any]]] = {}
    if md.spec.mode != "online" and children.get("cronjob") is not None:
        jobs, pods = batch_runs(kube, md)
    templates, errors = templates_of(kube, md) if templates_needed(md, previous) else (None, {})
    return Observed(
        children=children,
        served=served,
        jobs=jobs,
        job_pods=pods,
        templates=templates,
        template_errors=errors,
    )


def templates_needed(md: ModelDeployment, previous: ModelDeploymentStatus) -> bool:
    """Whether this reconcile reads the analysis templates the spec references: when the spec
    changed (a bad reference is reported at once), while a rollout runs or is about to start
    (each reconcile reads them again, so a template change is picked up at the next one), and
    while a bad reference is reported (to see it fixed). A steady object reads none: its
    templates matter at its next rollout, which reads them first."""
    analysis = md.spec.rollout.analysis
    if analysis is None or not analysis.templates:
        return False
    degraded = C.get_condition(previous.conditions, C.DEGRADED)
    if md.generation != previous.observed_generation or (
        degraded is not None and degraded.reason == C.ANALYSIS_TEMPLATE_INVALID
    ):
        return True
    r = previous.rollout
    if r is not None and (r.phase in ACTIVE or r.phase == "Baking"):  # a bake reads its provider too
        return True
    stable = f"{previous.stable_version}@{previous.stable_image}"
    return previous.stable_version is not None and identity(md.spec.model) not in (
        stable,
        previous.rejected_version,
    )


def templates_of(kube: KubeClient, md: ModelDeployment) -> tuple[dict, dict]:
    """(kind, name) -> the template (None: not found), and what could not be read."""
    found: dict[tuple[str, str], dict[str, Any] | None] = {}
    errors: dict[tuple[str, str], str] = {}
    for ref in md.spec.rollout.analysis.templates:
        cluster = ref.kind == CLUSTER_TEMPLATE_KIND
        kind = K.CLUSTER_ANALYSIS_TEMPLATE if cluster else K.ANALYSIS_TEMPLATE
        try:
            found[(ref.kind, ref.name)] = kube.get(kind, None if cluster else md.namespace, ref.name)
        except ApiError as exc:
            errors[(ref.kind, ref.name)] = str(exc)
    return found, errors


def batch_runs(kube: KubeClient, md: ModelDeployment) -> tuple[tuple[dict[str, Any], ...], dict[str, list]]:
    """The CronJob's Jobs, and the pods of the newest two (for the runner's reports)."""
    selector = L.selector_string({L.DEPLOYMENT_LABEL: md.name, L.COMPONENT_LABEL: "batch"})
    jobs = kube.list(K.JOB, md.namespace, label_selector=selector)
    newest = sorted(jobs, key=lambda j: j["metadata"].get("creationTimestamp") or "")[-2:]
    pods = {
        job["metadata"]["name"]: kube.list(
            K.POD, md.namespace, label_selector=f"{CJ.JOB_NAME_LABEL}={job['metadata']['name']}"
        )
        for job in newest
    }
    return tuple(jobs), pods


def secret_value(kube: KubeClient, ref: SecretKeySelector | None, namespace: str) -> str | None:
    """A Secret key's value (e.g. a bearer token for Prometheus); None without a reference."""
    if ref is None:
        return None
    try:
        secret = kube.get(K.SECRET, namespace, ref.name)
    except ApiError as exc:
        raise ProviderError(f"cannot read Secret {ref.name}: {exc}") from exc
    value = (secret or {}).get("data", {}).get(ref.key)
    if value is None:
        raise ProviderError(f"Secret {ref.name} has no key {ref.key}")
    return base64.b64decode(value).decode().strip()
