"""Gateway API router: an HTTPRoute whose backendRefs weigh the per-track Services."""

from __future__ import annotations

from typing import Any

from modelrollout.api.resource import ModelDeployment
from modelrollout.render import labels as L
from modelrollout.render import serving as R
from modelrollout.routing.base import Achieved, TrackPods

HTTP_ROUTE_API = "gateway.networking.k8s.io/v1"


class GatewayRouter:
    name = "gatewayAPI"
    holds_pods_at_zero = True

    def canary_replicas(self, *, weight: int, stable_replicas: int) -> int:
        """Traffic is set by the route, so the canary runs at full size while it is up."""
        return max(stable_replicas, 1)

    def manifests(self, md: ModelDeployment, *, weight: int) -> list[dict[str, Any]]:
        return [R.service(md, track="stable"), R.service(md, track="canary"), http_route(md, weight=weight)]

    def achieved(
        self, *, weight: int, stable: TrackPods, canary: TrackPods, observed: dict[str, dict[str, Any] | None]
    ) -> Achieved:
        route = observed.get("HTTPRoute")
        share = route_weight(route)
        accepted = _accepted(route)
        settled = share == weight and accepted and (weight == 0 or canary.complete)
        return Achieved(weight=share if accepted else 0, settled=settled)


def http_route(md: ModelDeployment, *, weight: int) -> dict[str, Any]:
    gateway = md.spec.rollout.gateway
    assert gateway is not None  # the schema requires it for this router
    parents = [ref.to_wire() for ref in gateway.parent_refs]
    spec: dict[str, Any] = {
        "parentRefs": parents,
        "rules": [
            {
                "backendRefs": [
                    {"name": L.track_name(md.name, "stable"), "port": 80, "weight": 100 - weight},
                    {"name": L.track_name(md.name, "canary"), "port": 80, "weight": weight},
                ],
            }
        ],
    }
    if gateway.hostnames:
        spec["hostnames"] = list(gateway.hostnames)
    return {
        "apiVersion": HTTP_ROUTE_API,
        "kind": "HTTPRoute",
        "metadata": {
            "name": md.name,
            "namespace": md.namespace,
            "labels": L.base_labels(md.name, md.spec.model.name, "routing"),
            "ownerReferences": [md.owner_reference()],
        },
        "spec": spec,
    }


def route_weight(route: dict[str, Any] | None) -> int:
    """The canary's share of the route's backend weights (0 without a route)."""
    if not route:
        return 0
    weights: dict[str, int] = {}
    for rule in route.get("spec", {}).get("rules", []):
        for ref in rule.get("backendRefs", []):
            weights[ref.get("name", "")] = weights.get(ref.get("name", ""), 0) + int(ref.get("weight", 1))
    total = sum(weights.values())
    canary = sum(w for name, w in weights.items() if name.endswith("-canary"))
    return round(100 * canary / total) if total else 0


def _accepted(route: dict[str, Any] | None) -> bool:
    """No parent status yet counts as accepted (some controllers are slow to write it); an
    explicit Accepted=False does not."""
    if not route:
        return False
    for parent in route.get("status", {}).get("parents", []) or []:
        for cond in parent.get("conditions", []) or []:
            if cond.get("type") == "Accepted" and cond.get("status") == "False":
                return False
    return True
