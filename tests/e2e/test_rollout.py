"""Canary rollouts on a real cluster: full promotion, and automatic and manual rollback.

The analysis-free rollout proves the Kubernetes mechanics (a canary Deployment beside the
stable one, weights as replica ratios, promotion rolling the stable track, the canary scaled to
zero). The automatic rollback uses a Prometheus address nobody answers: every analysis is an
error, the error limit is exceeded, and the operator must restore the stable track by itself.
"""

from __future__ import annotations

import json

import yaml

from tests.e2e.conftest import ROOT, kubectl, wait_until


def _md(namespace: str, image: str, version: str, rollout: dict) -> str:
    sample = yaml.safe_load((ROOT / "bentos" / "iris" / "sample-modeldeployment.yaml").read_text())
    sample["metadata"].update(name="canary", namespace=namespace)
    sample["spec"]["model"].update(image=image, version=version)
    sample["spec"]["serving"]["replicas"] = 2
    sample["spec"]["rollout"] = rollout
    return yaml.safe_dump(sample)


def _get(namespace: str, kind: str, name: str) -> dict:
    return json.loads(kubectl("get", kind, name, "-n", namespace, "-o", "json"))


def _status(namespace: str) -> dict:
    return _get(namespace, "mdep", "canary").get("status", {})


def test_promote_then_roll_back(namespace, operator, image):
    steps = {
        "steps": [{"setWeight": 30, "pause": "10s"}, {"setWeight": 60, "pause": "10s"}],
        "scaleDownDelay": "5s",
    }
    kubectl("apply", "-f", "-", input=_md(namespace, image, "1.0.0", steps))
    wait_until(lambda: _status(namespace).get("phase") == "Ready", timeout=300, what="v1 Ready")

    # 1.0.0 -> 2.0.0: canary beside stable, then promoted
    kubectl("apply", "-f", "-", input=_md(namespace, image, "2.0.0", steps))
    wait_until(lambda: _status(namespace).get("canaryVersion") == "2.0.0", timeout=60, what="a canary")
    canary = _get(namespace, "deployment", "canary-canary")
    assert canary["spec"]["template"]["metadata"]["labels"]["modelrollout.io/model-version"] == "2.0.0"
    stable = _get(namespace, "deployment", "canary-stable")
    assert stable["spec"]["template"]["metadata"]["labels"]["modelrollout.io/model-version"] == "1.0.0"
    wait_until(
        lambda: (_status(namespace).get("canaryWeight") or 0) > 0, timeout=180, what="traffic on the canary"
    )
    wait_until(lambda: _status(namespace).get("stableVersion") == "2.0.0", timeout=300, what="promotion")
    status = _status(namespace)
    assert status["rollout"]["phase"] == "Succeeded" and status["phase"] == "Ready"
    wait_until(
        lambda: _get(namespace, "deployment", "canary-canary")["spec"]["replicas"] == 0,
        timeout=60,
        what="the canary scaled to zero",
    )

    # 2.0.0 -> 3.0.0 judged by a Prometheus nobody answers: errors past the limit roll back
    broken = {
        **steps,
        "analysis": {
            "prometheus": {"address": "http://127.0.0.1:1"},
            "interval": "5s",
            "errorLimit": 1,
            "metrics": [{"name": "errors", "template": "error-rate", "max": 0.05}],
        },
    }
    kubectl("apply", "-f", "-", input=_md(namespace, image, "3.0.0", broken))
    wait_until(
        lambda: _status(namespace).get("rollout", {}).get("phase") == "Failed",
        timeout=300,
        what="an automatic rollback",
    )
    status = _status(namespace)
    assert status["stableVersion"] == "2.0.0" and status["canaryWeight"] == 0
    assert status["rejectedVersion"].startswith("3.0.0@")
    degraded = next(c for c in status["conditions"] if c["type"] == "Degraded")
    assert degraded["status"] == "True" and "error" in degraded["message"]
    wait_until(
        lambda: _get(namespace, "deployment", "canary-canary")["spec"]["replicas"] == 0,
        timeout=60,
        what="the rejected canary scaled to zero",
    )
    stable = _get(namespace, "deployment", "canary-stable")
    assert stable["spec"]["template"]["metadata"]["labels"]["modelrollout.io/model-version"] == "2.0.0"
    events = kubectl(
        "get",
        "events.events.k8s.io",
        "-n",
        namespace,
        "--field-selector",
        "regarding.name=canary",
        "-o",
        "json",
    )
    assert "AnalysisErrors" in events

    # a manual abort of the next version rolls back too, and the request is consumed once
    kubectl("apply", "-f", "-", input=_md(namespace, image, "4.0.0", steps))
    wait_until(lambda: _status(namespace).get("canaryVersion") == "4.0.0", timeout=60, what="a new canary")
    kubectl("annotate", "mdep", "canary", "-n", namespace, "modelrollout.io/abort=e2e-1", "--overwrite")
    wait_until(
        lambda: _status(namespace).get("rollout", {}).get("phase") == "RolledBack",
        timeout=120,
        what="the abort",
    )
    assert _status(namespace)["handledRequests"]["abort"] == "e2e-1"
