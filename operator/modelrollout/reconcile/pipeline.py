"""One reconcile of one ModelDeployment: parse -> observe -> plan -> apply -> report.

Synchronous (the kubernetes and Prometheus clients block): the handlers run it in a worker
thread. Everything it decides comes from `plan.py` (pure); everything it reads and writes goes
through `kube/` (observe.py reads, `carry_out` writes).
"""

from __future__ import annotations

import logging
import time
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

from modelrollout import GROUP, HANDOFF_MANAGER
from modelrollout.advisor import in_status as advice
from modelrollout.api import conditions as C
from modelrollout.api.events import Event
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.spec import SpecError
from modelrollout.api.status import Advice, ModelDeploymentStatus, parse_status
from modelrollout.kube import kinds as K
from modelrollout.kube.client import ApiError, KubeClient
from modelrollout.metrics.provider import ProviderError
from modelrollout.reconcile import operator_metrics
from modelrollout.reconcile.evidence import analyzer, bake_analyzer, resolve_analysis
from modelrollout.reconcile.observe import observe, secret_value
from modelrollout.reconcile.plan import Plan, plan
from modelrollout.reconcile.status import apply_failed_status, invalid_spec_status
from modelrollout.rollout.decision import Requests

log = logging.getLogger(__name__)

REQUEST_ANNOTATIONS = {kind: f"{GROUP}/{kind}" for kind in ("promote", "abort", "retry")}


def requests_from(body: dict[str, Any]) -> Requests:
    annotations = body.get("metadata", {}).get("annotations") or {}
    return Requests(**{kind: annotations.get(key) for kind, key in REQUEST_ANNOTATIONS.items()})


def needs_attention(body: Any) -> bool:
    """Cheap check on a watch event: a spec change or a request not yet handled."""
    meta, status = body.get("metadata", {}), body.get("status") or {}
    if meta.get("generation") != status.get("observedGeneration"):
        return True
    handled = status.get("handledRequests") or {}
    requests = requests_from(body)
    return any(
        (value := getattr(requests, kind)) is not None and value != handled.get(kind)
        for kind in REQUEST_ANNOTATIONS
    )


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
        result = carry_out(kube, body, invalid_spec_plan(previous, meta, str(exc), now), previous)
        _record(meta, result, body, started)
        return result
    observed = observe(kube, md, previous)
    resolved, problem = resolve_analysis(md, observed)
    decided = plan(
        md,
        observed,
        previous,
        now,
        requests=requests_from(body),
        analyze=analyzer(kube, md, resolved, previous, now),
        analyze_bake=bake_analyzer(kube, md, resolved, now),
        resolved=resolved,
        analysis_problem=problem,
    )
    decided = with_advice(kube, md, decided, previous, now)
    result = carry_out(kube, body, decided, previous)
    _record(meta, result, body, started)
    return result


def _record(meta: dict[str, Any], result: Plan, body: dict[str, Any], started: float) -> None:
    operator_metrics.record(
        meta.get("namespace", "default"),
        meta["name"],
        result.status,
        result.decision,
        mode=(body.get("spec") or {}).get("mode", "online"),
        seconds=time.monotonic() - started,
    )


def invalid_spec_plan(
    previous: ModelDeploymentStatus, meta: dict[str, Any], message: str, now: datetime
) -> Plan:
    """Degraded with the parse error; the children keep serving what they served."""
    generation = int(meta.get("generation", 0) or 0)
    status = invalid_spec_status(previous, generation=generation, message=message, now=now)
    events = [] if previous.message == status.message else [Event("Warning", C.INVALID_SPEC, message)]
    return Plan(status=status, events=events)


def with_advice(
    kube: KubeClient, md: ModelDeployment, decided: Plan, previous: ModelDeploymentStatus, now: datetime
) -> Plan:
    """Live serving-mode advice in status when due (hybrid with spec.advisor), else as it was."""
    if advice.due(md, previous.advice, now):
        try:
            token = secret_value(kube, md.spec.advisor.prometheus.auth_secret_ref, md.namespace)
            fresh = advice.compute(md, now, token=token)
        except ProviderError as exc:
            fresh = Advice(error=str(exc), observed_at=C.rfc3339(now))
        return replace(decided, status=decided.status.model_copy(update={"advice": fresh}))
    if md.spec.advisor is None and previous.advice is not None:
        return replace(decided, status=decided.status.model_copy(update={"advice": None}))
    return decided


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
                events.append(Event("Normal", C.DELETED, f"{kind} {child}"))
    except ApiError as exc:
        message = f"applying children failed: {exc}"
        log.warning("%s/%s: %s", ns, name, message)
        status = apply_failed_status(status, message=message, now=datetime.now(UTC))
        events.append(Event("Warning", C.APPLY_FAILED, message))
    if status_wire(status) != status_wire(previous):
        kube.patch_status(ns, name, status_wire(status))
    involved = {
        "apiVersion": body.get("apiVersion", K.MODEL_DEPLOYMENT.api_version),
        "kind": body.get("kind", "ModelDeployment"),
        "metadata": meta,
    }
    for event in events:
        kube.event(involved, type=event.type, reason=event.reason, message=event.message, action="Reconcile")
    return replace(decided, status=status, events=events)
