"""`modelrollout render FILE`: print the children the operator would create (no cluster)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("render", help="print the manifests a ModelDeployment becomes")
    parser.add_argument("file", type=Path, help="ModelDeployment YAML ('-' for stdin)")
    parser.add_argument("--pod-monitor", action="store_true", help="include the PodMonitor")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from datetime import UTC, datetime

    import yaml

    from modelrollout.api import yamlio
    from modelrollout.api.resource import ModelDeployment
    from modelrollout.api.spec import SpecError
    from modelrollout.api.status import ModelDeploymentStatus
    from modelrollout.reconcile.observed import Observed
    from modelrollout.reconcile.plan import plan

    text = sys.stdin.read() if str(args.file) == "-" else args.file.read_text()
    docs = [d for d in yaml.safe_load_all(text) if d and d.get("kind") == "ModelDeployment"]
    if not docs:
        print("error: no ModelDeployment in input", file=sys.stderr)
        return 2
    out = []
    for body in docs:
        body.setdefault("metadata", {}).setdefault("uid", "00000000-0000-0000-0000-000000000000")
        try:
            md = ModelDeployment.from_body(body)
        except SpecError as exc:
            print(f"error: {body['metadata'].get('name')}: {exc}", file=sys.stderr)
            return 2
        decided = plan(
            md, Observed.of(pod_monitor_served=args.pod_monitor), ModelDeploymentStatus(), datetime.now(UTC)
        )
        out.extend(decided.apply)
    print(yamlio.dump_all(out), end="")
    return 0
