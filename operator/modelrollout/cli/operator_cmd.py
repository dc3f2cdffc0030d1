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
        dest="watch_namespaces",
        action="append",
        default=[],
        help="watch only this namespace (repeatable); default: all namespaces",
    )
    parser.add_argument(
        "--liveness", default="http://0.0.0.0:8080/healthz", help="kopf liveness endpoint (empty to disable)"
    )
    parser.add_argument(
        "--log-format",
        choices=("plain", "json"),
        default="plain",
        help="plain text lines, or JSON (kopf's formatter, one object per line)",
    )
    parser.add_argument("--verbose", action="store_true")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelrollout import handlers  # registers the handlers with kopf

    handlers.configure_logging(log_format=args.log_format, verbose=args.verbose)
    if not args.verbose:
        logging.getLogger("kopf.objects").addFilter(quiet_wake)
    # `modelrollout -n ml operator` (the option before the subcommand) watches ml too
    namespaces = args.watch_namespaces or ([args.namespace] if getattr(args, "namespace", None) else [])
    handlers.run(namespaces=namespaces, liveness_endpoint=args.liveness or None)
    return 0


def quiet_wake(record: logging.LogRecord) -> bool:
    """kopf logs every run of the watch-event handler at INFO (one line per watch event of
    every object): kept out of the log unless --verbose."""
    return not (record.levelno <= logging.INFO and "Handler 'wake'" in record.getMessage())
