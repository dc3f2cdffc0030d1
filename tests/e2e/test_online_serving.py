"""A ModelDeployment on a real cluster becomes Ready pods that answer predictions."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request

import yaml

from tests.e2e.conftest import ROOT, kubectl, wait_until


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_sample_becomes_ready_and_predicts(namespace, operator, image):
    sample = yaml.safe_load((ROOT / "bentos" / "iris" / "sample-modeldeployment.yaml").read_text())
    sample["metadata"]["namespace"] = namespace
    sample["spec"]["model"]["image"] = image
    sample["spec"]["serving"]["replicas"] = 1
    kubectl("apply", "-f", "-", input=yaml.safe_dump(sample))

    def phase():
        out = json.loads(kubectl("get", "mdep", "iris", "-n", namespace, "-o", "json"))
        return out.get("status", {}).get("phase") == "Ready" and out

    md = wait_until(phase, timeout=300, what="ModelDeployment Ready")
    assert md["status"]["stableVersion"] == "1.0.0"
    assert md["status"]["observedGeneration"] == md["metadata"]["generation"]
    dep = json.loads(kubectl("get", "deployment", "iris-stable", "-n", namespace, "-o", "json"))
    assert dep["metadata"]["ownerReferences"][0]["uid"] == md["metadata"]["uid"]

    port = _free_port()
    forward = subprocess.Popen(
        ["kubectl", "port-forward", "-n", namespace, "svc/iris", f"{port}:80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def predict():
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/predict",
                method="POST",
                data=json.dumps({"rows": [[5.1, 3.5, 1.4, 0.2]]}).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())

        answer = wait_until(lambda: _try(predict), timeout=60, what="a prediction through the Service")
        assert "setosa" in json.dumps(answer)
    finally:
        forward.terminate()

    # drift repair on a real API server: a deleted child comes back
    kubectl("delete", "service", "iris", "-n", namespace)
    wait_until(
        lambda: _try(lambda: kubectl("get", "service", "iris", "-n", namespace)),
        timeout=60,
        what="the Service to be recreated",
    )


def _try(fn):
    try:
        return fn()
    except Exception:  # noqa: BLE001 - polled until the deadline
        time.sleep(0.5)
        return None
