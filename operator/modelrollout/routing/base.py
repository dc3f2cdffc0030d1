"""Traffic routers: how a desired canary weight becomes traffic, and what was achieved.

A router is pure: it renders the objects that carry the weight and reads the achieved
weight back from what the cluster shows. Reported weights come from observation, never from
what was asked for.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Protocol

from modelrollout.api.resource import ModelDeployment


@dataclass(frozen=True)
class TrackPods:
    """Observed pods of one track: desired and ready replicas of its Deployment."""

    desired: int = 0
    ready: int = 0
    complete: bool = False  # rolled out on its current template


@dataclass(frozen=True)
class Achieved:
    weight: int  # percent of traffic the canary actually gets
    settled: bool  # the router has realised the weight it was last given


class Router(Protocol):
    name: str
    holds_pods_at_zero: bool  # can canary pods stay up at weight 0 (during scaleDownDelay)?

    def canary_replicas(self, *, weight: int, stable_replicas: int) -> int:
        """Replicas the canary Deployment needs for `weight`."""
        ...

    def manifests(self, md: ModelDeployment, *, weight: int) -> list[dict[str, Any]]:
        """Objects (besides the Deployments and the main Service) that carry the weight."""
        ...

    def achieved(
        self, *, weight: int, stable: TrackPods, canary: TrackPods, observed: dict[str, dict[str, Any] | None]
    ) -> Achieved:
        """What the cluster shows for the weight last asked for."""
        ...
