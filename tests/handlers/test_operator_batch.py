"""The real operator (`modelrollout.handlers` in kopf) against the fake API: batch serving.

Batch and hybrid ModelDeployments get a CronJob whose Jobs run `modelrollout-batch`. The fake
runs no CronJob or Job controller and no kubelet: the test creates the Job a scheduled run
would get, its pod, the pod's termination message (the runner's JSON report) and the Job's
final condition, in the order a cluster would write them. The operator reads these back into
`status.batch` and the BatchReady condition.
"""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.handlers import samples
from tests.handlers.fakeapi import FakeCluster, wait_for
from tests.handlers.test_operator_online import condition, create_md, events_about, status_of, wait_for_child

NS = "default"
MD = "ModelDeployment"
QUIET_WINDOW = 2.5  # seconds: more than two resync ticks (MODELROLLOUT_RESYNC_SECONDS=1)
JOB_SELECTOR = {"modelrollout.io/deployment": "iris", "app.kubernetes.io/component": "batch"}
PUBLISHED = {
    "status": "published",
    "run_id": "iris-batch-1",
    "rows_in": 150,
    "rows_written": 150,
    "published": {"run_id": "iris-batch-1", "rows": 150},
}
REJECTED = {
    "status": "rejected",
    "run_id": "iris-batch-2",
    "rows_in": 150,
    "rows_written": 150,
    "verification": {"checks": [{"name": "psi", "value": 0.7, "threshold": 0.2, "verdict": "fail"}]},
}


def batch_status(api: FakeCluster) -> dict[str, Any]:
    return status_of(api, "iris").get("batch") or {}


def last_run(api: FakeCluster) -> dict[str, Any]:
    return batch_status(api).get("lastRun") or {}


def run_job(
    api: FakeCluster, name: str, report: dict[str, Any], *, succeeded: bool, started: str, finished: str
) -> None:
    """One batch run as a cluster writes it: the Job, its pod, the pod's end (with the runner's
    report as termination message), then the Job's final condition."""
    api.create(samples.batch_job(name))
    api.set_status("Job", NS, name, {"startTime": started, "active": 1})
    pod = api.create(samples.job_pod(name))
    api.set_status(
        "Pod",
        NS,
        pod["metadata"]["name"],
        samples.terminated_pod_status(report, exit_code=0 if succeeded else 3, finished=finished),
    )
    api.set_status(
        "Job", NS, name, samples.finished_job_status(complete=succeeded, started=started, finished=finished)
    )


def env_of(container: dict[str, Any]) -> dict[str, Any]:
    return {e["name"]: e.get("value", e.get("valueFrom")) for e in container["env"]}


@pytest.mark.parametrize("mode", ["batch", "hybrid"])
def test_batch_modes_get_a_cronjob_running_the_batch_runner(operator, fake_api, mode):
    md = create_md(fake_api, samples.model_deployment(mode=mode, batch=samples.BATCH))
    cronjob = wait_for_child(fake_api, "CronJob", "iris-batch")

    (owner,) = cronjob["metadata"]["ownerReferences"]
    assert (owner["kind"], owner["name"], owner["uid"], owner["controller"]) == (
        MD,
        "iris",
        md["metadata"]["uid"],
        True,
    )
    spec = cronjob["spec"]
    assert (spec["schedule"], spec["concurrencyPolicy"], spec["suspend"]) == ("0 2 * * *", "Forbid", False)
    # The Jobs it makes carry the labels the operator lists runs by.
    assert JOB_SELECTOR.items() <= spec["jobTemplate"]["metadata"]["labels"].items()
    pod = spec["jobTemplate"]["spec"]["template"]["spec"]
    (container,) = pod["containers"]
    assert container["command"] == ["modelrollout-batch"] and container["image"] == "example.com/iris:1.0.0"
    args = container["args"]
    assert args[0] == "run"
    for flag, value in (
        ("--key-columns", "user_id"),
        ("--input", "/data/in.parquet"),
        ("--format", "parquet"),
        ("--model-version", "1.0.0"),
        ("--report-file", "/dev/termination-log"),
    ):
        assert args[args.index(flag) + 1] == value, flag
    env = env_of(container)
    assert (
        env["MODELROLLOUT_TABLE"] == "iris"
        and env["MODELROLLOUT_STORE_DSN"] == "sqlite:////data/predictions.sqlite"
    )
    assert env["MODELROLLOUT_MODE"] == mode
    assert env["MODELROLLOUT_RUN_ID"] == {
        "fieldRef": {"fieldPath": "metadata.labels['batch.kubernetes.io/job-name']"}
    }
    assert container["terminationMessagePolicy"] == "FallbackToLogsOnError"
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "preds"}} in pod["volumes"]
    assert pod["restartPolicy"] == "Never" and pod["securityContext"]["runAsNonRoot"] is True

    # The serving pods (lookup, or lookup then model) read the same table.
    serving = wait_for_child(fake_api, "Deployment", "iris-stable")["spec"]["template"]["spec"]["containers"][
        0
    ]
    serving_env = env_of(serving)
    assert serving_env["MODELROLLOUT_MODE"] == mode and serving_env["MODELROLLOUT_TABLE"] == "iris"
    ready = wait_for(lambda: condition(status_of(fake_api, "iris"), "BatchReady"), message="BatchReady")
    assert (ready["status"], ready["reason"]) == ("False", "NoPublishedVersion")


def test_batch_status_follows_runs_and_a_rejected_run_keeps_the_published_version(operator, fake_api):
    create_md(fake_api, samples.model_deployment(mode="batch", batch=samples.BATCH))
    wait_for_child(fake_api, "CronJob", "iris-batch")

    run_job(
        fake_api,
        "iris-batch-1",
        PUBLISHED,
        succeeded=True,
        started="2026-11-20T02:00:00Z",
        finished="2026-11-20T02:03:00Z",
    )
    wait_for(lambda: last_run(fake_api).get("phase") == "Succeeded", message="the first run to succeed")
    batch = batch_status(fake_api)
    assert (batch["publishedVersion"], batch["rows"], batch["table"], batch["failures"]) == (
        "iris-batch-1",
        150,
        "iris",
        0,
    )
    run = batch["lastRun"]
    assert (run["job"], run["runId"], run["status"], run["rowsIn"], run["rowsWritten"]) == (
        "iris-batch-1",
        "iris-batch-1",
        "published",
        150,
        150,
    )
    assert run["finishedAt"] == "2026-11-20T02:03:00Z"
    ready = condition(status_of(fake_api, "iris"), "BatchReady")
    assert (ready["status"], ready["reason"]) == ("True", "Published") and "iris-batch-1" in ready["message"]
    wait_for(lambda: events_about(fake_api, "iris", "BatchRunSucceeded"), message="a BatchRunSucceeded event")

    run_job(
        fake_api,
        "iris-batch-2",
        REJECTED,
        succeeded=False,
        started="2026-11-21T02:00:00Z",
        finished="2026-11-21T02:02:00Z",
    )
    wait_for(lambda: last_run(fake_api).get("phase") == "Failed", message="the second run to fail")
    batch = batch_status(fake_api)
    assert (batch["publishedVersion"], batch["rows"], batch["failures"]) == ("iris-batch-1", 150, 1)
    assert batch["lastRun"]["reason"] == "VerificationFailed" and "psi=0.7" in batch["lastRun"]["message"]
    ready = condition(status_of(fake_api, "iris"), "BatchReady")
    assert (ready["status"], ready["reason"]) == ("False", "VerificationFailed")
    assert "iris-batch-1" in ready["message"]  # says which version keeps serving
    (event,) = wait_for(
        lambda: events_about(fake_api, "iris", "BatchRunFailed"), message="a BatchRunFailed event"
    )
    assert (
        event["type"] == "Warning" and "iris-batch-2" in event["note"] and "previous version" in event["note"]
    )

    time.sleep(QUIET_WINDOW)  # resyncs see the same runs: no more events
    assert len(events_about(fake_api, "iris", "BatchRunFailed")) == 1
    assert len(events_about(fake_api, "iris", "BatchRunSucceeded")) == 1


def runner_env(cronjob: dict[str, Any]) -> dict[str, Any]:
    return env_of(cronjob["spec"]["jobTemplate"]["spec"]["template"]["spec"]["containers"][0])


def test_an_online_deployment_switched_to_batch_gets_a_cronjob_and_hybrid_updates_it(operator, fake_api):
    create_md(fake_api, samples.model_deployment())
    assert fake_api.get("CronJob", NS, "iris-batch") is None
    fake_api.patch(MD, NS, "iris", {"spec": {"mode": "batch", "batch": samples.BATCH}})
    assert runner_env(wait_for_child(fake_api, "CronJob", "iris-batch"))["MODELROLLOUT_MODE"] == "batch"
    wait_for(lambda: condition(status_of(fake_api, "iris"), "BatchReady"), message="BatchReady")

    fake_api.patch(MD, NS, "iris", {"spec": {"mode": "hybrid"}})
    wait_for_child(
        fake_api, "CronJob", "iris-batch", lambda cj: runner_env(cj)["MODELROLLOUT_MODE"] == "hybrid"
    )


def test_switching_back_to_online_deletes_the_cronjob(operator, fake_api):
    create_md(fake_api, samples.model_deployment(mode="batch", batch=samples.BATCH))
    wait_for_child(fake_api, "CronJob", "iris-batch")

    fake_api.patch(MD, NS, "iris", {"spec": {"mode": "online"}})
    wait_for(
        lambda: status_of(fake_api, "iris").get("observedGeneration") == 2, message="the switch observed"
    )
    wait_for(
        lambda: fake_api.get("CronJob", NS, "iris-batch") is None, timeout=5, message="the CronJob deleted"
    )
    (event,) = wait_for(lambda: events_about(fake_api, "iris", "Deleted"), message="a Deleted event")
    assert event["note"] == "CronJob iris-batch"


def test_switching_back_to_online_clears_the_batch_status(operator, fake_api):
    create_md(fake_api, samples.model_deployment(mode="batch", batch=samples.BATCH))
    wait_for(lambda: condition(status_of(fake_api, "iris"), "BatchReady"), message="BatchReady")

    fake_api.patch(MD, NS, "iris", {"spec": {"mode": "online"}})
    status = wait_for(
        lambda: (s := status_of(fake_api, "iris")).get("observedGeneration") == 2 and s,
        message="the switch observed",
    )
    assert condition(status, "BatchReady") == {} and status.get("batch") is None
