"""THE table of the children a ModelDeployment may have.

Each row says, for one child: its kind, its name, how it is rendered this reconcile (None: it
must not exist now), when it is worth looking up, and how the plan treats it. Observation,
planning, drift repair, status and deletion all read this table; adding a child (a gate Job, a
training Job) is one row here plus its renderer.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

from modelrollout.api.resource import ModelDeployment
from modelrollout.api.serving import ModelRef
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.kube import kinds as K
from modelrollout.reconcile.observed import Manifest
from modelrollout.render import cronjob as CJ
from modelrollout.render import labels as L
from modelrollout.render import serving as R
from modelrollout.rollout.decision import Decision
from modelrollout.routing.base import Router


@dataclass(frozen=True)
class Desire:
    """Everything a child is rendered from in one reconcile."""

    md: ModelDeployment
    decision: Decision
    router: Router
    stable_replicas: int  # the stable track's size (the spec's, or what the HPA chose)
    running_canary: ModelRef | None  # what the canary Deployment runs now, if it exists
    served: frozenset[str]  # optional kinds the API server serves (PodMonitor, HTTPRoute)
    routed: dict[tuple[str, str], Manifest]  # (kind, name) -> object the router renders

    @property
    def gateway(self) -> bool:
        return self.router.name == "gatewayAPI"


@dataclass(frozen=True)
class Child:
    key: str
    kind: K.Kind
    name: Callable[[str], str]  # the ModelDeployment's name -> the child's name
    render: Callable[[Desire, str], Manifest | None]  # (desire, own name) -> manifest, or None: absent
    may_exist: Callable[[ModelDeployment, ModelDeploymentStatus], bool]  # worth a GET this reconcile
    optional_api: bool = False  # served only with an add-on: looked up only when the API serves it
    deletable: bool = True  # False: never deleted by the plan (scaled down or left instead)

    def identity(self, md_name: str) -> str:
        """`Kind/name`, as `status.children` records it."""
        return f"{self.kind.kind}/{self.name(md_name)}"


# --- renderers ---------------------------------------------------------------------------------


def _stable(d: Desire, _: str) -> Manifest:
    autoscaled = d.md.spec.serving.autoscaling is not None
    return R.deployment(
        d.md,
        model=d.decision.stable_model,
        track="stable",
        replicas=None if autoscaled else d.stable_replicas,
    )


def _canary(d: Desire, _: str) -> Manifest | None:
    """The canary Deployment at its size; after a rollout, scaled to zero (kept for inspection)."""
    decision = d.decision
    if decision.canary_model is not None:
        if decision.size_weight > 0:
            replicas = d.router.canary_replicas(
                weight=decision.size_weight, stable_replicas=d.stable_replicas
            )
        else:
            replicas = max(d.stable_replicas, 1) if d.router.holds_pods_at_zero else 0
        return R.deployment(d.md, model=decision.canary_model, track="canary", replicas=replicas)
    if d.running_canary is None:
        return None
    return R.deployment(d.md, model=d.running_canary, track="canary", replicas=0)


def _service(d: Desire, _: str) -> Manifest:
    return R.service(d.md, stable_only=d.gateway)


def _routed_kind(kind: K.Kind) -> Callable[[Desire, str], Manifest | None]:
    """An object the router renders for the weight (its per-track Services, its HTTPRoute)."""

    def render(d: Desire, name: str) -> Manifest | None:
        return d.routed.get((kind.kind, name))

    return render


def _hpa(d: Desire, _: str) -> Manifest | None:
    return R.hpa(d.md)


def _pod_monitor(d: Desire, _: str) -> Manifest | None:
    return R.pod_monitor(d.md) if K.POD_MONITOR.kind in d.served else None


def _cronjob(d: Desire, _: str) -> Manifest | None:
    return CJ.cronjob(d.md) if d.md.spec.mode != "online" else None


# --- when a child is worth looking up ----------------------------------------------------------


def _always(md: ModelDeployment, previous: ModelDeploymentStatus) -> bool:
    return True


def _rollout_possible(md: ModelDeployment, previous: ModelDeploymentStatus) -> bool:
    return (
        previous.rollout is not None
        or (previous.stable_version or md.spec.model.version) != md.spec.model.version
    )


def _gateway(md: ModelDeployment, previous: ModelDeploymentStatus) -> bool:
    return md.spec.rollout.router == "gatewayAPI"


def _autoscaled(md: ModelDeployment, previous: ModelDeploymentStatus) -> bool:
    return md.spec.serving.autoscaling is not None


def _batch(md: ModelDeployment, previous: ModelDeploymentStatus) -> bool:
    return md.spec.mode != "online"


def _stable_name(name: str) -> str:
    return L.track_name(name, "stable")


def _canary_name(name: str) -> str:
    return L.track_name(name, "canary")


def _own_name(name: str) -> str:
    return name


CHILDREN: tuple[Child, ...] = (
    Child("stable", K.DEPLOYMENT, _stable_name, _stable, _always),
    Child("canary", K.DEPLOYMENT, _canary_name, _canary, _rollout_possible, deletable=False),
    Child("service", K.SERVICE, _own_name, _service, _always),
    Child("stable_service", K.SERVICE, _stable_name, _routed_kind(K.SERVICE), _gateway),
    Child("canary_service", K.SERVICE, _canary_name, _routed_kind(K.SERVICE), _gateway),
    Child("hpa", K.HPA, _stable_name, _hpa, _autoscaled),
    Child("pod_monitor", K.POD_MONITOR, _own_name, _pod_monitor, _always, optional_api=True, deletable=False),
    Child("http_route", K.HTTP_ROUTE, _own_name, _routed_kind(K.HTTP_ROUTE), _gateway, optional_api=True),
    Child("cronjob", K.CRONJOB, L.batch_name, _cronjob, _batch),
)
BY_KEY = {child.key: child for child in CHILDREN}


def possible(name: str) -> list[tuple[K.Kind, str]]:
    """Every (kind, name) the operator may create for the ModelDeployment `name`."""
    return [(child.kind, child.name(name)) for child in CHILDREN]


def to_observe(
    md: ModelDeployment, previous: ModelDeploymentStatus, served: frozenset[str] = frozenset()
) -> list[Child]:
    """The rows the next reconcile GETs: those the last one managed plus those the spec may need
    now (all of them when the status predates `status.children`), of the kinds the API serves.
    Keeps a steady reconcile at a few GETs, which is what 1,000 objects per operator needs."""
    rows = [c for c in CHILDREN if not c.optional_api or c.kind.kind in served]
    if previous.children is None:
        return rows
    managed = set(previous.children)
    return [c for c in rows if c.identity(md.name) in managed or c.may_exist(md, previous)]
