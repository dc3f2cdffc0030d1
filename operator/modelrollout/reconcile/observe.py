"""Observation: the reads one reconcile makes, driven by the table of children."""

from __future__ import annotations

import base64
from typing import Any

from modelrollout.api.resource import ModelDeployment
from modelrollout.api.rollout import SecretKeySelector
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.kube import kinds as K
from modelrollout.kube.client import ApiError, KubeClient
from modelrollout.metrics.provider import ProviderError
from modelrollout.reconcile.children import to_observe
from modelrollout.reconcile.observed import Observed
from modelrollout.render import cronjob as CJ
from modelrollout.render import labels as L

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
    return Observed(children=children, served=served, jobs=jobs, job_pods=pods)


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
