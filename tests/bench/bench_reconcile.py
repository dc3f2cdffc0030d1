"""What 1,000 ModelDeployments cost one operator at steady state.

Runs the operator's real reconcile (reconcile.pipeline.reconcile: parse, observe, plan, apply, report)
against an in-memory API that answers GETs with what the operator itself applied, and prints,
per object and for 1,000 objects at the default resync period: API requests per reconcile,
CPU time per reconcile, and the share of one core that makes. Ratios, not wall-clock targets.

    python -m tests.bench.run reconcile [--objects 1000] [--resync 30]
"""

from __future__ import annotations

import argparse
import copy
import time
from collections import Counter
from datetime import UTC, datetime
from typing import Any

from modelrollout.kube.kinds import Kind, kind_of
from modelrollout.reconcile import pipeline
from tests.support.samples import body


class MemoryKube:
    """Answers like an API server that has exactly what was applied, rolled out and ready."""

    def __init__(self) -> None:
        self.objects: dict[tuple[str, str, str], dict[str, Any]] = {}
        self.calls: Counter[str] = Counter()

    def get(self, kind: Kind, namespace: str, name: str) -> dict[str, Any] | None:
        self.calls["GET"] += 1
        return copy.deepcopy(self.objects.get((kind.kind, namespace, name)))

    def list(self, kind: Kind, namespace: str, *, label_selector: str | None = None) -> list[dict[str, Any]]:
        self.calls["LIST"] += 1
        return []

    def apply(self, manifest: dict[str, Any]) -> dict[str, Any]:
        self.calls["APPLY"] += 1
        obj = copy.deepcopy(manifest)
        obj["metadata"]["generation"] = 1
        if obj["kind"] == "Deployment":
            n = obj["spec"].get("replicas", 1)
            obj["status"] = {
                "observedGeneration": 1,
                "replicas": n,
                "updatedReplicas": n,
                "readyReplicas": n,
                "availableReplicas": n,
            }
        self.objects[(kind_of(obj).kind, obj["metadata"]["namespace"], obj["metadata"]["name"])] = obj
        return obj

    def delete(self, kind: Kind, namespace: str, name: str) -> bool:
        self.calls["DELETE"] += 1
        return self.objects.pop((kind.kind, namespace, name), None) is not None

    def patch_status(
        self, namespace: str, name: str, status: dict[str, Any], kind: Kind | None = None
    ) -> None:
        self.calls["PATCH_STATUS"] += 1
        self.statuses[(namespace, name)] = status

    def patch(self, *args: Any, **kwargs: Any) -> dict[str, Any]:
        self.calls["PATCH"] += 1
        return {}

    def served(self, kind: Kind, ttl: float = 300.0) -> bool:
        return False  # discovery is cached for minutes: not a per-reconcile cost

    def event(self, *args: Any, **kwargs: Any) -> None:
        self.calls["EVENT"] += 1

    statuses: dict[tuple[str, str], dict[str, Any]] = {}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--objects", type=int, default=1000)
    parser.add_argument("--resync", type=float, default=30.0, help="seconds between reconciles of one object")
    args = parser.parse_args(argv)
    kube = MemoryKube()
    kube.statuses = {}
    bodies = [body(name=f"model-{i}", namespace=f"team-{i % 20}") for i in range(args.objects)]
    now = datetime.now(UTC)
    for b in bodies:  # converge: create children, then a second pass sees them ready
        for _ in range(2):
            b["status"] = kube.statuses.get((b["metadata"]["namespace"], b["metadata"]["name"]))
            pipeline.reconcile(kube, b, now=now)
    kube.calls.clear()
    started = time.process_time()
    for b in bodies:
        b["status"] = kube.statuses.get((b["metadata"]["namespace"], b["metadata"]["name"]))
        pipeline.reconcile(kube, b, now=now)
    cpu = time.process_time() - started
    per_object = {k: v / args.objects for k, v in sorted(kube.calls.items())}
    requests_per_reconcile = sum(per_object.values())
    rate = args.objects / args.resync
    rows = [
        ("objects", f"{args.objects}"),
        ("resync period (s)", f"{args.resync:g}"),
        (
            "API requests per steady reconcile",
            f"{requests_per_reconcile:.1f} ({', '.join(f'{k} {v:.1f}' for k, v in per_object.items())})",
        ),
        (
            "writes per steady reconcile",
            f"{sum(v for k, v in per_object.items() if k != 'GET' and k != 'LIST'):.2f}",
        ),
        ("CPU per reconcile (ms)", f"{1000 * cpu / args.objects:.2f}"),
        (f"reconciles/s for {args.objects} objects", f"{rate:.1f}"),
        ("API requests/s", f"{rate * requests_per_reconcile:.0f}"),
        ("operator CPU share of one core", f"{100 * rate * cpu / args.objects:.1f}%"),
    ]
    width = max(len(k) for k, _ in rows)
    print(f"{'measure'.ljust(width)}  value")
    for key, value in rows:
        print(f"{key.ljust(width)}  {value}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
