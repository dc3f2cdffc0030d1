"""The run report: one JSON object the operator reads from the pod's termination message.

Kubernetes keeps at most 4096 bytes of ``/dev/termination-log``, so :func:`render` shrinks the
report (timings first, then check details, then the error text) until it fits, always keeping
``status``, the row counts and every check's verdict.

Statuses and exit codes:

======================  ====  ==========================================================
``published``           0     verified and published; ``published`` names the new version
``already_published``   0     this run id was published before; nothing was written again
``waiting``             0     this shard is done; another shard will publish
``rejected``            3     verification failed; nothing published (see ``verification``)
``invalid_input``       2     bad input or arguments (missing column, wrong type, empty...)
``failed``              1     anything else (store unreachable, predictor error...)
======================  ====  ==========================================================
"""

from __future__ import annotations

import json
import sys
from typing import Any

from ..store.base import PublishedVersion
from .runner import RunConfig, RunResult

TERMINATION_LOG_LIMIT = 4096
EXIT_CODES = {
    "published": 0,
    "already_published": 0,
    "waiting": 0,
    "rejected": 3,
    "invalid_input": 2,
    "failed": 1,
}


def exit_code(status: str) -> int:
    return EXIT_CODES.get(status, 1)


def version_summary(version: PublishedVersion | None) -> dict[str, Any] | None:
    if version is None:
        return None
    return {
        "run_id": version.run_id,
        "physical_table": version.physical,
        "model_version": version.model_version,
        "rows": version.rows,
        "published_at": version.published_at,
    }


def build(
    *, config: RunConfig | None, result: RunResult | None, status: str, store_url: str | None = None,
    input_description: str | None = None, error: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The report of one invocation; ``config``/``result`` may be missing when it failed early."""
    outcome = result.outcome if result else None
    report: dict[str, Any] = {
        "status": status,
        "table": config.table if config else None,
        "run_id": config.run_id if config else None,
        "shard": {"index": config.shard_index, "count": config.shard_count} if config else None,
        "model_version": config.model_version if config else None,
        "rows_in": result.rows_in if result else 0,
        "rows_written": result.rows_written if result else 0,
        "published": version_summary(outcome.version) if outcome else None,
        "verification": outcome.verification if outcome else None,
        "input": input_description,
        "store": store_url,
        "error": error or (outcome.error if outcome else None),
    }
    if outcome and outcome.status == "waiting":
        report["waiting"] = {"shards_done": outcome.shards_done, "shard_count": outcome.shard_count}
    if result and result.timings:
        report["timings"] = {k: round(v, 3) for k, v in result.timings.items()}
    report["peak_rss_mb"] = peak_rss_mb()
    return report


def peak_rss_mb() -> float | None:
    """This process's peak resident memory (Linux ``VmHWM``), for sizing the Job's memory limit.

    Not ``getrusage``: its ``ru_maxrss`` keeps the parent's size from before ``exec``.
    """
    try:
        with open("/proc/self/status", encoding="ascii") as fh:
            for line in fh:
                if line.startswith("VmHWM:"):
                    return round(int(line.split()[1]) / 1024, 1)
    except OSError:
        return None
    return None


def render(report: dict[str, Any], *, limit: int = TERMINATION_LOG_LIMIT) -> str:
    """Compact JSON no longer than ``limit`` bytes (UTF-8)."""
    report = json.loads(json.dumps(report, default=str))
    steps = [
        lambda r: r.pop("timings", None),
        lambda r: r.pop("input", None),
        lambda r: [c.pop("detail", None) for c in (r.get("verification") or {}).get("checks", [])],
        lambda r: r.update(error=_cut(r.get("error"), 1000)),
        lambda r: r.update(error=_cut(r.get("error"), 200)),
        lambda r: r.pop("published", None),
    ]
    text = _dump(report)
    for step in steps:
        if len(text.encode()) <= limit:
            return text
        step(report)
        text = _dump(report)
    if len(text.encode()) > limit:
        text = _dump(
            {
                "status": report["status"],
                "run_id": report.get("run_id"),
                "error": _cut(report.get("error"), 100),
            }
        )
    return text


def _dump(report: dict[str, Any]) -> str:
    return json.dumps(report, separators=(",", ":"), sort_keys=False)


def _cut(text: str | None, size: int) -> str | None:
    if text is None or len(text) <= size:
        return text
    return text[: size - 3] + "..."


def emit(report: dict[str, Any], text: str, *, report_file: str | None, prog: str) -> None:
    """Print a run's JSON report (the termination message reads stdout's last line), copy it
    to `report_file` when asked (a warning, never a failure, if it cannot be written), and say
    the error on stderr."""
    print(text, flush=True)
    if report_file:
        try:
            with open(report_file, "w", encoding="utf-8") as fh:
                fh.write(text)
        except OSError as exc:
            print(f"{prog}: warning: cannot write report to {report_file}: {exc}", file=sys.stderr)
    if report.get("error"):
        print(f"{prog}: {report['status']}: {report['error']}", file=sys.stderr)
