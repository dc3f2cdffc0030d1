"""`promote [--full] | abort | retry | undo | pause | resume NAME` (also `kubectl modelrollout ...`).

promote/abort/retry write a request annotation naming the version (and for a one-step promote
the step) they are meant for: `<token>@<version>#step=<N>`, `#full` for `promote --full`. The
operator handles each value exactly once (acts on that rollout, or refuses) and records the
outcome in `status.handledRequests`, which the command waits for and prints. With nothing to act
on, the command refuses before writing anything. undo, pause and resume change the spec
(`spec.model` back to the previous stable version; `spec.rollout.paused`): under GitOps, make the
same change in Git instead.
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from modelrollout.cli.kubeopts import add_kube_options, connect, get_model_deployment
from modelrollout.cli.status_view import ACTIVE

REQUESTS = {
    "promote": "advance the rollout one step (--full: skip every remaining step and promote)",
    "abort": "roll the canary back now",
    "retry": "retry a rolled-back version (or continue a rollout held by onInconclusive: pause)",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help)
        parser.add_argument("name", help="ModelDeployment name")
        add_kube_options(parser)
        parser.set_defaults(func=func, action=name)
        return parser

    for name, help in REQUESTS.items():
        parser = add(name, help, run_request)
        parser.add_argument(
            "--wait",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="wait this long for the operator's answer (0: do not wait)",
        )
        if name == "promote":
            parser.add_argument(
                "--full", action="store_true", help="skip every remaining step (Argo's --full)"
            )
    add("undo", "set spec.model back to the version the last rollout started from", run_undo)
    add("pause", "hold the rollout at its current step (sets spec.rollout.paused)", run_pause)
    add("resume", "continue a paused rollout", run_pause)


def request_target(kind: str, body: dict[str, Any]) -> tuple[str | None, str]:
    """(the version a request acts on, or None with the reason there is nothing to act on)."""
    status = body.get("status") or {}
    rollout = status.get("rollout") or {}
    if kind in ("promote", "abort"):
        if rollout.get("phase") == "Baking":  # abort rolls the bake back, promote ends it
            return rollout.get("canaryVersion"), ""
        if rollout.get("phase") in ACTIVE:
            if kind == "promote" and rollout.get("phase") == "Promoting":
                return None, f"{rollout.get('canaryVersion')} is already being promoted"
            return rollout.get("canaryVersion"), ""
        last = f" (the last rollout is {rollout['phase']})" if rollout.get("phase") else ""
        return None, f"nothing to {kind}: no rollout is in progress{last}"
    model = (body.get("spec") or {}).get("model") or {}
    if (
        status.get("rejectedVersion")
        and status["rejectedVersion"] == f"{model.get('version')}@{model.get('image')}"
    ):
        return model.get("version"), ""
    if rollout.get("phase") in ACTIVE and rollout.get("analysisHold"):
        return rollout.get("canaryVersion"), ""  # held by onInconclusive: pause; a retry continues it
    return None, f"nothing to retry: {model.get('version')} was not rolled back"


def request_value(kind: str, target: str, body: dict[str, Any], *, full: bool, token: str) -> str:
    """The annotation value: promote names the step it advances from (1-based), or #full."""
    from modelrollout.rollout import requests as Q

    if kind != "promote":
        return f"{token}@{target}"
    step = ((body.get("status") or {}).get("rollout") or {}).get("step", 0) + 1
    return Q.value(token, target, full=full, step=None if full else step)


def run_request(args: argparse.Namespace) -> int:
    from modelrollout import GROUP
    from modelrollout.kube import kinds as K

    kube, namespace = connect(args)
    body = get_model_deployment(kube, namespace, args.name)
    if body is None:
        return 1
    target, why = request_target(args.action, body)
    if target is None:
        print(f"{namespace}/{args.name}: {why}", file=sys.stderr)
        return 1
    token = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    value = request_value(args.action, target, body, full=getattr(args, "full", False), token=token)
    kube.patch(
        K.MODEL_DEPLOYMENT,
        namespace,
        args.name,
        {"metadata": {"annotations": {f"{GROUP}/{args.action}": value}}},
    )
    if args.wait <= 0:
        print(f"{args.action} of {target} sent to {namespace}/{args.name} ({value})")
        return 0
    result = wait_for_answer(kube, namespace, args.name, args.action, value, args.wait)
    if result is None:
        print(
            f"{args.action} of {target} sent to {namespace}/{args.name}; the operator has not answered "
            f"within {args.wait:g}s (is it running?)",
            file=sys.stderr,
        )
        return 2
    accepted = result.get("outcome") == "Accepted"
    print(
        f"{namespace}/{args.name}: {args.action} {'accepted' if accepted else 'refused'}: {result.get('message', '')}",
        file=sys.stdout if accepted else sys.stderr,
    )
    return 0 if accepted else 1


def wait_for_answer(kube, namespace: str, name: str, kind: str, value: str, seconds: float) -> dict | None:
    """The operator's outcome for this request value, polled until `seconds` pass."""
    from modelrollout.kube import kinds as K

    deadline = time.monotonic() + seconds
    while True:
        body = kube.get(K.MODEL_DEPLOYMENT, namespace, name) or {}
        handled = (body.get("status") or {}).get("handledRequests") or {}
        if handled.get(kind) == value:
            return next((r for r in handled.get("results") or [] if r.get("value") == value), {})
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(1.0, max(deadline - time.monotonic(), 0.05)))


def undo_patch(body: dict[str, Any]) -> tuple[dict[str, Any] | None, str]:
    """(the spec patch back to the version the last rollout started from, what it does) — or
    (None, why there is nothing to undo). The image comes from status.rollout.fromImage."""
    rollout = (body.get("status") or {}).get("rollout") or {}
    model = (body.get("spec") or {}).get("model") or {}
    version, image = rollout.get("fromVersion"), rollout.get("fromImage")
    if not version:
        return None, "nothing to undo: no rollout has run yet"
    if not image:
        return None, (
            f"the last rollout started from {version}, but its image was not recorded (an older "
            "operator ran it): set spec.model.version and spec.model.image yourself"
        )
    if (model.get("version"), model.get("image")) == (version, image):
        return None, f"nothing to undo: spec.model is already {version} ({image})"
    patch = {"spec": {"model": {"version": version, "image": image}}}
    return patch, f"spec.model {model.get('version')} -> {version} ({image})"


def run_undo(args: argparse.Namespace) -> int:
    from modelrollout.kube import kinds as K

    kube, namespace = connect(args)
    body = get_model_deployment(kube, namespace, args.name)
    if body is None:
        return 1
    patch, what = undo_patch(body)
    if patch is None:
        print(f"{namespace}/{args.name}: {what}", file=sys.stderr)
        return 1
    kube.patch(K.MODEL_DEPLOYMENT, namespace, args.name, patch)
    print(f"{namespace}/{args.name}: {what}")
    return 0


def run_pause(args: argparse.Namespace) -> int:
    from modelrollout.kube import kinds as K

    kube, namespace = connect(args)
    if get_model_deployment(kube, namespace, args.name) is None:
        return 1
    paused = args.action == "pause"
    kube.patch(K.MODEL_DEPLOYMENT, namespace, args.name, {"spec": {"rollout": {"paused": paused}}})
    print(f"{namespace}/{args.name}: spec.rollout.paused={str(paused).lower()}")
    return 0
