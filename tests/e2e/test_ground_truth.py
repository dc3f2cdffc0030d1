"""Ground truth on a real cluster: the ground-truth sample's two pods share one prediction log (SQLite
on the PVC), so a label sent to the other pod, with the token from the Secret, joins the
prediction; a label without it is refused; labels imported in bulk inside a pod count; both pods
export the same figures.

Each pod is reached on its own through ``kubectl port-forward pod/NAME`` (a port-forward to the
Service picks one pod, which could not show a label crossing pods); the Service is used once, as a
client would. Written without a cluster with nodes to run it on (the real-API tier has a fake node
that runs no container): `make e2e` on kind is its first run.
"""

from __future__ import annotations

import base64
import contextlib
import json
import secrets
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Iterator

import yaml

from tests.e2e.conftest import ROOT, kubectl, wait_until
from tests.e2e.test_online_serving import _free_port, _try

NAME = "iris-truth"
SECRET = "iris-feedback"
PVC = """
apiVersion: v1
kind: PersistentVolumeClaim
metadata: {name: truth-predictions}
spec:
  accessModes: [ReadWriteOnce]
  resources: {requests: {storage: 100Mi}}
"""
ROWS = [[5.1, 3.5, 1.4, 0.2], [6.7, 3.0, 5.2, 2.3], [6.0, 2.7, 4.2, 1.3]]
FIGURES_TIMEOUT_S = 90  # each pod recomputes its figures every 15 s (the runtime's default)


def _call(port: int, path: str, body: dict | None = None, token: str | None = None) -> tuple[int, dict]:
    """(status, JSON body) of a POST (or GET without a body) to 127.0.0.1:port; HTTP errors too."""
    headers = {"Content-Type": "application/json"} | ({"Authorization": f"Bearer {token}"} if token else {})
    data = None if body is None else json.dumps(body).encode()
    request = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, headers=headers,
                                     method="GET" if body is None else "POST")  # fmt: skip
    try:
        with urllib.request.urlopen(request, timeout=10) as response:
            return response.status, json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read() or b"{}")


def _ready(port: int) -> bool:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/readyz", timeout=5) as response:
        return response.status == 200


def _metric(port: int, name: str) -> float | None:
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    values = [float(line.split()[-1]) for line in text.splitlines() if line.startswith(name + " ")]
    return max(values) if values else None


@contextlib.contextmanager
def _forward(namespace: str, target: str, remote_port: int) -> Iterator[int]:
    """``kubectl port-forward`` to one pod (``pod/NAME``) or the Service; the local port, once it answers."""
    port = _free_port()
    proc = subprocess.Popen(["kubectl", "port-forward", "-n", namespace, target, f"{port}:{remote_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)  # fmt: skip
    try:
        wait_until(lambda: _try(lambda: _ready(port)), timeout=60, what=f"port-forward to {target}")
        yield port
    finally:
        proc.terminate()
        with contextlib.suppress(subprocess.TimeoutExpired):
            proc.wait(timeout=10)


def _deploy(namespace: str, image: str) -> str:
    """The sample as its header says: a token Secret of our own, the PVC, the ModelDeployment; the
    token read back from the Secret (what a label sender would be given)."""
    kubectl(
        "create",
        "secret",
        "generic",
        SECRET,
        "-n",
        namespace,
        f"--from-literal=token={secrets.token_hex(24)}",
    )
    kubectl("apply", "-n", namespace, "-f", "-", input=PVC)
    sample = yaml.safe_load(
        (ROOT / "bentos" / "iris" / "sample-ground-truth-modeldeployment.yaml").read_text()
    )
    sample["metadata"]["namespace"] = namespace
    sample["spec"]["model"]["image"] = image
    sample["spec"]["batch"]["volumeClaimName"] = "truth-predictions"
    sample["spec"]["batch"]["schedule"] = (
        "0 0 1 1 *"  # no batch run needed: hybrid pods answer from the model
    )
    assert sample["spec"]["serving"]["replicas"] == 2
    kubectl("apply", "-f", "-", input=yaml.safe_dump(sample))
    return base64.b64decode(
        kubectl("get", "secret", SECRET, "-n", namespace, "-o", "jsonpath={.data.token}")
    ).decode()


def _ready_pods(namespace: str) -> list[str]:
    out = json.loads(kubectl("get", "pods", "-n", namespace, "-l",
                             f"modelrollout.io/deployment={NAME},modelrollout.io/track=stable", "-o", "json"))  # fmt: skip
    return sorted(
        p["metadata"]["name"]
        for p in out["items"]
        if p["metadata"].get("deletionTimestamp") is None
        and any(c["type"] == "Ready" and c["status"] == "True" for c in p["status"].get("conditions", []))
    )


def test_labels_reach_any_pod_with_the_token_and_count_on_every_pod(namespace, operator, image):
    token = _deploy(namespace, image)
    wait_until(
        lambda: json.loads(kubectl("get", "mdep", NAME, "-n", namespace, "-o", "json")).get("status", {}).get("phase")
        == "Ready", timeout=300, what=f"{NAME} Ready",
    )  # fmt: skip
    pods = wait_until(lambda: len(p := _ready_pods(namespace)) == 2 and p, timeout=120, what="two Ready pods")
    with _forward(namespace, f"pod/{pods[0]}", 3000) as a, _forward(namespace, f"pod/{pods[1]}", 3000) as b:
        status, answer = _call(a, "/predict", {"rows": ROWS})
        assert status == 200, answer
        request_id, said = answer["request_id"], answer["predictions"]

        def label(port: int, row: int, value: str, with_token: str | None = token) -> tuple[int, dict]:
            return _call(
                port, "/feedback", {"request_id": request_id, "row": row, "label": value}, with_token
            )

        # the other pod finds the prediction in the shared log (written ~0.1 s after the answer)
        accepted = wait_until(lambda: (r := label(b, 0, said[0]))[0] != 404 and r, timeout=30, interval=0.5,
                              what="the label joined on the other pod")  # fmt: skip
        assert accepted[0] == 200 and accepted[1]["outcome"] == "accepted" and accepted[1]["correct"] is True
        assert (accepted[1]["version"], accepted[1]["track"]) == ("1.0.0", "stable")
        for forged in (None, "not-the-token-0123456789"):
            refused = label(b, 1, "setosa", with_token=forged)
            assert refused[0] == 401, refused
        wrong = "setosa" if said[1] != "setosa" else "virginica"
        status, body = label(b, 1, wrong)  # the forger pre-empted nothing
        assert status == 200 and body["correct"] is False and label(a, 1, wrong)[0] == 409
        duplicate = label(a, 0, said[0])
        assert duplicate[0] == 409 and duplicate[1]["outcome"] == "duplicate"

        report = _import_in_pod(namespace, pods[1], f"request_id,row,label\n{request_id},2,{said[2]}\n")
        assert (report["accepted"], report["unknown"]) == (1, 0), report

        for port in (a, b):  # both pods compute the version's figures from the shared log
            wait_until(lambda p=port: (_metric(p, "modelrollout_ground_truth_labelled") or 0) >= 3,
                       timeout=FIGURES_TIMEOUT_S, interval=3, what="3 labels in the figures")  # fmt: skip
            assert (_metric(port, "modelrollout_ground_truth_correct") or 0) >= 2

    with _forward(namespace, f"svc/{NAME}", 80) as service:  # through the Service, as a client calls it
        status, answer = _call(service, "/predict", {"rows": ROWS[:1]})
        assert status == 200, answer
        time.sleep(1)  # the log is written ~0.1 s after the answer (the label may reach another pod)
        outcome = _call(
            service, "/feedback", {"request_id": answer["request_id"], "row": 0, "label": "setosa"}, token
        )
        assert outcome[0] == 200 and outcome[1]["outcome"] == "accepted", outcome


def _import_in_pod(namespace: str, pod: str, csv_text: str) -> dict:
    """``modelrollout-batch labels import`` inside a serving pod (its env names the store), six
    hours "later" (``--now``); the JSON report."""
    script = (
        "cat > /tmp/labels.csv && modelrollout-batch labels import --input /tmp/labels.csv "
        f"--by request_id --now {time.time() + 6 * 3600:.0f}"
    )
    out = kubectl("exec", "-i", "-n", namespace, pod, "-c", "model", "--", "sh", "-c", script, input=csv_text)
    return json.loads(out.strip().splitlines()[-1])
