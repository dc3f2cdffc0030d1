"""What every command that talks to a cluster shares: kubectl's `-n`, `--context` and
`--kubeconfig` (accepted before or after the subcommand, as kubectl users type them), the
client they select, and the name the command was invoked by (for usage lines)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

PLUGIN_PREFIX = "kubectl-modelrollout"


def prog_name(argv0: str | None = None) -> str:
    """`kubectl modelrollout` when run as the kubectl plugin (kubectl execs `kubectl-modelrollout`),
    else `modelrollout`."""
    name = Path(argv0 if argv0 is not None else sys.argv[0]).name
    return "kubectl modelrollout" if name.startswith(PLUGIN_PREFIX) else "modelrollout"


def add_kube_options(parser: argparse.ArgumentParser, *, top_level: bool = False) -> None:
    """-n/--namespace, --context, --kubeconfig. On the top-level parser they have defaults; on a
    subcommand they are only set when given there (SUPPRESS), so `modelrollout --context x
    status iris` and `modelrollout status iris --context x` both work."""
    default: Any = None if top_level else argparse.SUPPRESS
    parser.add_argument(
        "-n", "--namespace", default=default, help="namespace (default: the kubeconfig context's)"
    )
    parser.add_argument("--context", default=default, help="kubeconfig context (default: the current one)")
    parser.add_argument("--kubeconfig", default=default, help="kubeconfig file (default: $KUBECONFIG)")


def connect(args: argparse.Namespace):
    """(KubeClient, namespace) for the options given."""
    from modelrollout.kube.client import connect as kube_connect

    try:
        kube, namespace = kube_connect(
            kubeconfig=getattr(args, "kubeconfig", None), context=getattr(args, "context", None)
        )
    except (ValueError, OSError) as exc:  # an unknown context, an unreadable kubeconfig
        raise SystemExit(f"error: {exc}") from None
    return kube, getattr(args, "namespace", None) or namespace


def get_model_deployment(kube, namespace: str, name: str) -> dict[str, Any] | None:
    from modelrollout.kube import kinds as K

    body = kube.get(K.MODEL_DEPLOYMENT, namespace, name)
    if body is None:
        print(
            f"Error from server (NotFound): modeldeployments {name!r} not found in {namespace}",
            file=sys.stderr,
        )
    return body
