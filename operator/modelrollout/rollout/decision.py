"""What the rollout machine reads and returns: requests, the observed cluster, its decision."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from modelrollout.api.events import Event
from modelrollout.api.serving import ModelRef
from modelrollout.api.status import CheckResult, HandledRequests, RolloutPhase, RolloutStatus

ACTIVE: set[RolloutPhase] = {"Progressing", "Paused", "Promoting"}

# The analysis callback: `analyze()` evaluates every check; `analyze(only=names)` those checks
# (when per-check intervals make only some due).
Analyze = Callable[..., list[CheckResult]]


@dataclass(frozen=True)
class Requests:
    """Manual requests read from annotations: token per request (None when absent)."""

    promote: str | None = None
    abort: str | None = None
    retry: str | None = None


@dataclass(frozen=True)
class Cluster:
    """What the controller observed, reduced to what the machine needs."""

    canary_ready: bool = False  # canary Deployment rolled out on the candidate, all replicas available
    stable_ready: bool = False  # stable Deployment rolled out on its current template
    stable_version: str | None = None  # version label of the stable Deployment's pods
    weight_settled: bool = False  # the router realised the desired weight (as well as it can)
    observed_weight: int = 0  # what the router reports as achieved


@dataclass(frozen=True)
class Decision:
    stable_model: ModelRef  # what the stable track runs
    canary_model: ModelRef | None  # None: no canary pods wanted
    weight: int  # desired canary weight (percent)
    rollout: RolloutStatus | None
    stable_version: str | None
    stable_image: str | None
    rejected_version: str | None
    handled: HandledRequests
    events: list[Event] = field(default_factory=list)
    requeue_after: float | None = None  # seconds until something is due; None: the resync default
    promoted: bool = False
    rolled_back: bool = False
    started: bool = False
    size_weight: int = 0  # the weight the canary pods are sized for (the step's, even before traffic)

    def status_fields(self) -> dict[str, Any]:
        """The status fields the machine decides (model_copy(update=...) of the status)."""
        return {
            "rollout": self.rollout,
            "stable_version": self.stable_version,
            "stable_image": self.stable_image,
            "rejected_version": self.rejected_version,
            "handled_requests": self.handled,
        }


def identity(model: ModelRef) -> str:
    return f"{model.version}@{model.image}"
