"""The default router: stable and canary pods behind one Service; weight = replica ratio.

The stable track keeps its full size (no capacity is lost during a rollout); the canary gets
enough pods that canary/(stable+canary) approximates the weight. With few replicas the ratio
is coarse (2 stable pods: 1 canary pod = 33%), and the achieved ratio is what is reported.
Weight 0 needs zero canary pods, so with this router a rollback removes the canary pods at
once (scaleDownDelay applies to routers that can hold pods at weight 0).
"""

from __future__ import annotations

from typing import Any

from modelrollout.api.resource import ModelDeployment
from modelrollout.routing.base import Achieved, TrackPods


class ReplicaRouter:
    name = "replicas"
    holds_pods_at_zero = False

    def canary_replicas(self, *, weight: int, stable_replicas: int) -> int:
        if weight <= 0:
            return 0
        if weight >= 100 or stable_replicas == 0:
            return max(stable_replicas, 1)
        return max(1, round(weight * stable_replicas / (100 - weight)))

    def manifests(self, md: ModelDeployment, *, weight: int) -> list[dict[str, Any]]:
        return []

    def achieved(
        self, *, weight: int, stable: TrackPods, canary: TrackPods, observed: dict[str, dict[str, Any] | None]
    ) -> Achieved:
        total = stable.ready + canary.ready
        share = round(100 * canary.ready / total) if total else 0
        want = self.canary_replicas(weight=weight, stable_replicas=stable.desired)
        settled = canary.desired == want and canary.ready == want and stable.complete
        return Achieved(weight=share, settled=settled)
