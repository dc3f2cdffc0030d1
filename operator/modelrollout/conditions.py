"""Condition types, reasons and phases in one place, and pure helpers to set them.

Conditions follow the Kubernetes API conventions: `lastTransitionTime` moves only when the
status flips, `observedGeneration` says which spec they describe.
"""

from __future__ import annotations

from datetime import datetime

from modelrollout.api.status import Condition, ConditionStatus

# condition types
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
BATCH_READY = "BatchReady"

# reasons (CamelCase, stable: alerts and tests match on them)
INVALID_SPEC = "InvalidSpec"
APPLY_FAILED = "ApplyFailed"
DEPLOYMENT_READY = "DeploymentReady"
DEPLOYMENT_PROGRESSING = "DeploymentProgressing"
DEPLOYMENT_FAILED = "DeploymentFailed"
WAITING_FOR_PODS = "WaitingForPods"
RECONCILED = "Reconciled"
AS_EXPECTED = "AsExpected"
SCALED_TO_ZERO = "ScaledToZero"
GATES_NOT_ENFORCED = "GatesNotEnforced"


def rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def set_condition(
    conditions: list[Condition],
    *,
    type: str,
    status: ConditionStatus,
    reason: str,
    message: str,
    generation: int,
    now: datetime,
) -> list[Condition]:
    """A new list with `type` set; the transition time is kept when the status is unchanged."""
    previous = next((c for c in conditions if c.type == type), None)
    transition = (
        previous.last_transition_time if previous is not None and previous.status == status else rfc3339(now)
    )
    updated = Condition(
        type=type,
        status=status,
        reason=reason,
        message=message[:32768],
        observed_generation=generation,
        last_transition_time=transition,
    )
    return [c for c in conditions if c.type != type] + [updated]


def get_condition(conditions: list[Condition], type: str) -> Condition | None:
    return next((c for c in conditions if c.type == type), None)


ROLLOUT_IN_PROGRESS = "RolloutInProgress"
ROLLED_BACK = "RolledBack"
