"""End-to-end tests against a real cluster: the one KUBECONFIG (or ~/.kube/config) points at.

`make e2e` creates a kind cluster, builds and loads the example image, and runs these. With
no reachable cluster every test here is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.waiting import wait_until as _wait_until

ROOT = Path(__file__).resolve().parents[2]


def _cluster_reason() -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    config = os.environ.get("KUBECONFIG") or str(Path.home() / ".kube" / "config")
    if not any(Path(p).exists() for p in config.split(os.pathsep) if p):
        return "no cluster: set KUBECONFIG (or run `make e2e`, which creates a kind cluster)"
    try:
        subprocess.run(
            ["kubectl", "version", "--request-timeout=5s"], check=True, capture_output=True, timeout=15
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"the cluster in KUBECONFIG is not reachable: {exc}"
    runtimes = subprocess.run(  # kubelet-lite's fake node says so in its runtime version
        ["kubectl", "get", "nodes", "-o", "jsonpath={.items[*].status.nodeInfo.containerRuntimeVersion}",
         "--request-timeout=5s"],
        capture_output=True,
        text=True,
        timeout=15,
    ).stdout.split()  # fmt: skip
    if not [r for r in runtimes if not r.startswith("kubelet-lite")]:
        return "the cluster has no node that runs containers (a bare control plane: use `make test-cluster`)"
    return None


def pytest_collection_modifyitems(config, items):
    reason = _cluster_reason()
    if reason:
        for item in items:
            if "e2e" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=f"e2e skipped: {reason}"))


def kubectl(*args: str, input: str | None = None, timeout: float = 60) -> str:
    result = subprocess.run(["kubectl", *args], input=input, capture_output=True, text=True, timeout=timeout)
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def wait_until(predicate, *, timeout: float, interval: float = 2.0, what: str = "condition"):
    return _wait_until(predicate, timeout=timeout, interval=interval, what=what)


@pytest.fixture(scope="session")
def image() -> str:
    return os.environ.get("MODELROLLOUT_E2E_IMAGE", "modelrollout/iris:dev")


@pytest.fixture(scope="session")
def namespace() -> Iterator[str]:
    ns = f"mr-e2e-{uuid.uuid4().hex[:6]}"
    kubectl("apply", "--server-side", "-f", str(ROOT / "crds"))
    kubectl("wait", "--for=condition=Established", "crd/modeldeployments.modelrollout.io", "--timeout=60s")
    kubectl("create", "namespace", ns)
    yield ns
    kubectl("delete", "namespace", ns, "--wait=false")


@pytest.fixture(scope="session")
def operator(namespace: str) -> Iterator[subprocess.Popen]:
    """The operator, run locally against the cluster (as the README tells a newcomer to)."""
    logs = ROOT / ".pytest_cache"  # pytest creates it only at the end of a first session
    logs.mkdir(exist_ok=True)
    log = open(logs / f"operator-{namespace}.log", "w")  # noqa: SIM115
    env = {**os.environ, "MODELROLLOUT_RESYNC_SECONDS": "5"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "modelrollout.cli.main", "operator", "-n", namespace, "--liveness", ""],
        stdout=log,
        stderr=subprocess.STDOUT,
        env=env,
    )
    yield proc
    proc.terminate()
    try:
        proc.wait(timeout=20)
    except subprocess.TimeoutExpired:
        proc.kill()
    log.close()
