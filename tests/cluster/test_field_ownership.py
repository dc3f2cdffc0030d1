"""Server-side apply field ownership on a real API server: the operator never fights the HPA
for replicas, repairs what a person edits by hand, and takes a field back when it owns it again."""

from __future__ import annotations

import json
import time

from tests.cluster.conftest import apply, get, kubectl, wait_until
from tests.cluster.test_operator import model_deployment, ready, status

AUTOSCALED = {"replicas": 2, "autoscaling": {"minReplicas": 2, "maxReplicas": 6}}


def replicas(namespace: str) -> int:
    return get("deployment", "iris-stable", namespace)["spec"]["replicas"]


def managers(namespace: str, kind: str, name: str) -> dict[str, dict]:
    body = json.loads(kubectl("get", kind, name, "-n", namespace, "-o", "json", "--show-managed-fields"))
    return {
        m["manager"] + (f"/{m['subresource']}" if m.get("subresource") else ""): m
        for m in body["metadata"]["managedFields"]
    }


def test_replicas_chosen_by_the_autoscaler_are_not_fought(namespace, operator_factory, fake_node):
    operator = operator_factory()
    body = model_deployment(namespace)
    body["spec"]["serving"] = AUTOSCALED
    apply(body)
    wait_until(lambda: ready(namespace), timeout=90, what="Ready")
    wait_until(lambda: get("horizontalpodautoscaler", "iris-stable", namespace), timeout=30, what="the HPA")
    # what the HPA controller does: write the scale subresource under its own manager
    kubectl("scale", "deployment", "iris-stable", "-n", namespace, "--replicas=4")
    time.sleep(10)  # three resync periods
    assert replicas(namespace) == 4
    owners = managers(namespace, "deployment", "iris-stable")
    assert "f:replicas" not in json.dumps(owners["modelrollout-operator"]["fieldsV1"])
    assert "ApplyFailed" not in json.dumps(status(namespace)) and "onflict" not in operator.log()


def test_turning_autoscaling_on_keeps_the_replica_count_and_off_takes_it_back(
    namespace, operator_factory, fake_node
):
    operator_factory()
    body = model_deployment(namespace)
    body["spec"]["serving"] = {"replicas": 3}
    apply(body)
    wait_until(lambda: ready(namespace) and replicas(namespace) == 3, timeout=90, what="3 replicas")
    body["spec"]["serving"] = {"replicas": 3, "autoscaling": {"minReplicas": 2, "maxReplicas": 6}}
    apply(body)
    wait_until(lambda: get("horizontalpodautoscaler", "iris-stable", namespace), timeout=30, what="the HPA")
    time.sleep(6)
    # released through the documented hand-over, so it does not fall back to the default (1)
    assert replicas(namespace) == 3
    body["spec"]["serving"] = {"replicas": 2}
    apply(body)
    wait_until(lambda: replicas(namespace) == 2, timeout=30, what="the operator to own replicas again")
    wait_until(
        lambda: get("horizontalpodautoscaler", "iris-stable", namespace) is None,
        timeout=30,
        what="HPA deleted",
    )


def test_hand_edits_are_repaired(namespace, operator_factory, fake_node):
    operator_factory()
    apply(model_deployment(namespace))
    wait_until(lambda: ready(namespace), timeout=90, what="Ready")
    kubectl(
        "patch", "deployment", "iris-stable", "-n", namespace, "--type=strategic",
        "-p", json.dumps({"spec": {"template": {"spec": {"containers": [{"name": "model", "image": "evil/iris:6.6.6"}]}}}}),
    )  # fmt: skip
    kubectl(
        "patch",
        "service",
        "iris",
        "-n",
        namespace,
        "--type=merge",
        "-p",
        '{"spec":{"selector":{"app":"other"}}}',
    )
    wait_until(
        lambda: (
            get("deployment", "iris-stable", namespace)["spec"]["template"]["spec"]["containers"][0]["image"]
            == "example.com/iris:1.0.0"
        ),
        timeout=30,
        what="the image to be restored",
    )
    # the operator's fields are its own again; a field only the person added stays theirs
    wait_until(
        lambda: (
            "app" not in get("service", "iris", namespace)["spec"]["selector"]
            or "modelrollout.io/deployment" in get("service", "iris", namespace)["spec"]["selector"]
        ),
        timeout=30,
        what="the selector to be restored",
    )
    selector = get("service", "iris", namespace)["spec"]["selector"]
    assert selector["modelrollout.io/deployment"] == "iris"
