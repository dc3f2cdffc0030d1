"""Run the example iris bento under a real ``bentoml serve`` for integration tests.

Reusable by any integration test (serving, canary with Prometheus, hybrid):

    store = trained_store(tmp_dir, [ModelSpec("v1"), ModelSpec("v2", quality="degraded")])
    with bento_servers([BentoSpec(store, "v1"), BentoSpec(store, "v2", track="canary")]) as (stable, canary):
        stable.post("/predict", json={"rows": [[5.1, 3.5, 1.4, 0.2]]})

or through the pytest fixtures :func:`iris_store` (session: models trained once) and
:func:`bento_factory` (function: starts servers, stops them all at the end).

Why each server gets its own ``BENTOML_HOME``: BentoML keeps its Prometheus multiprocess files in
``$BENTOML_HOME/prometheus_multiproc_dir`` and wipes that directory when a server starts, so two
servers sharing a home would erase and mix each other's metrics. The private home links
``models/`` to the shared store, so models are trained once and never copied.

Every server runs in its own process group on 127.0.0.1 with a free port and is always stopped
(SIGTERM to the group, then SIGKILL after a bounded wait), including when start-up fails.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest

from tests.support.procs import stop_group

REPO_ROOT = Path(__file__).resolve().parents[2]
IRIS_DIR = REPO_ROOT / "bentos" / "iris"
MODEL_NAME = "iris-classifier"
SERVICE_TARGET = "service:IrisClassifier"
READY_TIMEOUT_S = 60.0
STOP_TIMEOUT_S = 10.0
SETOSA_ROW = [5.1, 3.5, 1.4, 0.2]
VIRGINICA_ROW = [6.7, 3.0, 5.2, 2.3]
# The bearer token test servers require on /feedback (MODELROLLOUT_FEEDBACK_TOKEN); a spec with
# ``feedback_token=None`` runs without one (feedback disabled: 403).
FEEDBACK_TOKEN = "test-feedback-token-0123456789"


def feedback_headers(token: str | None = FEEDBACK_TOKEN) -> dict[str, str]:
    return {} if token is None else {"Authorization": f"Bearer {token}"}


def base_env(**extra: str) -> dict[str, str]:
    """The caller's environment minus any ``MODELROLLOUT_*``/``BENTOML_*`` leftovers, plus ``extra``."""
    env = {
        k: v for k, v in os.environ.items() if not k.startswith(("MODELROLLOUT_", "BENTOML_", "PROMETHEUS_"))
    }
    env["BENTOML_DO_NOT_TRACK"] = "True"
    env.update(extra)
    return env


# --- models ---------------------------------------------------------------------------------------


@dataclass(frozen=True)
class ModelSpec:
    version: str
    quality: str = "good"  # or "degraded"


@dataclass(frozen=True)
class ModelStore:
    """A BENTOML_HOME holding trained models of one bento (iris unless told), by version."""

    home: Path
    models: tuple[ModelSpec, ...]
    model_name: str = MODEL_NAME

    def tag(self, version: str) -> str:
        if version not in {m.version for m in self.models}:
            raise KeyError(f"model version {version!r} was not trained into {self.home}")
        return f"{self.model_name}:{version}"


def trained_store(
    home: Path, models: Sequence[ModelSpec], *, timeout_s: float = 120.0, bento_dir: Path = IRIS_DIR,
    model_name: str = MODEL_NAME,
) -> ModelStore:  # fmt: skip
    """Train ``models`` with ``<bento_dir>/train.py`` (``main(["--version", v, "--quality", q])``)
    into ``home``, one Python process for all of them."""
    home.mkdir(parents=True, exist_ok=True)
    script = (
        "import sys; sys.path.insert(0, sys.argv[1]); import train\n"
        "for spec in sys.argv[2:]:\n"
        "    version, quality = spec.split('=')\n"
        "    train.main(['--version', version, '--quality', quality])\n"
    )
    specs = [f"{m.version}={m.quality}" for m in models]
    result = subprocess.run(
        [sys.executable, "-c", script, str(bento_dir), *specs],
        env=base_env(BENTOML_HOME=str(home)),
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=False,
    )
    if result.returncode != 0:
        raise RuntimeError(f"training failed ({result.returncode}):\n{result.stdout}\n{result.stderr}")
    return ModelStore(home=home, models=tuple(models), model_name=model_name)


# --- servers --------------------------------------------------------------------------------------


@dataclass(frozen=True)
class BentoSpec:
    """One server to run: which model version, which track, which injected faults."""

    store: ModelStore
    version: str
    track: str = "stable"
    inject_latency_ms: float = 0.0
    inject_error_rate: float = 0.0
    env: dict[str, str] = field(default_factory=dict)
    bento: str | None = None  # serve this built bento (tag in the store) instead of the bentos/iris sources
    source_dir: Path = IRIS_DIR  # serve `service` from these sources (a benchmark's variant of the bento)
    service: str = SERVICE_TARGET
    feedback_token: str | None = FEEDBACK_TOKEN
    python: str | None = None  # the interpreter that runs `bentoml serve` (default: this one)

    def serving_env(self, home: Path) -> dict[str, str]:
        extra = {
            "BENTOML_HOME": str(home),
            "TMPDIR": str(home),  # a per-process prediction log (no store configured) stays in here
            "MODELROLLOUT_MODEL_TAG": self.store.tag(self.version),
            "MODELROLLOUT_TRACK": self.track,
            "MODELROLLOUT_INJECT_LATENCY_MS": str(self.inject_latency_ms),
            "MODELROLLOUT_INJECT_ERROR_RATE": str(self.inject_error_rate),
        }
        if self.feedback_token is not None:
            extra["MODELROLLOUT_FEEDBACK_TOKEN"] = self.feedback_token
        return base_env(**extra, **self.env)


@dataclass
class BentoServer:
    """A running ``bentoml serve``; ``url`` is ``http://127.0.0.1:<port>``."""

    spec: BentoSpec
    port: int
    process: subprocess.Popen
    log_path: Path
    home: Path
    _client: httpx.Client | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def target(self) -> str:
        """``host:port`` for a Prometheus static scrape config."""
        return f"127.0.0.1:{self.port}"

    @property
    def client(self) -> httpx.Client:
        """One pooled client per server (a new client per call costs ~30 ms of TLS set-up)."""
        if self._client is None:
            self._client = httpx.Client(base_url=self.url, timeout=10.0, trust_env=False)
        return self._client

    def get(self, path: str, **kwargs) -> httpx.Response:
        return self.client.get(path, **kwargs)

    def post(self, path: str, **kwargs) -> httpx.Response:
        return self.client.post(path, **kwargs)

    def metrics_text(self) -> str:
        response = self.get("/metrics")
        response.raise_for_status()
        return response.text

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of ``name`` on this server's /metrics whose labels include ``labels``."""
        return metric_value(self.metrics_text(), name, **labels)

    def log_tail(self, lines: int = 40) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"

    def wait_ready(self, *, timeout_s: float = READY_TIMEOUT_S) -> None:
        """Poll ``/readyz`` until 200; fail early if the process exits, and after ``timeout_s``."""
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(
                    f"bentoml serve exited with {self.process.returncode} before ready:\n{self.log_tail()}"
                )
            with contextlib.suppress(httpx.HTTPError):
                if self.get("/readyz", timeout=2.0).status_code == 200:
                    return
            time.sleep(0.2)
        raise TimeoutError(
            f"bentoml serve not ready after {timeout_s:.0f}s on {self.url}:\n{self.log_tail()}"
        )

    def stop(self) -> None:
        """SIGTERM the whole process group, SIGKILL it if still there after a bounded wait."""
        if self._client is not None:
            self._client.close()
            self._client = None
        stop_group(self.process, timeout_s=STOP_TIMEOUT_S)


def metric_value(text: str, name: str, **labels: str) -> float:
    """Sum of the samples called ``name`` in Prometheus exposition ``text`` that carry ``labels``.

    0.0 when no sample matches (a counter that was never touched reads as zero).
    """
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(text)
        for sample in family.samples
        if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items())
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def private_home(store: ModelStore, parent: Path) -> Path:
    """A fresh BENTOML_HOME whose ``models/`` (and ``bentos/``) link to the shared store's."""
    home = Path(tempfile.mkdtemp(prefix="bentoml-home-", dir=parent))
    for shared in ("models", "bentos"):
        if (store.home / shared).is_dir():
            (home / shared).symlink_to(store.home / shared, target_is_directory=True)
    return home


def start_bento(spec: BentoSpec, *, workdir: Path) -> BentoServer:
    """Start ``bentoml serve`` (not waiting for readiness) in its own process group."""
    home = private_home(spec.store, workdir)
    port = free_port()
    log_path = home / "serve.log"
    if spec.bento is None:
        target, cwd = [spec.service, "--working-dir", str(spec.source_dir)], spec.source_dir
    else:  # a built bento: run outside the sources so nothing local can stand in for it
        target, cwd = [spec.bento], home
    with log_path.open("wb") as log:
        process = subprocess.Popen(
            [
                spec.python or sys.executable,
                "-m",
                "bentoml",
                "serve",
                *target,
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            cwd=cwd,
            env=spec.serving_env(home),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    return BentoServer(spec=spec, port=port, process=process, log_path=log_path, home=home)


@contextlib.contextmanager
def bento_servers(specs: Sequence[BentoSpec], *, workdir: Path | None = None) -> Iterator[list[BentoServer]]:
    """Start all ``specs`` at once, wait until every one is ready, yield them, always stop them."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="bentoproc-")))
        servers: list[BentoServer] = []
        try:
            for spec in specs:
                servers.append(start_bento(spec, workdir=workdir))
            for server in servers:
                server.wait_ready()
            yield servers
        finally:
            for server in servers:
                server.stop()


# --- pytest fixtures (import them into a test module or conftest) -------------------------------

_STORE_MODELS = (ModelSpec("v1"), ModelSpec("v2", quality="degraded"))
_store_cache: dict[str, ModelStore] = {}


@pytest.fixture(scope="session")
def iris_store(tmp_path_factory: pytest.TempPathFactory) -> ModelStore:
    """BENTOML_HOME with ``iris-classifier:v1`` (good) and ``:v2`` (degraded), trained once per session.

    Cached at module level as well, because a session fixture imported into several test modules
    is a separate fixture per module for pytest.
    """
    if "store" not in _store_cache:
        _store_cache["store"] = trained_store(tmp_path_factory.mktemp("iris-store"), _STORE_MODELS)
    return _store_cache["store"]


@pytest.fixture
def bento_factory(tmp_path: Path):
    """``start(*specs) -> list[BentoServer]``: started, ready, stopped when the test ends."""
    with contextlib.ExitStack() as stack:

        def start(*specs: BentoSpec) -> list[BentoServer]:
            return stack.enter_context(bento_servers(specs, workdir=tmp_path))

        yield start
