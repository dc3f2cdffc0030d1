"""The one event type: what the rollout machine and the reconcile pipeline want an SRE to see
in `kubectl get events` (the kube layer writes them as events.k8s.io/v1 Events)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal


@dataclass(frozen=True)
class Event:
    type: Literal["Normal", "Warning"]
    reason: str  # one of the reasons in api/conditions.py
    message: str
