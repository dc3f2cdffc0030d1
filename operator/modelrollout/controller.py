"""One reconcile of one ModelDeployment: parse -> observe -> decide -> apply -> report.

Synchronous (the kubernetes and Prometheus clients block): handlers run it in a worker thread.
"""

from __future__ import annotations

import base64
import logging
import threading
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from modelrollout import GROUP, advice, opmetrics
from modelrollout import conditions as C
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.spec import SpecError
from modelrollout.api.status import Advice, CheckResult, ModelDeploymentStatus, parse_status
from modelrollout.kube import kinds as K
from modelrollout.kube.client import HANDOFF_MANAGER, ApiError, KubeClient
from modelrollout.metrics.prometheus import PrometheusProvider
from modelrollout.metrics.provider import ProviderError
from modelrollout.plan import Observed, Plan, child_key, children_to_observe, plan
from modelrollout.render import batch as B
from modelrollout.render import labels as L
from modelrollout.rollout import analysis
from modelrollout.rollout.machine import Requests
from modelrollout.status_view import EventNote, invalid_spec_status

log = logging.getLogger(__name__)

PROMOTE_ANNOTATION = f"{GROUP}/promote"
ABORT_ANNOTATION = f"{GROUP}/abort"
RETRY_ANNOTATION = f"{GROUP}/retry"


def observe(kube: KubeClient, md: ModelDeployment, previous: ModelDeploymentStatus) -> Observed:
    ns, name = md.namespace, md.name
    wanted = children_to_observe(md, previous)

    def get(kind: K.Kind, child: str) -> dict[str, Any] | None:
        if wanted is not None and child_key(kind.kind, child) not in wanted:
            return None
        return kube.get(kind, ns, child)

    monitor_served = kube.served(K.POD_MONITOR)
    gateway = md.spec.rollout.router == "gatewayAPI" or kube.served(K.HTTP_ROUTE)
    batch = (
        observe_batch(kube, md)
        if md.spec.mode != "online"
        else {"cronjob": get(K.CRONJOB, L.batch_name(name))}
    )
    return Observed(
        stable=kube.get(K.DEPLOYMENT, ns, L.track_name(name, "stable")),
        canary=get(K.DEPLOYMENT, L.track_name(name, "canary")),
        service=kube.get(K.SERVICE, ns, name),
        hpa=get(K.HPA, L.track_name(name, "stable")),
        pod_monitor=kube.get(K.POD_MONITOR, ns, name) if monitor_served else None,
        pod_monitor_served=monitor_served,
        stable_service=get(K.SERVICE, L.track_name(name, "stable")),
        canary_service=get(K.SERVICE, L.track_name(name, "canary")),
        http_route=get(K.HTTP_ROUTE, name) if gateway else None,
        **batch,
    )


def observe_batch(kube: KubeClient, md: ModelDeployment) -> dict[str, Any]:
    """The CronJob, its Jobs, and the pods of the newest Jobs (for the runner's reports)."""
    ns = md.namespace
    cronjob = kube.get(K.CRONJOB, ns, L.batch_name(md.name))
    selector = L.selector_string({L.DEPLOYMENT_LABEL: md.name, L.COMPONENT_LABEL: "batch"})
    jobs = kube.list(K.JOB, ns, label_selector=selector) if cronjob is not None else []
    newest = sorted(jobs, key=lambda j: j["metadata"].get("creationTimestamp") or "")[-2:]
    pods = {
        j["metadata"]["name"]: kube.list(
            K.POD, ns, label_selector=f"{B.JOB_NAME_LABEL}={j['metadata']['name']}"
        )
        for j in newest
    }
    return {"cronjob": cronjob, "jobs": tuple(jobs), "job_pods": pods}


def requests_from(body: dict[str, Any]) -> Requests:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return Requests(
        promote=annotations.get(PROMOTE_ANNOTATION),
        abort=annotations.get(ABORT_ANNOTATION),
        retry=annotations.get(RETRY_ANNOTATION),
    )


def needs_attention(body: Any) -> bool:
    """Cheap check on a watch event: a spec change or a request not yet acted on."""
    meta, status = body.get("metadata", {}), body.get("status") or {}
    if meta.get("generation") != status.get("observedGeneration"):
        return True
    handled = status.get("handledRequests") or {}
    requests = requests_from(body)
    return any(
        token is not None and token != handled.get(kind)
        for kind, token in (
            ("promote", requests.promote),
            ("abort", requests.abort),
            ("retry", requests.retry),
        )
    )


def analyzer(kube: KubeClient, md: ModelDeployment, previous: ModelDeploymentStatus, now: datetime):
    """The analysis callback: builds the Prometheus provider only when analysis is due."""

    def analyze() -> list[CheckResult]:
        spec = md.spec.rollout.analysis
        assert spec is not None
        try:
            provider = _provider(
                spec.prometheus.address, _token(kube, spec.prometheus.auth_secret_ref, md.namespace)
            )
        except ProviderError as exc:
            return [
                CheckResult(metric=m.name, query="", verdict="error", message=str(exc), time=C.rfc3339(now))
                for m in spec.metrics
            ]
        results = analysis.run(
            spec,
            provider,
            namespace=md.namespace,
            name=md.name,
            canary_version=md.spec.model.version,
            stable_version=previous.stable_version or "",
            now=now,
        )
        for result in results:
            opmetrics.VERDICTS.labels(metric=result.metric, verdict=result.verdict).inc()
        return results

    return analyze


_providers: dict[tuple[str, str | None], PrometheusProvider] = {}
_providers_lock = threading.Lock()
MAX_PROVIDERS = 64


def _provider(address: str, token: str | None) -> PrometheusProvider:
    """One client (and HTTP session) per Prometheus and token, reused across analyses."""
    key = (address, token)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            if len(_providers) >= MAX_PROVIDERS:
                _providers.pop(next(iter(_providers))).close()
            provider = _providers[key] = PrometheusProvider(address, token=token)
        return provider


def _token(kube: KubeClient, ref: Any, namespace: str) -> str | None:
    """The bearer token for Prometheus from a Secret key (None without a reference)."""
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


def status_wire(status: ModelDeploymentStatus) -> dict[str, Any]:
    """Status for a merge patch: unset fields as null, so stale values are removed. Inside list
    items (replaced whole by a merge patch) unset fields are left out instead."""
    return _without_nulls_in_lists(status.model_dump(by_alias=True, mode="json"))


def _without_nulls_in_lists(value: Any, in_list: bool = False) -> Any:
    if isinstance(value, dict):
        return {
            k: _without_nulls_in_lists(v, in_list) for k, v in value.items() if not (in_list and v is None)
        }
    if isinstance(value, list):
        return [_without_nulls_in_lists(v, True) for v in value]
    return value


def reconcile(kube: KubeClient, body: dict[str, Any], now: datetime | None = None) -> Plan:
    """Bring one ModelDeployment's children and status in line; returns what was decided."""
    started = time.monotonic()
    now = now or datetime.now(UTC)
    meta = body["metadata"]
    previous = parse_status(body.get("status"))
    if meta.get("deletionTimestamp"):
        return Plan(status=previous)  # being deleted: the cleanup and the garbage collector own it
    try:
        md = ModelDeployment.from_body(body)
    except SpecError as exc:
        generation = int(meta.get("generation", 0) or 0)
        status = invalid_spec_status(previous, generation=generation, message=str(exc), now=now)
        events = (
            [] if previous.message == status.message else [EventNote("Warning", C.INVALID_SPEC, str(exc))]
        )
        return carry_out(kube, body, Plan(status=status, events=events), previous)
    decided = plan(
        md,
        observe(kube, md, previous),
        previous,
        now,
        requests=requests_from(body),
        analyze=analyzer(kube, md, previous, now),
    )
    if advice.due(md, previous.advice, now):
        try:
            token = _token(kube, md.spec.advisor.prometheus.auth_secret_ref, md.namespace)
            fresh = advice.compute(md, now, token=token)
        except ProviderError as exc:
            fresh = Advice(error=str(exc), observed_at=C.rfc3339(now))
        decided = replace(decided, status=decided.status.model_copy(update={"advice": fresh}))
    elif md.spec.advisor is None and previous.advice is not None:
        decided = replace(decided, status=decided.status.model_copy(update={"advice": None}))
    result = carry_out(kube, body, decided, previous)
    opmetrics.record(decided.decision, seconds=time.monotonic() - started)
    return result


def handoff_manifest(kind: K.Kind, namespace: str, name: str, fields: dict[str, Any]) -> dict[str, Any]:
    return {
        "apiVersion": kind.api_version,
        "kind": kind.kind,
        "metadata": {"name": name, "namespace": namespace},
        **fields,
    }


def carry_out(kube: KubeClient, body: dict[str, Any], decided: Plan, previous: ModelDeploymentStatus) -> Plan:
    """Apply, delete, then report. A failed apply becomes a Degraded condition, not a crash."""
    meta = body["metadata"]
    ns, name = meta.get("namespace", "default"), meta["name"]
    status = decided.status
    events = list(decided.events)
    try:
        for kind, child, fields in decided.handoff:
            # An apply, not an update: an update that changes no value records no owner, so the
            # field would still fall back to its default once the operator stops applying it.
            kube.apply(handoff_manifest(K.BY_KIND[kind], ns, child, fields), field_manager=HANDOFF_MANAGER)
        for manifest in decided.apply:
            kube.apply(manifest)
        for kind, child in decided.delete:
            if kube.delete(K.BY_KIND[kind], ns, child):
                events.append(EventNote("Normal", "Deleted", f"{kind} {child}"))
    except ApiError as exc:
        message = f"applying children failed: {exc}"
        log.warning("%s/%s: %s", ns, name, message)
        conds = C.set_condition(
            status.conditions,
            type=C.DEGRADED,
            status="True",
            reason=C.APPLY_FAILED,
            message=message,
            generation=status.observed_generation or 0,
            now=datetime.now(UTC),
        )
        status = status.model_copy(
            update={"phase": "Degraded", "message": message[:4096], "conditions": conds}
        )
        events.append(EventNote("Warning", C.APPLY_FAILED, message))
    if status_wire(status) != status_wire(previous):
        kube.patch_status(ns, name, status_wire(status))
    involved = {
        "apiVersion": body.get("apiVersion", K.MODEL_DEPLOYMENT.api_version),
        "kind": body.get("kind", "ModelDeployment"),
        "metadata": meta,
    }
    for note in events:
        kube.event(involved, type=note.type, reason=note.reason, message=note.message, action="Reconcile")
    return replace(decided, status=status, events=events)
