"""Condition types, every reason (of conditions and events), and the pure helpers that set
conditions: one module, because alerts, tests and the docs match on these names.

Conditions follow the Kubernetes API conventions: `lastTransitionTime` moves only when the
status flips, `observedGeneration` says which spec they describe. Reasons are CamelCase and
stable.
"""

from __future__ import annotations

from datetime import datetime

from modelrollout.api.status import Condition, ConditionStatus

# --- condition types --------------------------------------------------------------------------
READY = "Ready"
PROGRESSING = "Progressing"
DEGRADED = "Degraded"
BATCH_READY = "BatchReady"

# --- reasons of conditions and of the events that go with them --------------------------------
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
# a template reference cannot be resolved (missing template or argument, duplicate checks, ...)
ANALYSIS_TEMPLATE_INVALID = "AnalysisTemplateInvalid"
ROLLOUT_IN_PROGRESS = "RolloutInProgress"
ROLLED_BACK = "RolledBack"
CREATED = "Created"
UPDATED = "Updated"
DELETED = "Deleted"
BATCH_PUBLISHED = "Published"
BATCH_NO_PUBLISHED_VERSION = "NoPublishedVersion"
BATCH_RUN_FAILED = "BatchRunFailed"
BATCH_RUN_SUCCEEDED = "BatchRunSucceeded"


def phase_reason(phase: str) -> str:
    """The event reason of a phase change: `PhaseReady`, `PhaseRolledBack`, ..."""
    return f"Phase{phase}"


# --- reasons of rollout events (the rollout machine's transitions) ----------------------------
ROLLOUT_STARTED = "RolloutStarted"
ROLLOUT_SUPERSEDED = "RolloutSuperseded"
STEP_STARTED = "StepStarted"
PROMOTING = "Promoting"
PROMOTED = "Promoted"
PAUSED = "RolloutPaused"
RESUMED = "RolloutResumed"
CHECK_FAILED = "CheckFailed"
CHECK_ERROR = "CheckError"
ANALYSIS_FAILED = "AnalysisFailed"
ANALYSIS_ERRORS = "AnalysisErrors"
PROGRESS_DEADLINE_EXCEEDED = "ProgressDeadlineExceeded"
ABORTED = "Aborted"
SPEC_REVERTED = "SpecReverted"
ANALYSIS_INCONCLUSIVE = "AnalysisInconclusive"
BAKE_STARTED = "BakeStarted"
BAKED = "Baked"
BAKE_FAILED = "BakeFailed"
BAKE_INCONCLUSIVE = "BakeInconclusive"
BAKE_SUPERSEDED = "BakeSuperseded"
PROMOTE_REQUESTED = "PromoteRequested"
RETRY_REQUESTED = "RetryRequested"
PROMOTE_REFUSED = "PromoteRefused"
ABORT_REFUSED = "AbortRefused"
RETRY_REFUSED = "RetryRefused"
REFUSED = {"promote": PROMOTE_REFUSED, "abort": ABORT_REFUSED, "retry": RETRY_REFUSED}


# --- time stamps as the status keeps them ------------------------------------------------------
def rfc3339(now: datetime) -> str:
    return now.strftime("%Y-%m-%dT%H:%M:%SZ")


def parse_rfc3339(text: str | None) -> datetime | None:
    return None if text is None else datetime.fromisoformat(text.replace("Z", "+00:00"))


# --- conditions --------------------------------------------------------------------------------
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
