"""`modelrollout operator`: run the kopf operator."""

from __future__ import annotations

import argparse
import logging


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("operator", help="run the operator (against the current kubeconfig)")
    scope = parser.add_mutually_exclusive_group()
    scope.add_argument(
        "-n",
        "--namespace",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="kopf liveness endpoint (empty to disable)"
    )
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    import logging

    from modelrollout import handlers  # registers the handlers with kopf

    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
    )
    if not args.verbose:
        logging.getLogger("kopf.objects").addFilter(quiet_wake)
    handlers.run(namespaces=args.namespace, liveness_endpoint=args.liveness or None)
    return 0


def quiet_wake(record: logging.LogRecord) -> bool:
    """kopf logs every run of the watch-event handler at INFO (one line per watch event of
    every object): kept out of the log unless --verbose."""
    return not (record.levelno <= logging.INFO and "Handler 'wake'" in record.getMessage())
