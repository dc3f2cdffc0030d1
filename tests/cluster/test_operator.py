"""`modelrollout operator` against a real API server, started as the README starts it
(cluster-wide) and as the chart does with watchNamespaces (-n): children with owner
references, status through the subresource, events, drift repair, garbage collection, a
restart that rewrites nothing, and manual requests that act once or are refused."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

from tests.cluster.conftest import ROOT, apply, events_for, get, kubectl, run_kubectl, wait_until

V1 = {"name": "iris", "version": "1.0.0", "image": "example.com/iris:1.0.0"}
CHILDREN = [("deployment", "iris-stable"), ("service", "iris")]


def model_deployment(namespace: str, *, model=V1, name="iris", **spec) -> dict:
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {"name": name, "namespace": namespace},
        "spec": {"model": model, "serving": {"replicas": 2}, **spec},
    }


def status(namespace: str, name: str = "iris") -> dict:
    return (get("mdep", name, namespace) or {}).get("status") or {}


def ready(namespace: str, name: str = "iris") -> dict | None:
    body = get("mdep", name, namespace) or {}
    st = body.get("status") or {}
    if st.get("phase") == "Ready" and st.get("observedGeneration") == body["metadata"]["generation"]:
        return st
    return None


def resource_versions(namespace: str) -> dict[str, str]:
    out = {}
    for kind in ("mdep", "deployment", "service"):
        for item in json.loads(kubectl("get", kind, "-n", namespace, "-o", "json"))["items"]:
            out[f"{kind}/{item['metadata']['name']}"] = item["metadata"]["resourceVersion"]
    return out


def cli(*args: str, timeout: float = 60) -> subprocess.CompletedProcess:
    exe = Path(sys.executable).parent / "modelrollout"
    return subprocess.run([str(exe), *args], capture_output=True, text=True, timeout=timeout)


def delete_and_wait_for_collection(namespace: str) -> None:
    kubectl("delete", "mdep", "iris", "-n", namespace, "--wait=true", "--timeout=60s")
    for kind, child in CHILDREN:
        wait_until(
            lambda kind=kind, child=child: get(kind, child, namespace) is None,
            timeout=90,
            what=f"{kind}/{child} to be garbage-collected",
        )


@pytest.mark.parametrize("scope", ["cluster-wide", "namespaced"])
def test_lifecycle_on_a_real_api_server(scope, namespace_factory, operator_factory, fake_node):
    namespace = namespace_factory()
    # the pods the operator creates meet the "restricted" Pod Security profile, enforced here
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    args = () if scope == "cluster-wide" else ("-n", namespace)
    operator = operator_factory(*args, label=scope)
    apply(model_deployment(namespace))
    st = wait_until(lambda: ready(namespace), timeout=90, what="phase Ready")
    assert st["stableVersion"] == "1.0.0" and st["readyReplicas"] == 2

    # children, each with a controller owner reference to this object
    uid = get("mdep", "iris", namespace)["metadata"]["uid"]
    for kind, child in CHILDREN:
        refs = get(kind, child, namespace)["metadata"]["ownerReferences"]
        assert [(r["kind"], r["uid"], r.get("controller")) for r in refs] == [("ModelDeployment", uid, True)]

    # status only through the status subresource
    managed = json.loads(
        kubectl("get", "mdep", "iris", "-n", namespace, "-o", "json", "--show-managed-fields")
    )["metadata"]["managedFields"]
    status_writers = {m["manager"] for m in managed if "f:status" in json.dumps(m.get("fieldsV1", {}))}
    assert status_writers and all(
        m.get("subresource") == "status" for m in managed if m["manager"] in status_writers
    ), managed

    # events an SRE sees with kubectl
    reasons = wait_until(
        lambda: (
            {e["reason"] for e in events_for(namespace, "iris")} >= {"Created", "PhaseReady"}
            and {e["reason"] for e in events_for(namespace, "iris")}
        ),
        timeout=30,
        what="events",
    )
    assert "PhaseReady" in reasons
    assert "PhaseReady" in kubectl("get", "events", "-n", namespace)

    # drift: a deleted child comes back, a hand-edited replica count is restored
    kubectl("delete", "service", "iris", "-n", namespace)
    wait_until(lambda: get("service", "iris", namespace), timeout=30, what="the Service to come back")
    kubectl("scale", "deployment", "iris-stable", "-n", namespace, "--replicas=5")
    wait_until(
        lambda: get("deployment", "iris-stable", namespace)["spec"]["replicas"] == 2,
        timeout=30,
        what="replicas restored to 2",
    )
    wait_until(lambda: ready(namespace), timeout=60, what="Ready again")

    # a restart rewrites nothing (after the fake node and controllers have settled)
    time.sleep(4)
    operator.stop()
    before = resource_versions(namespace)
    operator.start()
    time.sleep(10)  # three resync periods
    assert resource_versions(namespace) == before
    assert "Traceback" not in operator.log()

    delete_and_wait_for_collection(namespace)


def test_namespaced_operator_leaves_other_namespaces_alone(namespace_factory, operator_factory, fake_node):
    watched, other = namespace_factory(), namespace_factory()
    operator_factory("-n", watched, label="namespaced")
    apply(model_deployment(watched))
    apply(model_deployment(other))
    wait_until(lambda: ready(watched), timeout=90, what="the watched one Ready")
    time.sleep(3)
    assert status(other) == {} and get("deployment", "iris-stable", other) is None


def test_requests_act_once_or_are_refused_with_an_event(namespace, operator_factory, fake_node):
    operator_factory()
    slow = {"steps": [{"setWeight": 10, "pause": "1h"}], "scaleDownDelay": "0s"}
    apply(model_deployment(namespace, rollout=slow))
    wait_until(lambda: ready(namespace), timeout=90, what="phase Ready")
    kube = ("-n", namespace)

    # the CLI refuses before writing anything when there is nothing to act on
    result = cli("promote", "iris", *kube)
    assert result.returncode == 1 and "nothing to promote" in result.stderr
    assert "modelrollout.io/promote" not in (
        get("mdep", "iris", namespace)["metadata"].get("annotations") or {}
    )

    # an annotation written anyway (GitOps, kubectl) is consumed and refused with an event
    kubectl("annotate", "mdep", "iris", *kube, "modelrollout.io/promote=left-in-git")
    wait_until(
        lambda: (status(namespace).get("handledRequests") or {}).get("promote") == "left-in-git",
        timeout=30,
        what="the stale promote to be handled",
    )
    assert status(namespace)["handledRequests"]["results"][0]["outcome"] == "Refused"
    wait_until(
        lambda: "PromoteRefused" in {e["reason"] for e in events_for(namespace, "iris")},
        timeout=30,
        what="a PromoteRefused event",
    )

    # a new version: the stale promote does not skip its steps
    v2 = {**V1, "version": "2.0.0", "image": "example.com/iris:2.0.0"}
    apply(model_deployment(namespace, model=v2, rollout=slow))
    wait_until(
        lambda: (status(namespace).get("rollout") or {}).get("stepStartedAt"),
        timeout=90,
        what="the canary step to start",
    )
    time.sleep(5)
    assert status(namespace)["rollout"]["phase"] == "Progressing"
    assert get("deployment", "iris-canary", namespace)["spec"]["replicas"] >= 1

    # a promote made for this rollout acts, and the CLI reports the operator's answer
    result = cli("promote", "iris", *kube)
    assert result.returncode == 0, result.stderr
    assert "accepted" in result.stdout
    wait_until(lambda: status(namespace).get("stableVersion") == "2.0.0", timeout=90, what="promotion")
    # and nothing is left to promote
    result = cli("promote", "iris", *kube)
    assert result.returncode == 1 and "nothing to promote" in result.stderr


def test_spec_the_operator_cannot_act_on_is_a_condition_and_an_event(namespace, operator_factory):
    """What the schema cannot judge (a request above its limit) reaches the SRE as Degraded
    plus a Warning event, and the object is not lost."""
    operator_factory()
    resources = {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}}
    body = model_deployment(namespace)
    body["spec"]["serving"]["resources"] = resources
    apply(body)
    cond = wait_until(
        lambda: next(
            (
                c
                for c in status(namespace).get("conditions", [])
                if c["type"] == "Degraded" and c["status"] == "True"
            ),
            None,
        ),
        timeout=30,
        what="Degraded",
    )
    assert cond["reason"] == "InvalidSpec" and "exceeds its limit" in cond["message"]
    events = wait_until(
        lambda: [e for e in events_for(namespace, "iris") if e["reason"] == "InvalidSpec"],
        timeout=30,
        what="an InvalidSpec event",
    )
    assert events[0]["type"] == "Warning"
    assert run_kubectl("get", "mdep", "iris", "-n", namespace).returncode == 0


def test_hybrid_mode_cronjob_is_accepted_and_its_pods_meet_restricted(namespace, operator_factory, fake_node):
    kubectl("label", "namespace", namespace, "pod-security.kubernetes.io/enforce=restricted")
    operator_factory()
    batch = {"schedule": "0 2 * * *", "input": {"path": "/data/in.parquet", "keyColumns": ["id"]}}
    apply(model_deployment(namespace, mode="hybrid", batch=batch))
    cronjob = wait_until(lambda: get("cronjob", "iris-batch", namespace), timeout=60, what="the CronJob")
    assert cronjob["metadata"]["ownerReferences"][0]["kind"] == "ModelDeployment"
    kubectl("create", "job", "--from=cronjob/iris-batch", "manual-1", "-n", namespace)
    pods = wait_until(
        lambda: json.loads(kubectl("get", "pods", "-n", namespace, "-l", "job-name=manual-1", "-o", "json"))[
            "items"
        ],
        timeout=60,
        what="the batch pod to be admitted",
    )
    assert pods[0]["spec"]["securityContext"]["runAsNonRoot"] is True
    wait_until(
        lambda: (status(namespace).get("batch") or {}).get("lastRun"), timeout=60, what="the run in status"
    )


SAMPLES = sorted((ROOT / "bentos").rglob("sample-*modeldeployment.yaml"))


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_becomes_ready_as_the_readme_applies_it(path, namespace, operator_factory, fake_node):
    """`kubectl apply -f` of a sample (with the PVC it needs, and the feedback token's Secret
    created as the sample's header says), the operator cluster-wide."""
    operator_factory()
    for doc in yaml.safe_load_all(path.read_text()):
        ref = ((doc or {}).get("spec", {}).get("groundTruth") or {}).get("feedbackTokenSecretRef")
        if ref:
            kubectl("create", "secret", "generic", ref["name"], "-n", namespace,
                    f"--from-literal={ref['key']}={secrets.token_hex(24)}")  # fmt: skip
    for doc in yaml.safe_load_all(path.read_text()):
        if doc:
            doc["metadata"]["namespace"] = namespace
            apply(doc)
    pvc = yaml.safe_load((ROOT / "bentos" / "iris" / "sample-predictions-pvc.yaml").read_text())
    pvc["metadata"]["namespace"] = namespace
    apply(pvc)
    name = next(d for d in yaml.safe_load_all(path.read_text()) if d)["metadata"]["name"]
    wait_until(lambda: ready(namespace, name), timeout=90, what=f"{name} Ready")
    assert {"Created", "PhaseReady"} <= {e["reason"] for e in events_for(namespace, name)}
