"""Names and labels of everything the operator creates for a ModelDeployment."""

from __future__ import annotations

from typing import Literal

from modelrollout import GROUP

Track = Literal["stable", "canary"]

DEPLOYMENT_LABEL = f"{GROUP}/deployment"
TRACK_LABEL = f"{GROUP}/track"
VERSION_LABEL = f"{GROUP}/model-version"
COMPONENT_LABEL = "app.kubernetes.io/component"
MANAGED_BY = "modelrollout-operator"


def track_name(name: str, track: Track) -> str:
    """The Deployment (and per-track Service) of one track: `<name>-stable`, `<name>-canary`."""
    return f"{name}-{track}"


def batch_name(name: str) -> str:
    return f"{name}-batch"


def base_labels(name: str, model_name: str, component: str) -> dict[str, str]:
    """Labels every child carries; `modelrollout.io/deployment` is what selectors use."""
    return {
        "app.kubernetes.io/name": model_name,
        "app.kubernetes.io/instance": name,
        COMPONENT_LABEL: component,
        "app.kubernetes.io/part-of": "modelrollout",
        "app.kubernetes.io/managed-by": MANAGED_BY,
        DEPLOYMENT_LABEL: name,
    }


def track_labels(name: str, model_name: str, track: Track, version: str) -> dict[str, str]:
    return {**base_labels(name, model_name, "serving"), TRACK_LABEL: track, VERSION_LABEL: version}


def selector(name: str, track: Track | None = None) -> dict[str, str]:
    """Selector of the serving pods of a ModelDeployment (all tracks, or one)."""
    labels = {DEPLOYMENT_LABEL: name, COMPONENT_LABEL: "serving"}
    if track is not None:
        labels[TRACK_LABEL] = track
    return labels


def selector_string(labels: dict[str, str]) -> str:
    return ",".join(f"{k}={v}" for k, v in sorted(labels.items()))
