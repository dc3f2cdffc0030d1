"""Batch workloads: the CronJob (Indexed Job when sharded) and the batch status read back."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import kubernetes_validate
import pytest

from modelrollout.api import conditions as C
from modelrollout.api.status import ModelDeploymentStatus
from modelrollout.reconcile.batch_status import batch_status, runner_report
from modelrollout.reconcile.observed import Observed
from modelrollout.reconcile.plan import plan
from modelrollout.render import serving as R
from modelrollout.render.cronjob import cronjob
from modelrollout.render.store import table_name
from tests.support.samples import md
from tests.unit.test_plan import as_server_returns

NOW = datetime(2026, 11, 21, 2, 5, tzinfo=UTC)
BATCH = {
    "schedule": "0 2 * * *",
    "volumeClaimName": "preds",
    "predictor": "batch:predictor",
    "input": {"path": "/data/in.parquet", "keyColumns": ["user_id", "day"]},
}


def batch_md(mode="batch", **overrides):
    return md({"mode": mode, "batch": {**BATCH, **overrides}})


@pytest.mark.parametrize(
    "variant",
    [
        {},
        {"shards": 4},
        {"store": {"type": "postgres", "dsnSecretRef": {"name": "pg", "key": "dsn"}}},
        {"input": {"format": "sql", "query": "select * from users", "keyColumns": ["id"]}},
        {"timeZone": "Europe/Berlin", "suspend": True},
    ],
)
def test_cronjob_is_valid_and_runs_the_batch_entrypoint(variant):
    cj = cronjob(batch_md(**variant))
    kubernetes_validate.validate(cj, "1.31.0", strict=True)
    spec = cj["spec"]
    assert spec["concurrencyPolicy"] == "Forbid" and spec["startingDeadlineSeconds"] == 300
    job = spec["jobTemplate"]["spec"]
    assert job["backoffLimit"] == 2 and job["activeDeadlineSeconds"] == 3600
    pod = job["template"]["spec"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True
    (container,) = pod["containers"]
    assert container["command"] == ["modelrollout-batch"] and container["args"][0] == "run"
    assert container["securityContext"]["allowPrivilegeEscalation"] is False
    env = {e["name"]: e for e in container["env"]}
    assert env["MODELROLLOUT_RUN_ID"]["valueFrom"]["fieldRef"]["fieldPath"].endswith(
        "['batch.kubernetes.io/job-name']"
    )
    assert json.loads(env["MODELROLLOUT_VERIFY_THRESHOLDS"]["value"]) == {
        "minRowRatio": 1.0,
        "maxNullShare": 0.0,
        "maxPsi": 0.2,
    }


def test_sharded_runs_are_indexed_jobs_and_bad_input_fails_fast():
    job = cronjob(batch_md(shards=4))["spec"]["jobTemplate"]["spec"]
    assert job["completionMode"] == "Indexed" and job["completions"] == 4 and job["parallelism"] == 4
    assert job["podFailurePolicy"]["rules"][0]["onExitCodes"]["values"] == [2, 3]
    assert "completionMode" not in cronjob(batch_md())["spec"]["jobTemplate"]["spec"]


def test_keys_and_store_reach_the_runner_and_the_lookup_pods():
    m = batch_md("hybrid", store={"type": "postgres", "dsnSecretRef": {"name": "pg", "key": "dsn"}})
    args = cronjob(m)["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0]["args"]
    assert args[args.index("--key-columns") + 1] == "user_id,day"
    assert args[args.index("--predictor") + 1] == "batch:predictor"
    serving_env = {
        e["name"]: e
        for e in R.deployment(m, model=m.spec.model, track="stable", replicas=1)["spec"]["template"]["spec"][
            "containers"
        ][0]["env"]
    }
    assert serving_env["MODELROLLOUT_STORE_DSN"]["valueFrom"]["secretKeyRef"] == {"name": "pg", "key": "dsn"}
    assert serving_env["MODELROLLOUT_TABLE"]["value"] == table_name(m) == "iris"
    assert serving_env["MODELROLLOUT_MODE"]["value"] == "hybrid"


def test_online_mode_has_no_cronjob_and_removes_a_stale_one():
    m = md()
    assert cronjob(m) is None
    stale = as_server_returns(cronjob(batch_md()))
    p = plan(m, Observed.of(cronjob=stale), ModelDeploymentStatus(), NOW)
    assert ("CronJob", "iris-batch") in p.delete


def job(name, start, *, complete=None):
    status = {"startTime": start}
    if complete is not None:
        status["conditions"] = [
            {
                "type": "Complete" if complete else "Failed",
                "status": "True",
                "reason": None if complete else "PodFailurePolicy",
                "message": "job failed",
            }
        ]
        status["completionTime"] = start
    return {"metadata": {"name": name}, "status": status}


def pod_with_report(report, finished="2026-11-21T02:03:00Z"):
    return {
        "status": {
            "containerStatuses": [
                {"state": {"terminated": {"message": json.dumps(report), "finishedAt": finished}}}
            ]
        }
    }


PUBLISHED = {
    "status": "published",
    "run_id": "iris-batch-1",
    "rows_in": 1000,
    "rows_written": 1000,
    "published": {"run_id": "iris-batch-1", "rows": 1000},
}
REJECTED = {
    "status": "rejected",
    "run_id": "iris-batch-2",
    "rows_in": 1000,
    "rows_written": 1000,
    "verification": {"checks": [{"name": "psi", "value": 0.7, "threshold": 0.2, "verdict": "fail"}]},
}


def test_batch_status_tracks_published_version_and_failures():
    jobs = [
        job("iris-batch-1", "2026-11-20T02:00:00Z", complete=True),
        job("iris-batch-2", "2026-11-21T02:00:00Z", complete=False),
    ]
    pods = {"iris-batch-1": [pod_with_report(PUBLISHED)], "iris-batch-2": [pod_with_report(REJECTED)]}
    cj = {
        "status": {"lastScheduleTime": "2026-11-21T02:00:00Z", "lastSuccessfulTime": "2026-11-20T02:01:00Z"}
    }
    status = batch_status(table="iris", cronjob=cj, jobs=jobs, pods_by_job=pods, previous=None)
    assert status.published_version == "iris-batch-1" and status.rows == 1000
    assert status.last_run.phase == "Failed" and status.last_run.reason == "VerificationFailed"
    assert "psi=0.7" in status.last_run.message and status.failures == 1
    assert status.last_schedule_time == "2026-11-21T02:00:00Z"


def test_failed_run_sets_batch_ready_false_with_an_event_once():
    m = batch_md()
    jobs = (
        job("iris-batch-1", "2026-11-20T02:00:00Z", complete=True),
        job("iris-batch-2", "2026-11-21T02:00:00Z", complete=False),
    )
    pods = {"iris-batch-1": [pod_with_report(PUBLISHED)], "iris-batch-2": [pod_with_report(REJECTED)]}
    observed = Observed.of(cronjob=as_server_returns(cronjob(m)), jobs=jobs, job_pods=pods)
    first = plan(m, observed, ModelDeploymentStatus(), NOW)
    ready = C.get_condition(first.status.conditions, C.BATCH_READY)
    assert (
        ready.status == "False" and ready.reason == "VerificationFailed" and "iris-batch-1" in ready.message
    )
    assert [e.reason for e in first.events if e.reason.startswith("BatchRun")] == ["BatchRunFailed"]
    again = plan(m, observed, first.status, NOW)
    assert [e.reason for e in again.events if e.reason.startswith("BatchRun")] == []


def test_unparseable_termination_message_is_kept_as_the_error():
    report = runner_report(
        [
            {
                "status": {
                    "containerStatuses": [
                        {"state": {"terminated": {"message": "Traceback: boom", "finishedAt": "t"}}}
                    ]
                }
            }
        ]
    )
    assert report == {"status": "failed", "error": "Traceback: boom"}
