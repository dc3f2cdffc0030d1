"""Online serving children of a ModelDeployment (pure): Deployments per track, Services, HPA,
PodMonitor. Each function returns one manifest as a plain dict ready for server-side apply."""

from __future__ import annotations

from typing import Any

from modelrollout.api.resource import ModelDeployment
from modelrollout.api.serving import ModelRef
from modelrollout.render import labels as L
from modelrollout.render import pod
from modelrollout.render.store import ground_truth_env, store_env

HTTP_PORT_NAME = "http"
METRICS_PATH = "/metrics"


def _meta(md: ModelDeployment, name: str, labels: dict[str, str]) -> dict[str, Any]:
    return {
        "name": name,
        "namespace": md.namespace,
        "labels": labels,
        "ownerReferences": [md.owner_reference()],
    }


def data_claim(md: ModelDeployment) -> str | None:
    """The PVC mounted at /data in the serving pods: the batch volume (the prediction table),
    else the ground-truth one (a SQLite prediction log the pods share)."""
    if md.spec.batch is not None and md.spec.batch.volume_claim_name:
        return md.spec.batch.volume_claim_name
    truth = md.spec.ground_truth
    return truth.volume_claim_name if truth is not None else None


def serving_container(md: ModelDeployment, model: ModelRef, track: L.Track) -> dict[str, Any]:
    serving = md.spec.serving
    _, mounts = pod.volumes(data_claim(md))
    http = {"path": "/readyz", "port": HTTP_PORT_NAME}
    return {
        "name": "model",
        "image": model.image,
        "imagePullPolicy": model.image_pull_policy,
        "ports": [{"name": HTTP_PORT_NAME, "containerPort": serving.port, "protocol": "TCP"}],
        "env": [
            *pod.runtime_env(md, model, track),
            {"name": "BENTOML_PORT", "value": str(serving.port)},
            *(store_env(md, md.spec.batch) if md.spec.batch else []),
            *ground_truth_env(md),
            *pod.user_env(serving.env),
        ],
        "resources": pod.resources(serving.resources),
        # BentoML answers /readyz once the service (and its model) is loaded, /livez while alive.
        "startupProbe": {
            "httpGet": {"path": "/livez", "port": HTTP_PORT_NAME},
            "periodSeconds": 2,
            "failureThreshold": 90,
        },
        "readinessProbe": {"httpGet": http, "periodSeconds": 5, "failureThreshold": 3},
        "livenessProbe": {
            "httpGet": {"path": "/livez", "port": HTTP_PORT_NAME},
            "periodSeconds": 10,
            "failureThreshold": 3,
        },
        "securityContext": pod.container_security_context(),
        "volumeMounts": mounts,
    }


def deployment(
    md: ModelDeployment, *, model: ModelRef, track: L.Track, replicas: int | None
) -> dict[str, Any]:
    """The Deployment of one track. `replicas=None` leaves the count to the HPA."""
    labels = L.track_labels(md.name, model.name, track, model.version)
    volumes, _ = pod.volumes(data_claim(md))
    spec: dict[str, Any] = {
        "selector": {"matchLabels": L.selector(md.name, track)},
        "strategy": {"type": "RollingUpdate", "rollingUpdate": {"maxUnavailable": 0, "maxSurge": 1}},
        "template": {
            "metadata": {
                "labels": labels,
                "annotations": {
                    "prometheus.io/scrape": "true",
                    "prometheus.io/port": str(md.spec.serving.port),
                    "prometheus.io/path": METRICS_PATH,
                },
            },
            "spec": {
                "securityContext": pod.pod_security_context(),
                "containers": [serving_container(md, model, track)],
                "volumes": volumes,
                "terminationGracePeriodSeconds": 30,
                **pod.scheduling(md.spec.serving),
            },
        },
    }
    if replicas is not None:
        spec["replicas"] = replicas
    return {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "metadata": _meta(md, L.track_name(md.name, track), labels),
        "spec": spec,
    }


def service(
    md: ModelDeployment, *, track: L.Track | None = None, stable_only: bool = False
) -> dict[str, Any]:
    """The Service clients call (`track=None`) or a per-track Service (what a Gateway API
    HTTPRoute points its weighted backendRefs at). The main Service spans both tracks when the
    weight is the replica ratio; `stable_only` when a route carries the weight instead, so
    in-cluster callers of the main Service never reach the canary."""
    name = md.name if track is None else L.track_name(md.name, track)
    labels = L.base_labels(md.name, md.spec.model.name, "serving")
    if track is not None:
        labels[L.TRACK_LABEL] = track
    return {
        "apiVersion": "v1",
        "kind": "Service",
        "metadata": _meta(md, name, labels),
        "spec": {
            "type": "ClusterIP",
            "selector": L.selector(md.name, "stable" if stable_only else track),
            "ports": [{"name": HTTP_PORT_NAME, "port": 80, "targetPort": HTTP_PORT_NAME, "protocol": "TCP"}],
        },
    }


def hpa(md: ModelDeployment) -> dict[str, Any] | None:
    scaling = md.spec.serving.autoscaling
    if scaling is None:
        return None
    return {
        "apiVersion": "autoscaling/v2",
        "kind": "HorizontalPodAutoscaler",
        "metadata": _meta(
            md, L.track_name(md.name, "stable"), L.base_labels(md.name, md.spec.model.name, "serving")
        ),
        "spec": {
            "scaleTargetRef": {
                "apiVersion": "apps/v1",
                "kind": "Deployment",
                "name": L.track_name(md.name, "stable"),
            },
            "minReplicas": scaling.min_replicas,
            "maxReplicas": scaling.max_replicas,
            "metrics": [
                {
                    "type": "Resource",
                    "resource": {
                        "name": "cpu",
                        "target": {
                            "type": "Utilization",
                            "averageUtilization": scaling.target_cpu_utilization_percentage,
                        },
                    },
                }
            ],
        },
    }


def pod_monitor(md: ModelDeployment) -> dict[str, Any]:
    """A prometheus-operator PodMonitor; relabelings give every series `track`,
    `model_version` and `modelrollout_deployment`, which the analysis queries filter on."""

    def copy(label: str, target: str) -> dict[str, Any]:
        source = "__meta_kubernetes_pod_label_" + "".join(c if c.isalnum() else "_" for c in label)
        return {"sourceLabels": [source], "targetLabel": target, "action": "replace"}

    return {
        "apiVersion": "monitoring.coreos.com/v1",
        "kind": "PodMonitor",
        "metadata": _meta(md, md.name, L.base_labels(md.name, md.spec.model.name, "serving")),
        "spec": {
            "selector": {"matchLabels": L.selector(md.name)},
            "podMetricsEndpoints": [
                {
                    "port": HTTP_PORT_NAME,
                    "path": METRICS_PATH,
                    "interval": "15s",
                    "relabelings": [
                        copy(L.TRACK_LABEL, "track"),
                        copy(L.VERSION_LABEL, "model_version"),
                        copy(L.DEPLOYMENT_LABEL, "modelrollout_deployment"),
                    ],
                }
            ],
        },
    }
