"""How the CLI shows ModelDeployments (pure): the status view, the `list` table, `-o json|yaml`,
and when a watched rollout is over."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from typing import Any

from modelrollout.api import yamlio
from modelrollout.api.spec import SpecError, parse_spec
from modelrollout.rollout.steps import effective_steps
from modelrollout.rollout.timing import parse_ts

ACTIVE = ("Progressing", "Paused", "Promoting")
BAD_PHASES = ("Degraded", "Failed", "RolledBack")
OUTPUTS = ("json", "yaml")


def table(rows: list[list[str]]) -> str:
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    return "\n".join(
        "   ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
    )


def _num(value: Any) -> str:
    return "-" if value is None else f"{value:.4g}" if isinstance(value, float) else str(value)


def age(created: str | None, now: datetime) -> str:
    """kubectl's AGE, coarsely: seconds below 2m, minutes below 2h, hours below 2d, then days."""
    if not created:
        return "<unknown>"
    seconds = max(0, int((now - datetime.fromisoformat(created.replace("Z", "+00:00"))).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= 2 * size:
            return f"{seconds // size}{unit}"
    return f"{seconds}s"


def step_of(status: dict[str, Any]) -> str:
    rollout = status.get("rollout") or {}
    return str(rollout.get("step", 0) + 1) if rollout.get("phase") in ACTIVE else "-"


def list_rows(items: list[dict[str, Any]], *, all_namespaces: bool, now: datetime) -> str:
    header = ["NAME", "MODE", "PHASE", "STABLE", "CANARY", "WEIGHT", "STEP", "AGE"]
    rows = [(["NAMESPACE"] if all_namespaces else []) + header]
    for body in sorted(items, key=lambda b: (b["metadata"].get("namespace", ""), b["metadata"]["name"])):
        meta, spec, status = body["metadata"], body.get("spec") or {}, body.get("status") or {}
        row = [
            meta["name"],
            spec.get("mode", "online"),
            status.get("phase") or "-",
            status.get("stableVersion") or "-",
            status.get("canaryVersion") or "-",
            str(status.get("canaryWeight") or 0),
            step_of(status),
            age(meta.get("creationTimestamp"), now),
        ]
        rows.append(([meta.get("namespace", "")] if all_namespaces else []) + row)
    return table(rows)


def as_output(obj: dict[str, Any], output: str) -> str:
    """`-o json` / `-o yaml`, as kubectl prints an object."""
    if output == "json":
        return json.dumps(obj, indent=4)
    return yamlio.dump(obj).rstrip("\n")


def as_list(items: list[dict[str, Any]]) -> dict[str, Any]:
    return {"apiVersion": "v1", "kind": "List", "metadata": {"resourceVersion": ""}, "items": items}


def finished(body: dict[str, Any]) -> bool:
    """The operator has seen the current spec and no rollout is in progress: a watch is over."""
    meta, status = body.get("metadata") or {}, body.get("status") or {}
    if status.get("observedGeneration") != meta.get("generation"):
        return False
    return (status.get("rollout") or {}).get("phase") not in ACTIVE


def exit_code(body: dict[str, Any]) -> int:
    """0 when it ended well, 1 when it is RolledBack, Failed or Degraded (as `kubectl argo
    rollouts status` fails on a degraded rollout)."""
    return 1 if (body.get("status") or {}).get("phase") in BAD_PHASES else 0


def render_status(body: dict[str, Any], now: datetime | None = None) -> str:
    """A person's view of a ModelDeployment's status."""
    now = now or datetime.now(UTC)
    meta, status = body.get("metadata", {}), body.get("status") or {}
    lines = [list_rows([body], all_namespaces=True, now=now)]
    if status.get("message"):
        lines.append(f"Message: {status['message']}")
    if status.get("rollout"):
        lines += _rollout_lines(status["rollout"], step_line(body.get("spec") or {}, status["rollout"], now))
    conditions = status.get("conditions") or []
    if conditions:
        rows = [["CONDITION", "STATUS", "REASON", "MESSAGE"]]
        rows += [
            [c.get("type", "?"), c.get("status", "?"), c.get("reason", "?"), (c.get("message") or "")[:80]]
            for c in conditions
        ]
        lines += ["", table(rows)]
    if meta.get("generation") != status.get("observedGeneration"):
        lines.append("(the operator has not seen the latest spec yet)")
    return "\n".join(lines)


def _rollout_lines(rollout: dict[str, Any], step: str | None) -> list[str]:
    counts = rollout.get("counts", {})
    lines = [
        "",
        f"Rollout of {rollout.get('canaryVersion')} (from {rollout.get('fromVersion')}): "
        f"{rollout.get('phase')}, step {rollout.get('step', 0) + 1}, weight desired "
        f"{rollout.get('desiredWeight', 0)}% / observed {rollout.get('observedWeight', 0)}%",
        *([step] if step else []),
        # counts are of analysis runs (what failureLimit and errorLimit count), not of checks:
        # one run with four checks in error is one error
        f"Analysis runs: {counts.get('passes', 0)} passed, {counts.get('failures', 0)} failed, "
        f"{_plural(counts.get('errors', 0), 'error')}, {counts.get('inconclusives', 0)} inconclusive",
    ]
    if rollout.get("analysisBlocked"):
        lines.append(f"Waiting: {rollout['analysisBlocked']}")
    lines += _bake_lines(rollout)
    checks = (rollout.get("bake") or {}).get("checks") or rollout.get("checks") or []
    if checks:
        rows = [["CHECK", "VERDICT", "VALUE", "STABLE", "THRESHOLD", "SAMPLES", "FROM", "TIME"]]
        rows += [
            [
                c.get("metric", "?"),
                c.get("verdict", "?"),
                _num(c.get("value")),
                _num(c.get("stableValue")),
                c.get("threshold") or "-",
                _num(c.get("samples")),
                _source(c.get("source")),
                c.get("time", "-"),
            ]
            for c in checks
        ]
        lines += ["", table(rows)]
        lines += [
            f"  {c['metric']}: {c['message']}"
            for c in checks
            if c.get("verdict") != "pass" and c.get("message")
        ]
    return lines


def step_line(spec: dict[str, Any], rollout: dict[str, Any], now: datetime) -> str | None:
    """Where a progressing rollout's step stands: its weight and when its pause ends (Argo's
    status shows the same), or what it waits for once the pause is over."""
    if rollout.get("phase") != "Progressing":
        return None
    try:
        parsed = parse_spec(spec)
    except SpecError:
        return None
    steps, index = effective_steps(parsed.rollout), rollout.get("step", 0)
    if index >= len(steps):
        return None
    head = f"Step {index + 1} of {len(steps)}: {steps[index].weight}%"
    started = parse_ts(rollout.get("stepStartedAt"))
    if started is None:
        return f"{head}, waiting for the weight to be live on ready canary pods"
    left = (started - now).total_seconds() + steps[index].pause_seconds
    if left > 0:
        ends = (now.replace(microsecond=0) + timedelta(seconds=round(left))).strftime("%Y-%m-%dT%H:%M:%SZ")
        return f"{head}, pause ends {ends} (in {_seconds(left)})"
    if parsed.rollout.analysis is None:
        return f"{head}, pause over: moving on"
    return f"{head}, pause over: moves on once the latest analysis passes"


def _seconds(seconds: float) -> str:
    seconds = round(seconds)
    hours, rest = divmod(seconds, 3600)
    minutes, secs = divmod(rest, 60)
    return "".join(f"{v}{u}" for v, u in ((hours, "h"), (minutes, "m"), (secs, "s")) if v) or "0s"


def _bake_lines(rollout: dict[str, Any]) -> list[str]:
    bake = rollout.get("bake")
    if not bake:
        return []
    c = bake.get("counts", {})
    return [
        f"Bake of {rollout.get('canaryVersion')} until {bake.get('until')}: latest verdict "
        f"{bake.get('verdict') or '-'}; analysis runs: {c.get('passes', 0)} passed, {c.get('failures', 0)} "
        f"failed, {c.get('inconclusives', 0)} inconclusive, {_plural(c.get('errors', 0), 'error')}"
    ]


def _plural(n: int, word: str) -> str:
    return f"{n} {word}" if n == 1 else f"{n} {word}s"


def _source(source: dict[str, Any] | None) -> str:
    if not source:
        return "inline"
    short = "cmat" if source.get("kind") == "ClusterModelAnalysisTemplate" else "mat"
    return f"{short}/{source.get('name')}@{source.get('generation', 0)}"
