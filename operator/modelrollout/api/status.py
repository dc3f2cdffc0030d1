"""The ModelDeployment status: what the operator observed and decided.

Everything the operator needs to resume after a restart lives here (level-based reconcile);
it is written only through the status subresource.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field

from modelrollout.api.base import ApiModel

Phase = Literal[
    "Pending",
    "Ready",
    "Progressing",
    "Paused",
    "Promoting",
    "Baking",
    "Succeeded",
    "RolledBack",
    "Degraded",
    "Failed",
]
ConditionStatus = Literal["True", "False", "Unknown"]


class StatusModel(ApiModel):
    """Status objects tolerate fields they do not know (written by a newer operator)."""

    model_config = ApiModel.model_config | ConfigDict(extra="ignore")


class Condition(StatusModel):
    """A condition per the Kubernetes API conventions."""

    type: Annotated[str, Field(min_length=1, max_length=316)]
    status: ConditionStatus
    reason: Annotated[
        str, Field(min_length=1, max_length=1024, pattern=r"^[A-Za-z]([A-Za-z0-9_,:]*[A-Za-z0-9_])?$")
    ]
    message: Annotated[str, Field(max_length=32768)] = ""
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    last_transition_time: str = Field(description="RFC 3339 time the status last changed.")


Verdict = Literal["pass", "fail", "inconclusive", "error"]
RolloutPhase = Literal["Progressing", "Paused", "Promoting", "Baking", "Succeeded", "RolledBack", "Failed"]


class TemplateSource(StatusModel):
    """The analysis template a check came from, as it was when the check ran."""

    kind: str
    name: str
    generation: Annotated[int, Field(ge=0)] = 0


class CheckResult(StatusModel):
    """One analysis check, with everything needed to audit the verdict later."""

    metric: str
    source: TemplateSource | None = Field(
        default=None, description="The template (kind, name, generation) the check came from; unset: inline."
    )
    query: Annotated[str, Field(max_length=4096)]
    value: float | None = None
    stable_query: Annotated[str, Field(max_length=4096)] | None = None
    stable_value: float | None = None
    samples: float | None = Field(
        default=None, description="Observations behind the value (ground-truth checks: labelled predictions)."
    )
    coverage: float | None = Field(
        default=None, description="Ground-truth checks: labelled / logged predictions of the version."
    )
    threshold: str = ""
    verdict: Verdict
    message: Annotated[str, Field(max_length=1024)] = ""
    time: str


class AnalysisCounts(StatusModel):
    """Analyses of the current rollout by verdict (reset by a new version or a retry)."""

    passes: Annotated[int, Field(ge=0)] = 0
    failures: Annotated[int, Field(ge=0)] = 0
    consecutive_failures: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Failures since the last pass (inconclusive and error leave it as it is)."
    )
    errors: Annotated[int, Field(ge=0)] = 0
    consecutive_errors: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Errors since the last analysis that was not an error."
    )
    inconclusives: Annotated[int, Field(ge=0)] = 0


class RequestResult(StatusModel):
    """What became of a manual request: acted on, or refused (and why)."""

    kind: Literal["promote", "abort", "retry"]
    value: Annotated[str, Field(max_length=253)]
    outcome: Literal["Accepted", "Refused"]
    message: Annotated[str, Field(max_length=1024)] = ""
    time: str


class HandledRequests(StatusModel):
    """The manual requests (annotation values) already handled: each is handled exactly once,
    acted on or refused, and never kept for a later rollout."""

    promote: str | None = None
    abort: str | None = None
    retry: str | None = None
    results: Annotated[list[RequestResult], Field(max_length=3)] = Field(
        default=[], description="The outcome of the last request of each kind."
    )


class BakeStatus(StatusModel):
    """The bake after a promotion: late labels judged against the requirements."""

    started_at: str
    until: str = Field(description="When the bake ends (started_at + bake.duration).")
    last_analysis_at: str | None = None
    verdict: Verdict | None = Field(default=None, description="Verdict of the latest bake analysis.")
    counts: AnalysisCounts = AnalysisCounts()
    checks: Annotated[list[CheckResult], Field(max_length=32)] = []


class RolloutStatus(StatusModel):
    """The state of the current (or last) rollout; enough to resume after a restart."""

    phase: RolloutPhase
    canary_version: str
    canary_image: str
    from_version: str | None = Field(default=None, description="The stable version the rollout started from.")
    from_image: str | None = Field(
        default=None,
        description="The stable image the rollout started from: what a failed bake, or `undo`, goes back to.",
    )
    step: Annotated[int, Field(ge=0)] = 0
    step_started_at: str | None = None
    started_at: str
    last_progress_at: str | None = Field(
        default=None, description="Last progress: the start, a step's weight realised, a pass, a resume."
    )
    stalled_since: str | None = Field(
        default=None,
        description="Start of the current stall (waiting on pods or the weight, or on analyses that "
        "do not pass); unset while the rollout progresses or holds on purpose. progressDeadline "
        "counts from here.",
    )
    last_analysis_at: str | None = None
    # Replaces the sticky `stepPassed` of earlier versions (an old status still parses: unknown
    # fields are ignored, and a step without a verdict waits for a fresh analysis).
    step_verdict: Verdict | None = Field(
        default=None,
        description="Verdict of the latest analysis at this step (since its hold last started); "
        "the step moves on only when it is pass.",
    )
    analysis_hold: bool = Field(
        default=False,
        description="Paused by onInconclusive: pause; a retry request, or pausing and resuming, continues.",
    )
    analysis_blocked: Annotated[str, Field(max_length=1024)] | None = Field(
        default=None,
        description="Why the analysis cannot run (e.g. a missing template): the rollout waits at its "
        "step, outside the deadline, and the step starts afresh once the analysis is valid again.",
    )
    desired_weight: Annotated[int, Field(ge=0, le=100)] = 0
    observed_weight: Annotated[int, Field(ge=0, le=100)] = 0
    counts: AnalysisCounts = AnalysisCounts()
    checks: Annotated[list[CheckResult], Field(max_length=32)] = []
    message: Annotated[str, Field(max_length=4096)] = ""
    finished_at: str | None = None
    scale_down_at: str | None = Field(default=None, description="When the canary is scaled to zero.")
    bake: BakeStatus | None = Field(
        default=None, description="The bake after promotion, when the spec has one."
    )


class BatchRun(StatusModel):
    """The last finished (or running) batch run, from its Job and the runner's report."""

    job: str
    run_id: str | None = None
    phase: Literal["Running", "Succeeded", "Failed"]
    status: str | None = Field(default=None, description="The runner's status (published, rejected, ...).")
    rows_in: Annotated[int, Field(ge=0)] | None = None
    rows_written: Annotated[int, Field(ge=0)] | None = None
    published_version: str | None = None
    reason: str | None = None
    message: Annotated[str, Field(max_length=2048)] | None = None
    started_at: str | None = None
    finished_at: str | None = None


class BatchStatus(StatusModel):
    last_schedule_time: str | None = None
    last_successful_time: str | None = None
    table: str | None = None
    published_version: str | None = Field(default=None, description="Run id of the version lookups serve.")
    rows: Annotated[int, Field(ge=0)] | None = None
    last_run: BatchRun | None = None
    failures: Annotated[int, Field(ge=0)] = Field(
        default=0, description="Failed runs since the last success."
    )


class Advice(StatusModel):
    """The advisor's recommendation from live traffic: advice only, never acted on."""

    mode: str | None = None
    source: str | None = None
    cost_per_day: float | None = None
    latency_p99_ms: float | None = None
    head_size: int | None = None
    expected_hit_ratio: float | None = None
    reason: Annotated[str, Field(max_length=1024)] | None = None
    error: Annotated[str, Field(max_length=1024)] | None = None
    observed_at: str


class ModelDeploymentStatus(StatusModel):
    observed_generation: Annotated[int, Field(ge=0)] | None = None
    phase: Phase | None = None
    message: Annotated[str, Field(max_length=4096)] | None = None
    conditions: Annotated[list[Condition], Field(max_length=16)] = Field(
        default=[],
        json_schema_extra={"x-kubernetes-list-type": "map", "x-kubernetes-list-map-keys": ["type"]},
    )
    stable_version: str | None = None
    stable_image: str | None = None
    canary_version: str | None = None
    canary_weight: Annotated[int, Field(ge=0, le=100)] | None = None
    replicas: Annotated[int, Field(ge=0)] | None = None
    ready_replicas: Annotated[int, Field(ge=0)] | None = None
    selector: str | None = Field(default=None, description="Label selector of the serving pods.")
    rollout: RolloutStatus | None = None
    batch: BatchStatus | None = None
    advice: Advice | None = None
    children: Annotated[list[Annotated[str, Field(max_length=320)]], Field(max_length=32)] | None = Field(
        default=None, description="Kind/name of every child the operator manages (what it looks up)."
    )
    rejected_version: str | None = Field(
        default=None, description="version@image rolled back; not retried until the spec changes or a retry."
    )
    handled_requests: HandledRequests = HandledRequests()


def parse_status(raw: dict[str, Any] | None) -> ModelDeploymentStatus:
    """Parse status as stored; an unreadable status starts afresh rather than crashing."""
    try:
        return ModelDeploymentStatus.model_validate(raw or {})
    except ValueError:
        return ModelDeploymentStatus()
