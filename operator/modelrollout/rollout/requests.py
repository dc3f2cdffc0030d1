"""Manual requests (promote, abort, retry): each acts on the rollout that exists when it is
made, or is consumed and refused with a reason. Never kept for a later rollout.

A request is an annotation whose value is a token, optionally `<token>@<version>`: the version
the requester saw (the CLI always writes it). A request acts only when:
  - promote, abort: a rollout of that version is in progress and was already in progress
    before this reconcile (an untargeted request that arrives with a new version in the same
    change, as GitOps may do, was not made for that rollout);
  - retry: the spec names the version that was rolled back.
Otherwise it is refused: recorded as handled (so it never acts later) with an event saying why.
"""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout.api.status import HandledRequests, RequestResult

KINDS = ("retry", "abort", "promote")  # the order they are considered in within one reconcile


@dataclass(frozen=True)
class Request:
    kind: str
    value: str  # the annotation's value, as recorded in status.handledRequests
    target: str | None  # the version it was made for, if it says


def parse(kind: str, value: str) -> Request:
    token, sep, target = value.rpartition("@")
    if sep and token and target:
        return Request(kind=kind, value=value, target=target)
    return Request(kind=kind, value=value, target=None)


def pending(values: dict[str, str | None], handled: HandledRequests) -> dict[str, Request]:
    """The requests whose value has not been handled yet, by kind."""
    return {
        kind: parse(kind, value)
        for kind in KINDS
        if (value := values.get(kind)) is not None and value != getattr(handled, kind)
    }


def refusal(
    request: Request, *, active_version: str | None, active_before: bool, phase: str | None
) -> str | None:
    """Why a promote or abort cannot act now (None: it acts)."""
    if active_version is None:
        state = f"the last rollout is {phase}" if phase else "no rollout has run yet"
        return f"nothing to {request.kind}: no rollout is in progress ({state})"
    if request.target is not None and request.target != active_version:
        return f"{request.kind} was for {request.target}; the rollout in progress is {active_version}"
    if request.target is None and not active_before:
        return (
            f"{request.kind} arrived with the start of the rollout of {active_version}, so it was not "
            f"made for it; request it again (modelrollout {request.kind}) to act on this rollout"
        )
    return None


def record(
    handled: HandledRequests, request: Request, *, accepted: bool, message: str, time: str
) -> HandledRequests:
    """The request marked handled (it never acts again), with its outcome for the CLI."""
    result = RequestResult(
        kind=request.kind,
        value=request.value,
        outcome="Accepted" if accepted else "Refused",
        message=message[:1024],
        time=time,
    )
    results = [r for r in handled.results if r.kind != request.kind] + [result]
    return handled.model_copy(update={request.kind: request.value, "results": results})
