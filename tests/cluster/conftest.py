"""The real-API tier: a real Kubernetes API server from KUBECONFIG (`make test-cluster`).

What the fakes cannot prove is proven here: the CRD as the API server judges it (structural
schema, CEL cost and defaults), names, events, RBAC, server-side apply field ownership, garbage
collection, and the operator started exactly as the README and the chart start it.

With no reachable API server every test here is skipped with the reason. A bare control plane
(no scheduler, no kubelet) gets one fake node: kubelet-lite, from $MODELROLLOUT_KUBELET_LITE or
../shared/tools/kubelet_lite.py beside the repository, which binds pods and reports them Ready.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import urllib.request
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.procs import stop_group
from tests.support.waiting import wait_until

__all__ = ["wait_until"]

ROOT = Path(__file__).resolve().parents[2]
CRD_NAME = "modeldeployments.modelrollout.io"
TEMPLATE_CRD_NAMES = (
    "modelanalysistemplates.modelrollout.io",
    "clustermodelanalysistemplates.modelrollout.io",
)
LOG_DIR = Path(os.environ.get("MODELROLLOUT_CLUSTER_LOGS", tempfile.gettempdir())) / "modelrollout-cluster"


def _reason() -> str | None:
    if shutil.which("kubectl") is None:
        return "kubectl is not installed"
    config = os.environ.get("KUBECONFIG")
    if not config:
        return "no KUBECONFIG: point it at a Kubernetes API server to run the real-API tier"
    try:
        subprocess.run(
            ["kubectl", "get", "--raw", "/readyz", "--request-timeout=5s"],
            check=True,
            capture_output=True,
            timeout=15,
        )
    except (subprocess.SubprocessError, OSError) as exc:
        return f"the API server in KUBECONFIG ({config}) is not reachable: {exc}"
    return None


REASON = _reason()


def pytest_collection_modifyitems(config, items):
    if REASON:
        for item in items:
            if "/cluster/" in str(item.fspath):
                item.add_marker(pytest.mark.skip(reason=f"real-API tier skipped: {REASON}"))


def pytest_report_header(config):
    if REASON:
        return f"real-API tier: skipped ({REASON})"
    version = json.loads(kubectl("version", "-o", "json")).get("serverVersion", {})
    return f"real-API tier: API server {version.get('gitVersion')} at KUBECONFIG={os.environ['KUBECONFIG']}"


# --- kubectl ---------------------------------------------------------------------------------


def run_kubectl(*args: str, input: str | None = None, timeout: float = 60, env: dict | None = None):
    return subprocess.run(
        ["kubectl", *args],
        input=input,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, **(env or {})},
    )


def kubectl(*args: str, input: str | None = None, timeout: float = 60, env: dict | None = None) -> str:
    result = run_kubectl(*args, input=input, timeout=timeout, env=env)
    if result.returncode != 0:
        raise AssertionError(f"kubectl {' '.join(args)} failed: {result.stderr.strip()}")
    return result.stdout


def get(kind: str, name: str, namespace: str) -> dict[str, Any] | None:
    result = run_kubectl("get", kind, name, "-n", namespace, "-o", "json")
    if result.returncode != 0:
        if "NotFound" in result.stderr:
            return None
        raise AssertionError(result.stderr)
    return json.loads(result.stdout)


def apply(obj: dict[str, Any] | str, *extra: str) -> str:
    text = obj if isinstance(obj, str) else json.dumps(obj)
    return kubectl("apply", "--server-side", "--field-manager=test-user", *extra, "-f", "-", input=text)


def dry_run(obj: dict[str, Any], namespace: str | None):
    """`kubectl create --dry-run=server --validate=strict` of one object (in `namespace` if given)."""
    if namespace is not None:
        obj = {**obj, "metadata": {**obj["metadata"], "namespace": namespace}}
    return run_kubectl("create", "--dry-run=server", "--validate=strict", "-f", "-", input=json.dumps(obj))


def events_for(namespace: str, name: str) -> list[dict[str, Any]]:
    """Events about one object, as `kubectl get events` shows them (core/v1 view)."""
    items = json.loads(kubectl("get", "events", "-n", namespace, "-o", "json"))["items"]
    return [e for e in items if e.get("involvedObject", {}).get("name") == name]


# --- fixtures --------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def crd() -> str:
    """Every CRD of crds/ installed and Established (the ModelDeployment's name is returned)."""
    kubectl("apply", "--server-side", "--force-conflicts", "-f", str(ROOT / "crds"))
    for name in (CRD_NAME, *TEMPLATE_CRD_NAMES):
        kubectl("wait", "--for=condition=Established", f"crd/{name}", "--timeout=60s")
    return CRD_NAME


@pytest.fixture(scope="session")
def fake_node() -> Iterator[None]:
    """Pods become Running/Ready: a real node if the cluster has one, else kubelet-lite."""
    nodes = json.loads(kubectl("get", "nodes", "-o", "json"))["items"]
    ready = [
        n
        for n in nodes
        if any(c["type"] == "Ready" and c["status"] == "True" for c in n["status"].get("conditions", []))
        and not n["metadata"].get("name", "").startswith("lite-node")
    ]
    if ready:
        yield
        return
    script = Path(
        os.environ.get("MODELROLLOUT_KUBELET_LITE", ROOT.parent / "shared" / "tools" / "kubelet_lite.py")
    )
    if not script.exists():
        pytest.skip(
            f"the cluster has no Ready node and no kubelet-lite at {script} (MODELROLLOUT_KUBELET_LITE)"
        )
    LOG_DIR.mkdir(parents=True, exist_ok=True)
    log = open(LOG_DIR / "kubelet-lite.log", "w")  # noqa: SIM115 - closed at teardown
    proc = subprocess.Popen(
        [sys.executable, str(script), "--pod-ip", "127.0.1.0/24"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        wait_until(
            lambda: (
                "True"
                in kubectl(
                    "get", "nodes", "-o", "jsonpath={.items[*].status.conditions[?(@.type=='Ready')].status}"
                )
            ),
            timeout=30,
            what="the fake node to be Ready",
        )
        yield
    finally:
        stop_group(proc, timeout_s=10)
        log.close()


@pytest.fixture
def namespace_factory(crd) -> Iterator[Callable[[], str]]:
    created: list[str] = []

    def make() -> str:
        ns = f"mr-it-{uuid.uuid4().hex[:6]}"
        kubectl("create", "namespace", ns)
        created.append(ns)
        return ns

    yield make
    for ns in created:
        _strip_finalizers(ns)
        kubectl("delete", "namespace", ns, "--wait=false")
    LEFT_BEHIND.extend(created)


# Namespaces a test deleted: an operator still running then may have put its finalizer back on a
# ModelDeployment, which would hold the namespace in Terminating for ever once it stops.
LEFT_BEHIND: list[str] = []


@pytest.fixture(scope="session", autouse=True)
def _no_namespace_stuck_terminating() -> Iterator[None]:
    yield
    for ns in LEFT_BEHIND:
        if run_kubectl("get", "namespace", ns).returncode == 0:
            run_kubectl("delete", "mdep", "--all", "-n", ns, "--wait=false")
            _strip_finalizers(ns)
            # the fake node is gone by now: nobody would finish a graceful pod deletion
            run_kubectl("delete", "pods", "--all", "-n", ns, "--grace-period=0", "--force", "--wait=false")


def _strip_finalizers(namespace: str) -> None:
    """A ModelDeployment left with kopf's finalizer and no operator would block the namespace."""
    result = run_kubectl("get", "mdep", "-n", namespace, "-o", "name")
    for ref in result.stdout.split():
        run_kubectl("patch", ref, "-n", namespace, "--type=merge", "-p", '{"metadata":{"finalizers":null}}')


@pytest.fixture
def namespace(namespace_factory) -> str:
    return namespace_factory()


class Operator:
    """`modelrollout operator` as a process, started the README's way (or the chart's); ready
    once kopf's liveness endpoint (on a free loopback port) answers."""

    def __init__(self, args: list[str], env: dict[str, str], label: str) -> None:
        LOG_DIR.mkdir(parents=True, exist_ok=True)
        self.log_path = LOG_DIR / f"operator-{label}-{uuid.uuid4().hex[:4]}.log"
        self.args, self.env = args, env
        self.proc: subprocess.Popen | None = None

    def start(self) -> Operator:
        port = free_port()
        log = open(self.log_path, "a")  # noqa: SIM115 - the child holds it
        self.proc = subprocess.Popen(
            [str(Path(sys.executable).parent / "modelrollout"), "operator", *self.args]
            + ["--liveness", f"http://127.0.0.1:{port}/healthz"],
            stdout=log,
            stderr=subprocess.STDOUT,
            env=self.env,
            start_new_session=True,
        )
        log.close()
        wait_until(lambda: self._live(port), timeout=30, what=f"the operator to start (log: {self.log_path})")
        return self

    def _live(self, port: int) -> bool:
        assert self.alive(), f"the operator exited: {self.log()[-3000:]}"
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=2) as response:
                return response.status == 200
        except OSError:
            return False

    def log(self) -> str:
        return self.log_path.read_text(errors="replace") if self.log_path.exists() else ""

    def alive(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def stop(self) -> None:
        if self.proc is not None:
            stop_group(self.proc, timeout_s=15)
            self.proc = None


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture
def operator_factory(crd) -> Iterator[Callable[..., Operator]]:
    started: list[Operator] = []

    def start(*args: str, kubeconfig: str | None = None, label: str = "cluster-wide", **env: str) -> Operator:
        full_env = {
            **os.environ,
            "MODELROLLOUT_RESYNC_SECONDS": "3",
            "MODELROLLOUT_METRICS_PORT": "0",
            **env,
        }
        if kubeconfig:
            full_env["KUBECONFIG"] = kubeconfig
        op = Operator(list(args), full_env, label).start()
        started.append(op)
        return op

    yield start
    for op in started:
        op.stop()
