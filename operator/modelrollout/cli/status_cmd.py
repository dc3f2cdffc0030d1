"""`modelrollout status NAME [-o json|yaml] [--watch]` and `modelrollout list [-A]`."""

from __future__ import annotations

import argparse
from datetime import UTC, datetime

from modelrollout.cli import status_view as V
from modelrollout.cli.kubeopts import add_kube_options, connect, get_model_deployment

DEFAULT_WATCH_TIMEOUT = 3600.0


def register(subparsers: argparse._SubParsersAction) -> None:
    status = subparsers.add_parser(
        "status", help="phase, weights and the last analysis checks of a ModelDeployment"
    )
    status.add_argument("name", help="ModelDeployment name")
    status.add_argument("-o", "--output", choices=V.OUTPUTS, help="print the object as json or yaml")
    status.add_argument(
        "-w",
        "--watch",
        action="store_true",
        help="redraw as the rollout moves; ends when it is over (exit 0, or 1 when rolled back or "
        "failed), after --timeout (exit 2) or on Ctrl-C",
    )
    status.add_argument(
        "--timeout",
        type=float,
        default=DEFAULT_WATCH_TIMEOUT,
        metavar="SECONDS",
        help=f"longest --watch (default {DEFAULT_WATCH_TIMEOUT:g})",
    )
    add_kube_options(status)
    status.set_defaults(func=run_status)

    listing = subparsers.add_parser("list", aliases=["ls"], help="ModelDeployments in a namespace (-A: all)")
    listing.add_argument("-A", "--all-namespaces", action="store_true", help="list them in every namespace")
    listing.add_argument("-o", "--output", choices=V.OUTPUTS, help="print a List as json or yaml")
    add_kube_options(listing)
    listing.set_defaults(func=run_list)


def run_status(args: argparse.Namespace) -> int:
    kube, namespace = connect(args)
    if args.watch:
        from modelrollout.cli.watch import Screen, watch

        if args.output:
            draw = lambda body: print(V.as_output(body, args.output), flush=True)  # noqa: E731
        else:
            screen = Screen()
            draw = lambda body: screen.show(V.render_status(body))  # noqa: E731
        return watch(kube, namespace, args.name, draw=draw, timeout=args.timeout)
    body = get_model_deployment(kube, namespace, args.name)
    if body is None:
        return 1
    print(V.as_output(body, args.output) if args.output else V.render_status(body))
    return 0


def run_list(args: argparse.Namespace) -> int:
    from modelrollout.kube import kinds as K

    kube, namespace = connect(args)
    items = kube.list(K.MODEL_DEPLOYMENT, None if args.all_namespaces else namespace)
    if args.output:
        print(V.as_output(V.as_list(items), args.output))
    elif not items:
        where = "" if args.all_namespaces else f" in {namespace} namespace"
        print(f"No resources found{where}.")
    else:
        print(V.list_rows(items, all_namespaces=args.all_namespaces, now=datetime.now(UTC)))
    return 0
