"""Traffic routers behind one Protocol (see base.py)."""

from __future__ import annotations

from modelrollout.routing.base import Router
from modelrollout.routing.gateway import GatewayRouter
from modelrollout.routing.replicas import ReplicaRouter


def router_for(name: str) -> Router:
    return GatewayRouter() if name == "gatewayAPI" else ReplicaRouter()
