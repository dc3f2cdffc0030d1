"""Serving manifests: valid Kubernetes objects, labelled, owned, restricted."""

from __future__ import annotations

import kubernetes_validate
import pytest

from modelrollout.render import labels as L
from modelrollout.render import serving as R
from tests.support.samples import UID, md

K8S_VERSION = "1.31.0"

VARIANTS = {
    "plain": {},
    "autoscaled": {"serving": {"autoscaling": {"minReplicas": 2, "maxReplicas": 6}}},
    "scheduling": {
        "serving": {
            "replicas": 1,
            "nodeSelector": {"pool": "ml"},
            "tolerations": [{"key": "gpu", "operator": "Exists", "effect": "NoSchedule"}],
            "env": [
                {"name": "WORKERS", "value": "2"},
                {"name": "TOKEN", "valueFrom": {"secretKeyRef": {"name": "s", "key": "t"}}},
            ],
            "resources": {"requests": {"cpu": "500m", "memory": "1Gi"}, "limits": {"cpu": 2}},
        }
    },
    "hybrid-with-volume": {
        "mode": "hybrid",
        "batch": {
            "schedule": "@daily",
            "volumeClaimName": "preds",
            "input": {"path": "/data/in.parquet", "keyColumns": ["id"]},
        },
    },
    "custom-port": {"serving": {"port": 8080, "replicas": 0}},
    "ground-truth": {
        "groundTruth": {
            "store": {"type": "postgres", "dsnSecretRef": {"name": "pg", "key": "dsn"}},
            "retention": "48h",
            "feedbackTokenSecretRef": {"name": "feedback", "key": "token"},
            "positiveClass": "fraud",
        },
        "rollout": {
            "analysis": {
                "prometheus": {"address": "http://prometheus:9090"},
                "minLabels": 200,
                "metrics": [
                    {"name": "accuracy", "template": "accuracy", "min": 0.9},
                    {"name": "recall", "template": "recall", "min": 0.5},
                ],
            }
        },
    },
}


def manifests(m):
    out = [
        R.deployment(m, model=m.spec.model, track="stable", replicas=m.spec.serving.replicas),
        R.deployment(m, model=m.spec.model, track="canary", replicas=1),
        R.service(m),
        R.service(m, track="stable"),
        R.service(m, track="canary"),
    ]
    hpa = R.hpa(m)
    return out + ([hpa] if hpa else [])


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_manifests_are_valid_kubernetes_objects(variant):
    for manifest in manifests(md(VARIANTS[variant])):
        kubernetes_validate.validate(manifest, K8S_VERSION, strict=True)


@pytest.mark.parametrize("variant", sorted(VARIANTS))
def test_children_are_owned_by_their_modeldeployment(variant):
    for manifest in manifests(md(VARIANTS[variant])):
        (ref,) = manifest["metadata"]["ownerReferences"]
        assert ref["uid"] == UID and ref["controller"] is True and ref["kind"] == "ModelDeployment"
        assert manifest["metadata"]["labels"][L.DEPLOYMENT_LABEL] == "iris"


def test_track_labels_and_selectors():
    m = md()
    dep = R.deployment(m, model=m.spec.model, track="canary", replicas=1)
    pod_labels = dep["spec"]["template"]["metadata"]["labels"]
    assert pod_labels[L.TRACK_LABEL] == "canary" and pod_labels[L.VERSION_LABEL] == "1.0.0"
    assert dep["metadata"]["name"] == "iris-canary"
    selector = dep["spec"]["selector"]["matchLabels"]
    assert all(pod_labels[k] == v for k, v in selector.items())
    # the main Service spans both tracks; the per-track Services select one
    assert L.TRACK_LABEL not in R.service(m)["spec"]["selector"]
    assert R.service(m, track="stable")["spec"]["selector"][L.TRACK_LABEL] == "stable"
    assert all(pod_labels[k] == v for k, v in R.service(m)["spec"]["selector"].items())


def test_pods_meet_the_restricted_profile():
    m = md(VARIANTS["scheduling"])
    pod = R.deployment(m, model=m.spec.model, track="stable", replicas=1)["spec"]["template"]["spec"]
    assert pod["securityContext"]["runAsNonRoot"] is True
    assert pod["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
    for container in pod["containers"]:
        ctx = container["securityContext"]
        assert ctx["allowPrivilegeEscalation"] is False
        assert ctx["capabilities"] == {"drop": ["ALL"]}
    assert all("hostPath" not in v for v in pod["volumes"])


def test_probes_and_scrape_annotations_follow_bentoml():
    m = md(VARIANTS["custom-port"])
    dep = R.deployment(m, model=m.spec.model, track="stable", replicas=0)
    container = dep["spec"]["template"]["spec"]["containers"][0]
    assert container["readinessProbe"]["httpGet"]["path"] == "/readyz"
    assert container["livenessProbe"]["httpGet"]["path"] == "/livez"
    assert container["ports"][0]["containerPort"] == 8080
    assert {"name": "BENTOML_PORT", "value": "8080"} in container["env"]
    annotations = dep["spec"]["template"]["metadata"]["annotations"]
    assert annotations["prometheus.io/scrape"] == "true" and annotations["prometheus.io/port"] == "8080"
    assert dep["spec"]["replicas"] == 0


def test_hpa_only_with_autoscaling_and_replicas_left_to_it():
    assert R.hpa(md()) is None
    m = md(VARIANTS["autoscaled"])
    hpa = R.hpa(m)
    assert hpa["spec"]["minReplicas"] == 2 and hpa["spec"]["maxReplicas"] == 6
    assert hpa["spec"]["scaleTargetRef"]["name"] == "iris-stable"
    assert hpa["spec"]["metrics"][0]["resource"]["target"]["averageUtilization"] == 80
    assert "replicas" not in R.deployment(m, model=m.spec.model, track="stable", replicas=None)["spec"]


def test_hybrid_mounts_the_batch_volume_and_says_its_mode():
    m = md(VARIANTS["hybrid-with-volume"])
    pod = R.deployment(m, model=m.spec.model, track="stable", replicas=1)["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "preds"}} in pod["volumes"]
    container = pod["containers"][0]
    assert {"name": "data", "mountPath": "/data"} in container["volumeMounts"]
    assert {"name": "MODELROLLOUT_MODE", "value": "hybrid"} in container["env"]


def test_pod_monitor_relabels_track_and_version():
    pm = R.pod_monitor(md())
    relabel = {
        r["targetLabel"]: r["sourceLabels"][0] for r in pm["spec"]["podMetricsEndpoints"][0]["relabelings"]
    }
    assert relabel == {
        "track": "__meta_kubernetes_pod_label_modelrollout_io_track",
        "model_version": "__meta_kubernetes_pod_label_modelrollout_io_model_version",
        "modelrollout_deployment": "__meta_kubernetes_pod_label_modelrollout_io_deployment",
    }
