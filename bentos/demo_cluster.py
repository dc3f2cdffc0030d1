"""The cluster part of ``bentos/demo.py``: the operator on the cluster ``kubectl`` reaches (KUBECONFIG).

Applies the CRD, runs the operator locally in the background (``python -m modelrollout.cli.main
operator``, stopped when the demo ends), applies ``bentos/iris/sample-modeldeployment.yaml`` and
waits, bounded, for it to become Ready, printing ``kubectl get mdep`` and the children. The
sample's image (``modelrollout/iris:dev``) must be in the cluster: ``make e2e`` builds it and
loads it into kind, which needs Docker; without Docker the demo says so and still shows what the
operator created. The ModelDeployment is left in place for a look (the demo prints how to delete it).
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import httpx

from demo_support import REPO_ROOT, SETOSA_ROW, Console, DemoFailed, free_port, stop_group, wait_until

SAMPLE = REPO_ROOT / "bentos" / "iris" / "sample-modeldeployment.yaml"
NAMESPACE, NAME = "default", "iris"
READY_TIMEOUT_S = 180.0
KUBECTL_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0


def cluster_reachable(*, timeout_s: float = 10.0) -> tuple[bool, str]:
    """(reachable, why): ``kubectl version`` got a server version within ``timeout_s``."""
    kubectl = shutil.which("kubectl")
    if kubectl is None:
        return False, "kubectl is not installed"
    try:
        result = subprocess.run([kubectl, "version", "-o", "json", "--request-timeout=5s"],
                                capture_output=True, text=True, timeout=timeout_s, check=False)  # fmt: skip
    except subprocess.TimeoutExpired:
        return False, f"kubectl version did not answer within {timeout_s:.0f} s"
    try:
        server = json.loads(result.stdout or "{}").get("serverVersion")
    except json.JSONDecodeError:
        server = None
    if server:
        return (
            True,
            f"reachable (server {server.get('gitVersion', '?')}, KUBECONFIG={os.environ.get('KUBECONFIG', '~/.kube/config')})",
        )
    reason = (result.stderr.strip().splitlines() or ["no server version"])[-1]
    return False, f"not reachable ({reason})"


def docker_available() -> bool:
    if shutil.which("docker") is None:
        return False
    with contextlib.suppress(subprocess.TimeoutExpired):
        return (
            subprocess.run(["docker", "info"], capture_output=True, timeout=10, check=False).returncode == 0
        )
    return False


def kubectl(console: Console, *args: str, show: bool = True, check: bool = True) -> str:
    if show:
        console.command(["kubectl", *args])
    result = subprocess.run(
        ["kubectl", *args], capture_output=True, text=True, timeout=KUBECTL_TIMEOUT_S, check=False
    )
    if check and result.returncode != 0:
        raise DemoFailed(f"kubectl {' '.join(args)} failed ({result.returncode}): {result.stderr.strip()}")
    return result.stdout


@contextlib.contextmanager
def operator_process(console: Console, log_path: Path):
    """The operator in its own process group, logging to ``log_path``; always stopped."""
    argv = [sys.executable, "-m", "modelrollout.cli.main", "operator", "-n", NAMESPACE, "--liveness="]
    console.command(["python", *argv[1:]])
    with log_path.open("wb") as log:
        process = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        time.sleep(3.0)
        if process.poll() is not None:
            raise DemoFailed(f"the operator exited ({process.returncode}):\n{log_path.read_text()[-2000:]}")
        console.note(f"operator running (pid {process.pid}, log: {log_path})")
        yield process
    finally:
        stop_group(process, timeout_s=STOP_TIMEOUT_S)


def wait_ready(console: Console, *, timeout_s: float) -> str | None:
    """Poll the ModelDeployment's phase (printing each change) until Ready; the last phase."""
    deadline = time.monotonic() + timeout_s
    phase = None
    while time.monotonic() < deadline:
        raw = kubectl(console, "get", "mdep", NAME, "-n", NAMESPACE, "-o", "json", show=False, check=False)
        with contextlib.suppress(json.JSONDecodeError):
            status = json.loads(raw or "{}").get("status") or {}
            if status.get("phase") != phase:
                phase = status.get("phase")
                console.note(f"phase: {phase or '(none yet)'}  {status.get('message', '')}")
            if phase == "Ready":
                return phase
        time.sleep(2.0)
    return phase


def predict_through_service(console: Console) -> None:
    """One prediction through ``kubectl port-forward svc/iris`` on 127.0.0.1 (stopped right after)."""
    port = free_port()
    argv = ["kubectl", "port-forward", "--address", "127.0.0.1", "-n", NAMESPACE, f"svc/{NAME}", f"{port}:80"]
    console.command(argv)
    process = subprocess.Popen(
        argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True
    )
    body = {"rows": [SETOSA_ROW]}
    try:
        with httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=5.0, trust_env=False) as client:

            def answered() -> bool:
                with contextlib.suppress(httpx.HTTPError):
                    return client.post("/predict", json=body).status_code == 200
                return False

            wait_until(answered, timeout_s=30.0, what="a prediction through the port-forward", every_s=1.0)
            console.http("POST", f"http://127.0.0.1:{port}/predict", body)
            response = client.post("/predict", json=body)
            console.response(response.status_code, response.json())
    finally:
        stop_group(process, timeout_s=STOP_TIMEOUT_S)


def cluster_demo(console: Console, *, workdir: Path, stack: contextlib.ExitStack) -> int:
    console.section("ON THE CLUSTER", "CRD, operator, the sample ModelDeployment")
    if not docker_available():
        console.note(
            "No Docker here: the demo cannot build the sample's image modelrollout/iris:dev. Its pods need"
        )
        console.note("that image in the cluster (`make e2e` builds it and loads it into kind, with Docker).")
    kubectl(console, "apply", "--server-side", "-f", str(REPO_ROOT / "crds"))
    kubectl(
        console,
        "wait",
        "--for=condition=Established",
        "crd/modeldeployments.modelrollout.io",
        "--timeout=30s",
    )
    stack.enter_context(operator_process(console, workdir / "operator.log"))
    kubectl(console, "apply", "-f", str(SAMPLE))
    with console.step(f"waiting for {NAME} to become Ready (at most {READY_TIMEOUT_S:.0f} s)"):
        phase = wait_ready(console, timeout_s=READY_TIMEOUT_S)
    console.print(kubectl(console, "get", "mdep", "-n", NAMESPACE), indent=3)
    console.print(
        kubectl(
            console, "get", "deploy,svc,hpa", "-n", NAMESPACE, "-l", f"modelrollout.io/deployment={NAME}"
        ),
        indent=3,
    )
    if phase == "Ready":
        predict_through_service(console)
    else:
        console.note(
            f"not Ready in time (phase {phase}); see `kubectl describe mdep {NAME}` and the pods' events"
        )
    console.note(f"clean up: kubectl delete -f {SAMPLE.relative_to(REPO_ROOT)}")
    return 0 if phase == "Ready" else 1
