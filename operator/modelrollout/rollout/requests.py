"""Manual requests (promote, abort, retry): each acts on the rollout that exists when it is
made, or is consumed and refused with a reason. Never kept for a later rollout.

A request is an annotation whose value is a token, optionally `<token>@<version>`: the version
the requester saw (the CLI always writes it). A promote may end in a marker:
  - `#step=N` (what `modelrollout promote` writes): advance ONE step, from step N (1-based, as
    `status` shows it); refused if the rollout has moved on from step N meanwhile; `#step`
    without a number advances from whatever step it is at;
  - `#full` (what `modelrollout promote --full` writes): skip every remaining step;
  - no marker: a full promotion, as every promote meant before markers existed (a value kept in
    Git, or written by hand with the old instructions, keeps doing what it did).
A request acts only when:
  - promote, abort: a rollout of that version is in progress and was already in progress
    before this reconcile (an untargeted request that arrives with a new version in the same
    change, as GitOps may do, was not made for that rollout);
  - retry: the spec names the version that was rolled back.
Otherwise it is refused: recorded as handled (so it never acts later) with an event saying why.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from modelrollout.api.status import HandledRequests, RequestResult

KINDS = ("retry", "abort", "promote")  # the order they are considered in within one reconcile
FULL = "full"
STEP = re.compile(r"step(?:=([1-9][0-9]{0,2}))?")


@dataclass(frozen=True)
class Request:
    kind: str
    value: str  # the annotation's value, as recorded in status.handledRequests
    target: str | None  # the version it was made for, if it says
    full: bool = True  # promote: skip every remaining step (no marker: as before markers existed)
    step: int | None = None  # promote one step: the step (1-based) it was made at, if it says
    malformed: str | None = None  # why the value cannot be acted on (it is refused)


def parse(kind: str, value: str) -> Request:
    base, hashed, marker = value.partition("#")
    token, sep, target = base.rpartition("@")
    request = Request(kind=kind, value=value, target=target if sep and token and target else None)
    if not hashed:
        return request
    if kind != "promote":
        return _malformed(request, f"{kind} takes no '#' marker")
    if marker == FULL:
        return request
    step = STEP.fullmatch(marker)
    if step is None:
        return _malformed(request, f"unknown promote marker #{marker} (use #step=N or #full)")
    return Request(
        kind=kind, value=value, target=request.target, full=False, step=int(step[1]) if step[1] else None
    )


def _malformed(request: Request, why: str) -> Request:
    return Request(kind=request.kind, value=request.value, target=request.target, malformed=why)


def value(token: str, target: str, *, full: bool = True, step: int | None = None) -> str:
    """The annotation value the CLI writes: `<token>@<version>#full` or `...#step=<N>`."""
    return f"{token}@{target}#{FULL if full else f'step={step}' if step else 'step'}"


def pending(values: dict[str, str | None], handled: HandledRequests) -> dict[str, Request]:
    """The requests whose value has not been handled yet, by kind."""
    return {
        kind: parse(kind, value)
        for kind in KINDS
        if (value := values.get(kind)) is not None and value != getattr(handled, kind)
    }


def refusal(
    request: Request,
    *,
    active_version: str | None,
    active_before: bool,
    phase: str | None,
    step: int | None = None,
) -> str | None:
    """Why a promote or abort cannot act now (None: it acts). `step`: the rollout's (0-based)."""
    if request.malformed:
        return request.malformed
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
    if not request.full and request.step is not None and step is not None and request.step != step + 1:
        return f"promote was for step {request.step}; the rollout is at step {step + 1} now"
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
