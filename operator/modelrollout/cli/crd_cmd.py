"""`modelrollout crd`: print or write the generated CustomResourceDefinition."""

from __future__ import annotations

import argparse
from pathlib import Path


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("crd", help="print the ModelDeployment CRD generated from the API models")
    parser.add_argument("--output-dir", type=Path, help="write crds/<group>_<plural>.yaml there instead")
    parser.add_argument(
        "--rbac-template", type=Path, help="also write the chart's RBAC template (from kube/permissions.py)"
    )
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    from modelrollout.api.crd import CRD_FILE, crd_yaml
    from modelrollout.kube.permissions import chart_rbac_template

    if args.rbac_template is not None:
        args.rbac_template.write_text(chart_rbac_template())
        print(f"wrote {args.rbac_template}")
    text = crd_yaml()
    if args.output_dir is None:
        print(text, end="")
        return 0
    args.output_dir.mkdir(parents=True, exist_ok=True)
    path = args.output_dir / CRD_FILE
    path.write_text(text)
    print(f"wrote {path}")
    return 0
