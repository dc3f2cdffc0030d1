"""Static and hybrid serving on a real cluster: a CronJob-triggered run publishes into SQLite
on a PersistentVolumeClaim, and the hybrid service answers from it."""

from __future__ import annotations

import json
import subprocess
import urllib.request

import yaml

from tests.e2e.conftest import ROOT, kubectl, wait_until
from tests.e2e.test_online_serving import _free_port, _try

PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: predictions}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
"""


def test_cronjob_run_publishes_and_the_service_serves_it(namespace, operator, image):
    kubectl("apply", "-n", namespace, "-f", "-", input=PVC)
    sample = yaml.safe_load((ROOT / "bentos" / "iris" / "sample-hybrid-modeldeployment.yaml").read_text())
    sample["metadata"].update(name="hybrid", namespace=namespace)
    sample["spec"]["model"]["image"] = image
    sample["spec"]["serving"]["replicas"] = 1
    sample["spec"]["batch"]["volumeClaimName"] = "predictions"
    sample["spec"]["batch"]["schedule"] = "0 0 1 1 *"  # the test triggers the run itself
    kubectl("apply", "-f", "-", input=yaml.safe_dump(sample))
    wait_until(
        lambda: _try(lambda: kubectl("get", "cronjob", "hybrid-batch", "-n", namespace)),
        timeout=60,
        what="the CronJob",
    )
    kubectl("create", "job", "hybrid-run-1", "--from=cronjob/hybrid-batch", "-n", namespace)
    kubectl(
        "wait", "--for=condition=complete", "job/hybrid-run-1", "-n", namespace, "--timeout=300s", timeout=320
    )

    def published():
        status = json.loads(kubectl("get", "mdep", "hybrid", "-n", namespace, "-o", "json")).get("status", {})
        batch = status.get("batch") or {}
        return batch.get("publishedVersion") == "hybrid-run-1" and status.get("phase") == "Ready" and batch

    batch = wait_until(published, timeout=300, what="the run published and the service Ready")
    assert batch["rows"] > 0 and batch["lastRun"]["phase"] == "Succeeded"

    port = _free_port()
    forward = subprocess.Popen(
        ["kubectl", "port-forward", "-n", namespace, "svc/hybrid", f"{port}:80"],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:

        def lookup(keys, rows=None):
            body = {"keys": keys, **({"rows": rows} if rows else {})}
            request = urllib.request.Request(
                f"http://127.0.0.1:{port}/lookup",
                method="POST",
                data=json.dumps(body).encode(),
                headers={"Content-Type": "application/json"},
            )
            with urllib.request.urlopen(request, timeout=5) as response:
                return json.loads(response.read())

        hit = wait_until(lambda: _try(lambda: lookup([1])), timeout=60, what="a lookup")
        assert hit["answers"][0]["found"] and hit["answers"][0]["source"] == "lookup"
        miss = lookup([10_000_000], rows=[[5.1, 3.5, 1.4, 0.2]])
        assert miss["answers"][0]["source"] == "model"
    finally:
        forward.terminate()
