"""Sample objects for the handler tests (plain dicts, as a user would `kubectl apply` them)."""

from __future__ import annotations

import copy
from typing import Any

API_VERSION = "modelrollout.io/v1alpha1"


def model_deployment(
    name: str = "iris",
    namespace: str = "default",
    *,
    version: str = "1.0.0",
    replicas: int = 2,
    serving: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """An online ModelDeployment of the iris example model."""
    return {
        "apiVersion": API_VERSION,
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {
            "mode": "online",
            "model": {"name": "iris", "version": version, "image": f"example.com/iris:{version}"},
            "serving": {"replicas": replicas, **copy.deepcopy(serving or {})},
        },
    }


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
