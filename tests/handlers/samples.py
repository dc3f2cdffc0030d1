"""Sample objects for the handler tests (plain dicts, as a user would `kubectl apply` them)."""

from __future__ import annotations

import copy
import json
from typing import Any

API_VERSION = "modelrollout.io/v1alpha1"


def model_deployment(
    name: str = "iris",
    namespace: str = "default",
    *,
    version: str = "1.0.0",
    replicas: int = 2,
    serving: dict[str, Any] | None = None,
    rollout: dict[str, Any] | None = None,
    mode: str = "online",
    batch: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """A ModelDeployment of the iris example model (online unless `mode` says otherwise)."""
    spec: dict[str, Any] = {
        "mode": mode,
        "model": model_ref(version),
        "serving": {"replicas": replicas, **copy.deepcopy(serving or {})},
    }
    if rollout is not None:
        spec["rollout"] = copy.deepcopy(rollout)
    if batch is not None:
        spec["batch"] = copy.deepcopy(batch)
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": spec,
    }


def model_ref(version: str) -> dict[str, str]:
    """`spec.model` of the iris model at `version` (each version has its own image tag)."""
    return {"name": "iris", "version": version, "image": f"example.com/iris:{version}"}


def deployment(
    name: str = "web", namespace: str = "default", *, replicas: int = 1, labels: dict[str, str] | None = None
) -> dict[str, Any]:
    """A minimal apps/v1 Deployment."""
    labels = labels or {"app": name}
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": {"name": name, "namespace": namespace, "labels": dict(labels)},
        "spec": {
            "replicas": replicas,
            "selector": {"matchLabels": {"app": name}},
            "template": {
                "metadata": {"labels": {"app": name}},
                "spec": {"containers": [{"name": "web", "image": "example.com/web:1"}]},
            },
        },
    }


BATCH = {
    "schedule": "0 2 * * *",
    "volumeClaimName": "preds",
    "input": {"path": "/data/in.parquet", "keyColumns": ["user_id"]},
}


def batch_job(name: str, *, deployment: str = "iris", namespace: str = "default") -> dict[str, Any]:
    """A Job as the CronJob controller would create it for a ModelDeployment's batch run
    (the labels come from the CronJob's jobTemplate)."""
    labels = {"modelrollout.io/deployment": deployment, "app.kubernetes.io/component": "batch"}
    return {
        "apiVersion": "batch/v1",
        "kind": "Job",
        "metadata": {"name": name, "namespace": namespace, "labels": labels},
        "spec": {
            "template": {
                "metadata": {"labels": dict(labels)},
                "spec": {
                    "restartPolicy": "Never",
                    "containers": [{"name": "batch", "image": "example.com/iris:1.0.0"}],
                },
            }
        },
    }


def finished_job_status(*, complete: bool, started: str, finished: str) -> dict[str, Any]:
    """A Job's status once the Job controller has decided it (Complete or Failed)."""
    condition = (
        {"type": "Complete", "status": "True"}
        if complete
        else {"type": "Failed", "status": "True", "reason": "PodFailurePolicy", "message": "exit code 3"}
    )
    return {
        "startTime": started,
        "conditions": [condition],
        **({"completionTime": finished} if complete else {}),
    }


def job_pod(job: str, *, namespace: str = "default") -> dict[str, Any]:
    """A pod of a batch Job (the Job controller labels it with the Job's name)."""
    return {
        "apiVersion": "v1",
        "kind": "Pod",
        "metadata": {
            "name": f"{job}-x7k2p",
            "namespace": namespace,
            "labels": {"batch.kubernetes.io/job-name": job, "job-name": job},
        },
        "spec": {
            "restartPolicy": "Never",
            "containers": [{"name": "batch", "image": "example.com/iris:1.0.0"}],
        },
    }


def terminated_pod_status(report: dict[str, Any], *, exit_code: int, finished: str) -> dict[str, Any]:
    """The kubelet's status of a finished batch pod whose termination message is the runner's report."""
    return {
        "phase": "Succeeded" if exit_code == 0 else "Failed",
        "containerStatuses": [
            {
                "name": "batch",
                "ready": False,
                "restartCount": 0,
                "image": "example.com/iris:1.0.0",
                "state": {
                    "terminated": {
                        "exitCode": exit_code,
                        "reason": "Completed" if exit_code == 0 else "Error",
                        "message": json.dumps(report),
                        "finishedAt": finished,
                    }
                },
            }
        ],
    }
