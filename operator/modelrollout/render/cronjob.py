"""Batch (static) serving children (pure): the CronJob whose Jobs run `modelrollout-batch`.

Each run is one Job (an Indexed Job with `shards` completions when sharded); its run id is
the Job's name, so a retried pod reruns the same run id (the runner never duplicates rows)
and the next scheduled run gets a new one. The runner's JSON report goes to the termination
log, which is where the operator reads rows written and the published version.
"""

from __future__ import annotations

import json
from typing import Any

from modelrollout.api.batch import Batch
from modelrollout.api.resource import ModelDeployment
from modelrollout.render import labels as L
from modelrollout.render import pod
from modelrollout.render.store import store_env

JOB_NAME_LABEL = "batch.kubernetes.io/job-name"


def runner_args(md: ModelDeployment, batch: Batch) -> list[str]:
    source = batch.input
    args = [
        "run",
        "--key-columns",
        ",".join(source.key_columns),
        "--chunk-rows",
        str(batch.chunk_rows),
        "--report-file",
        "/dev/termination-log",
        "--model-version",
        md.spec.model.version,
    ]
    if source.format == "sql":
        args += ["--input-sql", source.query or ""]
    else:
        args += ["--input", source.path or "", "--format", source.format]
    if source.feature_columns:
        args += ["--feature-columns", ",".join(source.feature_columns)]
    if batch.predictor:
        args += ["--predictor", batch.predictor]
    return args


def batch_container(md: ModelDeployment, batch: Batch) -> dict[str, Any]:
    """The runner: `modelrollout-batch` in the model's image, with the store and the run id."""
    model = md.spec.model
    _, mounts = pod.volumes(batch.volume_claim_name)
    return {
        "name": "batch",
        "image": model.image,
        "imagePullPolicy": model.image_pull_policy,
        "command": ["modelrollout-batch"],
        "args": runner_args(md, batch),
        "env": [
            *pod.runtime_env(md, model, "stable"),
            {
                "name": "MODELROLLOUT_RUN_ID",
                "valueFrom": {"fieldRef": {"fieldPath": f"metadata.labels['{JOB_NAME_LABEL}']"}},
            },
            {"name": "MODELROLLOUT_SHARD_COUNT", "value": str(batch.shards)},
            {"name": "MODELROLLOUT_VERIFY_THRESHOLDS", "value": json.dumps(batch.verification.to_wire())},
            *store_env(md, batch),
            *pod.user_env(md.spec.serving.env),
        ],
        "resources": pod.resources(batch.resources),
        "securityContext": pod.container_security_context(),
        "volumeMounts": mounts,
        "terminationMessagePolicy": "FallbackToLogsOnError",
    }


def job_spec(md: ModelDeployment, batch: Batch, labels: dict[str, str]) -> dict[str, Any]:
    """One run: an Indexed Job with `shards` completions when sharded."""
    volumes, _ = pod.volumes(batch.volume_claim_name)
    spec: dict[str, Any] = {
        "backoffLimit": batch.job.backoff_limit,
        # Bad input (exit 2) and failed verification (exit 3) fail the same way on every retry.
        "podFailurePolicy": {
            "rules": [
                {
                    "action": "FailJob",
                    "onExitCodes": {"containerName": "batch", "operator": "In", "values": [2, 3]},
                }
            ]
        },
        "activeDeadlineSeconds": batch.job.active_deadline_seconds,
        "template": {
            "metadata": {"labels": labels},
            "spec": {
                "restartPolicy": "Never",
                "securityContext": pod.pod_security_context(),
                "containers": [batch_container(md, batch)],
                "volumes": volumes,
                **pod.scheduling(md.spec.serving),
            },
        },
    }
    if batch.shards > 1:
        spec.update({"completionMode": "Indexed", "completions": batch.shards, "parallelism": batch.shards})
    return spec


def cronjob(md: ModelDeployment) -> dict[str, Any] | None:
    batch = md.spec.batch
    if batch is None:
        return None
    model = md.spec.model
    labels = {**L.base_labels(md.name, model.name, "batch"), L.VERSION_LABEL: model.version}
    spec: dict[str, Any] = {
        "schedule": batch.schedule,
        "suspend": batch.suspend,
        "concurrencyPolicy": "Forbid",
        "startingDeadlineSeconds": batch.job.starting_deadline_seconds,
        "successfulJobsHistoryLimit": batch.job.successful_jobs_history_limit,
        "failedJobsHistoryLimit": batch.job.failed_jobs_history_limit,
        "jobTemplate": {"metadata": {"labels": labels}, "spec": job_spec(md, batch, labels)},
    }
    if batch.time_zone:
        spec["timeZone"] = batch.time_zone
    return {
        "apiVersion": "batch/v1",
        "kind": "CronJob",
        "metadata": {
            "name": L.batch_name(md.name),
            "namespace": md.namespace,
            "labels": labels,
            "ownerReferences": [md.owner_reference()],
        },
        "spec": spec,
    }
