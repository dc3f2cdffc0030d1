"""`modelrollout status|promote|abort|retry|pause|resume NAME` (also `kubectl modelrollout ...`).

promote/abort/retry write a request annotation with a fresh token; the operator acts on each
token exactly once and records it in `status.handledRequests`. pause/resume set the
declarative `spec.rollout.paused` (under GitOps, change it in Git instead).
"""

from __future__ import annotations

import argparse
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

REQUESTS = {
    "promote": "skip the remaining steps and promote the canary",
    "abort": "roll the canary back now",
    "retry": "retry a rolled-back version",
}


def register(subparsers: argparse._SubParsersAction) -> None:
    def add(name: str, help: str, func) -> None:
        parser = subparsers.add_parser(name, help=help)
        parser.add_argument("name", help="ModelDeployment name")
        parser.add_argument("-n", "--namespace", default=None, help="namespace (default: the context's)")
        parser.set_defaults(func=func, action=name)

    add("status", "show phase, weights and the last analysis checks", run_status)
    for name, help in REQUESTS.items():
        add(name, help, run_request)
    add("pause", "hold the rollout at its current step (sets spec.rollout.paused)", run_pause)
    add("resume", "continue a paused rollout", run_pause)


def _client_and_namespace(args: argparse.Namespace):
    from kubernetes import config

    from modelrollout.kube.client import KubeClient, load_api_client

    namespace = args.namespace
    if namespace is None:
        try:
            _, context = config.list_kube_config_contexts()
            namespace = context.get("context", {}).get("namespace", "default")
        except Exception:  # noqa: BLE001 - in-cluster or no kubeconfig: the default namespace
            namespace = "default"
    return KubeClient(load_api_client()), namespace


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


def run_request(args: argparse.Namespace) -> int:
    from modelrollout import GROUP
    from modelrollout.kube import kinds as K

    kube, namespace = _client_and_namespace(args)
    if _get(kube, namespace, args.name) is None:
        return 1
    token = f"{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}-{uuid.uuid4().hex[:6]}"
    kube.patch(
        K.MODEL_DEPLOYMENT,
        namespace,
        args.name,
        {"metadata": {"annotations": {f"{GROUP}/{args.action}": token}}},
    )
    print(f"{args.action} requested for {namespace}/{args.name} (token {token})")
    return 0


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
    rollout = status.get("rollout")
    if rollout:
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
    conditions = status.get("conditions") or []
    if conditions:
        rows = [["CONDITION", "STATUS", "REASON", "MESSAGE"]]
        rows += [
            [c.get("type", "?"), c.get("status", "?"), c.get("reason", "?"), (c.get("message") or "")[:80]]
            for c in conditions
        ]
        lines += ["", _table(rows)]
    return "\n".join(lines)
