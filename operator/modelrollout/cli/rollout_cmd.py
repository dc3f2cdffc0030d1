"""`modelrollout status|promote|abort|retry|pause|resume NAME` (also `kubectl modelrollout ...`).

promote/abort/retry write a request annotation `<fresh token>@<version>`, naming the version
they are meant for; the operator handles each value exactly once (acts on the rollout of that
version, or refuses) and records the outcome in `status.handledRequests`, which the command
waits for and prints. With nothing to act on, the command refuses before writing anything.
pause/resume set the declarative `spec.rollout.paused` (under GitOps, change it in Git instead).
"""

from __future__ import annotations

import argparse
import sys
import time
import uuid
from datetime import UTC, datetime
from typing import Any

REQUESTS = {
    "promote": "skip the remaining steps and promote the canary",
    "abort": "roll the canary back now",
    "retry": "retry a rolled-back version",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    def add(name: str, help: str, func) -> argparse.ArgumentParser:
        parser = subparsers.add_parser(name, help=help)
        parser.add_argument("name", help="ModelDeployment name")
        parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
        parser.add_argument("--kubeconfig", default=None, help="kubeconfig file (default: $KUBECONFIG)")
        parser.add_argument("--context", default=None, help="kubeconfig context (default: the current one)")
        parser.set_defaults(func=func, action=name)
        return parser

    add("status", "show phase, weights and the last analysis checks", run_status)
    for name, help in REQUESTS.items():
        parser = add(name, help, run_request)
        parser.add_argument(
            "--wait",
            type=float,
            default=30.0,
            metavar="SECONDS",
            help="wait this long for the operator's answer (0: do not wait)",
        )
    add("pause", "hold the rollout at its current step (sets spec.rollout.paused)", run_pause)
    add("resume", "continue a paused rollout", run_pause)


def _client_and_namespace(args: argparse.Namespace):
    from modelrollout.kube.client import connect

    kube, namespace = connect(kubeconfig=args.kubeconfig, context=args.context)
    return kube, args.namespace or namespace


def _get(kube, namespace: str, name: str) -> dict[str, Any] | None:
    from modelrollout.kube import kinds as K

    body = kube.get(K.MODEL_DEPLOYMENT, namespace, name)
    if body is None:
        print(f"error: modeldeployment {namespace}/{name} not found", file=sys.stderr)
    return body


def run_status(args: argparse.Namespace) -> int:
    kube, namespace = _client_and_namespace(args)
    body = _get(kube, namespace, args.name)
    if body is None:
        return 1
    print(render_status(body))
    return 0


ACTIVE = ("Progressing", "Paused", "Promoting")


def request_target(kind: str, body: dict[str, Any]) -> tuple[str | None, str]:
    """(the version a request acts on, or None with the reason there is nothing to act on)."""
    status = body.get("status") or {}
    rollout = status.get("rollout") or {}
    if kind in ("promote", "abort"):
        if rollout.get("phase") in (*ACTIVE, "Baking"):  # a bake: abort rolls back, promote ends it
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


def run_request(args: argparse.Namespace) -> int:
    from modelrollout import GROUP
    from modelrollout.kube import kinds as K

    kube, namespace = _client_and_namespace(args)
    body = _get(kube, namespace, args.name)
    if body is None:
        return 1
    target, why = request_target(args.action, body)
    if target is None:
        print(f"{namespace}/{args.name}: {why}", file=sys.stderr)
        return 1
    value = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}@{target}"
    kube.patch(
        K.MODEL_DEPLOYMENT,
        namespace,
        args.name,
        {"metadata": {"annotations": {f"{GROUP}/{args.action}": value}}},
    )
    if args.wait <= 0:
        print(f"{args.action} of {target} sent to {namespace}/{args.name} ({value})")
        return 0
    result = _wait_for_answer(kube, namespace, args.name, args.action, value, args.wait)
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


def _wait_for_answer(kube, namespace: str, name: str, kind: str, value: str, seconds: float) -> dict | None:
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


def run_pause(args: argparse.Namespace) -> int:
    from modelrollout.kube import kinds as K

    kube, namespace = _client_and_namespace(args)
    if _get(kube, namespace, args.name) is None:
        return 1
    paused = args.action == "pause"
    kube.patch(K.MODEL_DEPLOYMENT, namespace, args.name, {"spec": {"rollout": {"paused": paused}}})
    print(f"{namespace}/{args.name}: spec.rollout.paused={str(paused).lower()}")
    return 0


def _table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def render_status(body: dict[str, Any]) -> str:
    """A person's view of a ModelDeployment's status (pure)."""
    meta, spec, status = body.get("metadata", {}), body.get("spec", {}), body.get("status") or {}
    lines = [
        _table(
            [
                ["NAME", "NAMESPACE", "MODE", "PHASE", "STABLE", "CANARY", "WEIGHT"],
                [
                    meta.get("name", "?"),
                    meta.get("namespace", "?"),
                    spec.get("mode", "online"),
                    status.get("phase") or "-",
                    status.get("stableVersion") or "-",
                    status.get("canaryVersion") or "-",
                    f"{status.get('canaryWeight') or 0}%",
                ],
            ]
        )
    ]
    if status.get("message"):
        lines.append(f"Message: {status['message']}")
    if status.get("rollout"):
        lines += _rollout_lines(status["rollout"])
    conditions = status.get("conditions") or []
    if conditions:
        rows = [["CONDITION", "STATUS", "REASON", "MESSAGE"]]
        rows += [
            [c.get("type", "?"), c.get("status", "?"), c.get("reason", "?"), (c.get("message") or "")[:80]]
            for c in conditions
        ]
        lines += ["", _table(rows)]
    return "\n".join(lines)


def _rollout_lines(rollout: dict[str, Any]) -> list[str]:
    lines: list[str] = []
    bake = rollout.get("bake")
    if bake:
        c = bake.get("counts", {})
        lines += [
            "",
            f"Bake of {rollout.get('canaryVersion')} until {bake.get('until')}: latest verdict "
            f"{bake.get('verdict') or '-'}; {c.get('passes', 0)} passed, {c.get('failures', 0)} failed, "
            f"{c.get('inconclusives', 0)} inconclusive, {c.get('errors', 0)} errors",
        ]
    counts = rollout.get("counts", {})
    lines += [
        "",
        f"Rollout of {rollout.get('canaryVersion')} (from {rollout.get('fromVersion')}): "
        f"{rollout.get('phase')}, step {rollout.get('step', 0) + 1}, weight desired "
        f"{rollout.get('desiredWeight', 0)}% / observed {rollout.get('observedWeight', 0)}%",
        f"Checks: {counts.get('passes', 0)} passed, {counts.get('failures', 0)} failed, "
        f"{counts.get('errors', 0)} errors, {counts.get('inconclusives', 0)} inconclusive",
    ]
    checks = rollout.get("checks") or []
    if checks:
        rows = [["CHECK", "VERDICT", "VALUE", "STABLE", "THRESHOLD", "SAMPLES", "TIME"]]
        rows += [
            [
                c.get("metric", "?"),
                c.get("verdict", "?"),
                _num(c.get("value")),
                _num(c.get("stableValue")),
                c.get("threshold") or "-",
                _num(c.get("samples")),
                c.get("time", "-"),
            ]
            for c in checks
        ]
        lines += ["", _table(rows)]
        lines += [
            f"  {c['metric']}: {c['message']}"
            for c in checks
            if c.get("verdict") != "pass" and c.get("message")
        ]
    return lines
