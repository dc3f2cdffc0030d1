"""The `modelrollout` command (also `kubectl modelrollout`).

Each subcommand lives in its own module under `modelrollout.cli` and exposes
`register(subparsers)`, which adds its parser and sets `func` to a callable taking the
parsed arguments and returning an exit code. Modules are imported lazily so that, e.g.,
`modelrollout advise` does not pay for importing kopf. kubectl's `-n`, `--context` and
`--kubeconfig` are accepted before the subcommand and after it. Every command needs the
`operator` extra (`pip install 'modelrollout[operator]'`); without it `main` says so (deps.py).
"""

from __future__ import annotations

import argparse
import importlib
import sys

from modelrollout.cli.deps import missing_message, missing_operator_modules
from modelrollout.cli.kubeopts import add_kube_options, prog_name

# subcommand module names under modelrollout.cli, in help order
SUBCOMMANDS = ("status", "request", "operator", "render", "crd", "advise")


def build_parser(prog: str | None = None) -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog=prog or prog_name(),
        description="Serve ML models on Kubernetes and roll new versions out safely.",
    )
    add_kube_options(parser, top_level=True)
    subparsers = parser.add_subparsers(dest="command", metavar="COMMAND")
    subparsers.required = True
    for name in SUBCOMMANDS:
        module = importlib.import_module(f"modelrollout.cli.{name}_cmd")
        module.register(subparsers)
    return parser


def main(argv: list[str] | None = None, prog: str | None = None) -> int:
    missing = missing_operator_modules()
    if missing:  # the data-plane install (what bentos use) lacks the operator extra
        print(missing_message(missing), file=sys.stderr)
        return 1
    parser = build_parser(prog)
    args = parser.parse_args(argv)
    try:
        return int(args.func(args) or 0)
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
