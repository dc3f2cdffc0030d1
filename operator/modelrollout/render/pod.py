"""Pod pieces shared by serving and batch workloads (pure).

Every pod meets the Pod Security "restricted" profile: non-root, no privilege escalation,
all capabilities dropped, RuntimeDefault seccomp.
"""

from __future__ import annotations

from typing import Any

from modelrollout.api.resource import ModelDeployment
from modelrollout.api.serving import EnvVar, ModelRef, ResourceRequirements, Serving
from modelrollout.render.labels import Track

# BentoML's generated images run as this user (BENTO_USER_UID in its Dockerfile template).
BENTO_UID = 1034
DATA_MOUNT = "/data"
TMP_MOUNT = "/tmp"


def pod_security_context() -> dict[str, Any]:
    return {
        "runAsNonRoot": True,
        "runAsUser": BENTO_UID,
        "runAsGroup": BENTO_UID,
        "fsGroup": BENTO_UID,
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def container_security_context() -> dict[str, Any]:
    return {
        "allowPrivilegeEscalation": False,
        "runAsNonRoot": True,
        "capabilities": {"drop": ["ALL"]},
        "seccompProfile": {"type": "RuntimeDefault"},
    }


def resources(spec: ResourceRequirements) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if spec.requests:
        out["requests"] = {k: str(v) for k, v in spec.requests.items()}
    if spec.limits:
        out["limits"] = {k: str(v) for k, v in spec.limits.items()}
    return out


def runtime_env(md: ModelDeployment, model: ModelRef, track: Track) -> list[dict[str, Any]]:
    """What `modelrollout.runtime` reads inside the bento: identity for metric labels."""
    return [
        {"name": "MODELROLLOUT_DEPLOYMENT", "value": md.name},
        {"name": "MODELROLLOUT_MODEL_NAME", "value": model.name},
        {"name": "MODELROLLOUT_MODEL_VERSION", "value": model.version},
        {"name": "MODELROLLOUT_TRACK", "value": track},
        {"name": "MODELROLLOUT_MODE", "value": md.spec.mode},
        {"name": "BENTOML_DO_NOT_TRACK", "value": "True"},
    ]


def user_env(env: list[EnvVar]) -> list[dict[str, Any]]:
    return [e.to_wire() for e in env]


def volumes(claim_name: str | None) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """(volumes, mounts): a writable /tmp always; the batch PVC at /data when there is one."""
    vols: list[dict[str, Any]] = [{"name": "tmp", "emptyDir": {}}]
    mounts: list[dict[str, Any]] = [{"name": "tmp", "mountPath": TMP_MOUNT}]
    if claim_name:
        vols.append({"name": "data", "persistentVolumeClaim": {"claimName": claim_name}})
        mounts.append({"name": "data", "mountPath": DATA_MOUNT})
    return vols, mounts


def scheduling(serving: Serving) -> dict[str, Any]:
    out: dict[str, Any] = {}
    if serving.node_selector:
        out["nodeSelector"] = dict(serving.node_selector)
    if serving.tolerations:
        out["tolerations"] = [t.to_wire() for t in serving.tolerations]
    if serving.service_account_name:
        out["serviceAccountName"] = serving.service_account_name
    return out
