"""Sample ModelDeployments for tests."""

from __future__ import annotations

import copy
from typing import Any

from modelrollout.api.resource import ModelDeployment

UID = "6f1c2d8e-0000-4000-8000-000000000001"


def body(
    spec_overrides: dict[str, Any] | None = None,
    *,
    name: str = "iris",
    namespace: str = "default",
    generation: int = 1,
) -> dict[str, Any]:
    spec: dict[str, Any] = {
        "model": {"name": "iris", "version": "1.0.0", "image": "example.com/iris:1.0.0"},
        "serving": {"replicas": 2},
    }
    for key, value in (spec_overrides or {}).items():
        spec[key] = copy.deepcopy(value)
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace, "uid": UID, "generation": generation},
        "spec": spec,
    }


def md(spec_overrides: dict[str, Any] | None = None, **kwargs: Any) -> ModelDeployment:
    return ModelDeployment.from_body(body(spec_overrides, **kwargs))
