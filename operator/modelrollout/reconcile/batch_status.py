"""Batch status (pure): the last runs from the CronJob, its Jobs and their pods' reports."""

from __future__ import annotations

import json
from typing import Any

from modelrollout.api.status import BatchRun, BatchStatus


def _finished(job: dict[str, Any]) -> tuple[str, str | None, str | None]:
    """(phase, reason, message) of a Job from its conditions."""
    for cond in job.get("status", {}).get("conditions", []) or []:
        if cond.get("status") != "True":
            continue
        if cond.get("type") == "Complete":
            return "Succeeded", cond.get("reason"), cond.get("message")
        if cond.get("type") == "Failed":
            return "Failed", cond.get("reason") or "Failed", cond.get("message")
    return "Running", None, None


def runner_report(pods: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The newest JSON report a pod of the Job left in its termination message."""
    reports = []
    for pod_obj in pods:
        for status in pod_obj.get("status", {}).get("containerStatuses", []) or []:
            terminated = (status.get("state") or {}).get("terminated") or {}
            message = terminated.get("message")
            if not message:
                continue
            try:
                report = json.loads(message)
            except ValueError:
                report = {"status": "failed", "error": message[-500:]}
            reports.append((terminated.get("finishedAt") or "", report))
    return max(reports, key=lambda r: r[0])[1] if reports else None


def job_run(job: dict[str, Any], pods: list[dict[str, Any]]) -> BatchRun:
    phase, reason, message = _finished(job)
    report = runner_report(pods) or {}
    published = report.get("published") or {}
    if report.get("status") in ("rejected", "invalid_input", "failed"):
        reason = (
            reason
            if phase != "Failed"
            else {"rejected": "VerificationFailed", "invalid_input": "InvalidInput", "failed": "RunFailed"}[
                report["status"]
            ]
        )
        checks = [
            c for c in (report.get("verification") or {}).get("checks", []) if c.get("verdict") == "fail"
        ]
        detail = report.get("error") or "; ".join(
            f"{c.get('name')}={c.get('value')} (threshold {c.get('threshold')})" for c in checks
        )
        message = f"{report['status']}: {detail}" if detail else message
    status = job.get("status", {})
    return BatchRun(
        job=job["metadata"]["name"],
        run_id=report.get("run_id") or job["metadata"]["name"],
        phase=phase,
        status=report.get("status"),
        rows_in=report.get("rows_in"),
        rows_written=report.get("rows_written"),
        published_version=published.get("run_id"),
        reason=reason,
        message=(message or None) and message[:2048],
        started_at=status.get("startTime"),
        finished_at=status.get("completionTime"),
    )


def batch_status(
    *,
    table: str,
    cronjob: dict[str, Any] | None,
    jobs: list[dict[str, Any]],
    pods_by_job: dict[str, list[dict[str, Any]]],
    previous: BatchStatus | None,
) -> BatchStatus:
    previous = previous or BatchStatus()
    cj_status = (cronjob or {}).get("status", {}) or {}
    ordered = sorted(
        jobs,
        key=lambda j: j.get("status", {}).get("startTime") or j["metadata"].get("creationTimestamp") or "",
    )
    runs = [job_run(j, pods_by_job.get(j["metadata"]["name"], [])) for j in ordered]
    last = runs[-1] if runs else previous.last_run
    published = [r for r in runs if r.phase == "Succeeded" and r.published_version]
    failures = 0
    for run in reversed(runs):
        if run.phase == "Succeeded":
            break
        if run.phase == "Failed":
            failures += 1
    latest_published = published[-1] if published else None
    return BatchStatus(
        last_schedule_time=cj_status.get("lastScheduleTime") or previous.last_schedule_time,
        last_successful_time=cj_status.get("lastSuccessfulTime") or previous.last_successful_time,
        table=table,
        published_version=latest_published.published_version
        if latest_published
        else previous.published_version,
        rows=latest_published.rows_written if latest_published else previous.rows,
        last_run=last,
        failures=failures if runs else previous.failures,
    )
