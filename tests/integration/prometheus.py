"""A throwaway Prometheus for integration tests and benchmarks: 127.0.0.1, free port, temp storage.

    targets = [ScrapeTarget(stable.target, {"namespace": "default", "modelrollout_deployment": "iris",
                                            "track": "stable"})]
    with running_prometheus(targets) as prom:
        prom.wait_targets_up()
        prom.query('sum(rate(bentoml_service_request_total[5s]))')

or the function-scoped pytest fixture :func:`prometheus_factory` (``start(targets) -> PrometheusServer``,
stopped when the test ends). It runs ``/usr/bin/prometheus`` (or ``prometheus`` on PATH) and skips -
with the reason - only if there is none.

Why these settings: a 1 s scrape interval makes rate windows of a few seconds meaningful, so a
canary analysis can be exercised in seconds rather than minutes. The target labels given by the
test (``namespace``, ``modelrollout_deployment``, ``track``) are the ones a PodMonitor would add in a
cluster, and the ones the operator's query templates select on. ``--web.enable-lifecycle`` allows
``/-/reload`` (new targets without losing data) and ``/-/quit``; :meth:`PrometheusServer.stop` and
:meth:`PrometheusServer.start` can take the server away mid-test and bring it back on the same
port and storage, as an outage would.

The process runs in its own process group and is always stopped (``/-/quit``, then SIGTERM, then
SIGKILL after bounded waits), including when start-up fails.
"""

from __future__ import annotations

import contextlib
import math
import os
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import httpx
import pytest
import yaml

from tests.support.procs import stop_group

READY_TIMEOUT_S = 30.0
STOP_TIMEOUT_S = 10.0
DEFAULT_BINARY = "/usr/bin/prometheus"


class PrometheusUnavailable(RuntimeError):
    """No Prometheus binary on this machine."""


@dataclass(frozen=True)
class ScrapeTarget:
    """One ``host:port`` to scrape, with the target labels every one of its series gets."""

    address: str
    labels: Mapping[str, str] = field(default_factory=dict)


def find_binary() -> str:
    if os.access(DEFAULT_BINARY, os.X_OK):
        return DEFAULT_BINARY
    found = shutil.which("prometheus")
    if found:
        return found
    raise PrometheusUnavailable(
        f"no Prometheus binary at {DEFAULT_BINARY} or on PATH; apt-get install prometheus"
    )


def free_port() -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def render_config(targets: Sequence[ScrapeTarget], *, scrape_interval: str = "1s") -> str:
    """prometheus.yml: one job, one static config per target (each with its own labels)."""
    for target in targets:
        if ":" not in target.address or target.address.startswith("http"):
            raise ValueError(f"scrape target must be host:port, got {target.address!r}")
    config = {
        "global": {"scrape_interval": scrape_interval, "evaluation_interval": scrape_interval},
        "scrape_configs": [
            {
                "job_name": "modelrollout-test",
                "scrape_interval": scrape_interval,
                "scrape_timeout": scrape_interval,
                "metrics_path": "/metrics",
                "static_configs": [{"targets": [t.address], "labels": dict(t.labels)} for t in targets],
            }
        ],
    }
    return yaml.safe_dump(config, sort_keys=False)


class PrometheusServer:
    """One Prometheus process; ``url`` is ``http://127.0.0.1:<port>`` (stable across restarts)."""

    def __init__(
        self,
        targets: Sequence[ScrapeTarget],
        *,
        workdir: Path,
        scrape_interval: str = "1s",
        binary: str | None = None,
    ) -> None:
        self.binary = binary or find_binary()
        self.workdir = workdir
        self.scrape_interval = scrape_interval
        self.port = free_port()
        self.config_path = workdir / "prometheus.yml"
        self.storage = workdir / "data"
        self.log_path = workdir / "prometheus.log"
        self.targets: list[ScrapeTarget] = list(targets)
        self.process: subprocess.Popen | None = None
        self._client = httpx.Client(base_url=self.url, timeout=5.0, trust_env=False)
        self.config_path.write_text(render_config(self.targets, scrape_interval=scrape_interval))

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def start(self, *, timeout_s: float = READY_TIMEOUT_S) -> PrometheusServer:
        """Start (or restart) on the same port and storage; return once ``/-/ready`` answers 200."""
        if self.running:
            raise RuntimeError(f"Prometheus already running on {self.url}")
        self.storage.mkdir(parents=True, exist_ok=True)
        with self.log_path.open("ab") as log:
            self.process = subprocess.Popen(
                [
                    self.binary,
                    f"--config.file={self.config_path}",
                    f"--storage.tsdb.path={self.storage}",
                    f"--web.listen-address=127.0.0.1:{self.port}",
                    "--web.enable-lifecycle",
                    "--storage.tsdb.retention.time=1h",
                    "--log.level=warn",
                ],
                cwd=self.workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        try:
            self._wait_ready(timeout_s)
        except BaseException:
            self.stop()
            raise
        return self

    def _wait_ready(self, timeout_s: float) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"prometheus exited with {self.process.returncode}:\n{self.log_tail()}")
            with contextlib.suppress(httpx.HTTPError):
                if self._client.get("/-/ready", timeout=1.0).status_code == 200:
                    return
            time.sleep(0.1)
        raise TimeoutError(f"prometheus not ready after {timeout_s:.0f}s on {self.url}:\n{self.log_tail()}")

    def stop(self) -> None:
        """Ask politely (``/-/quit``), then SIGTERM, then SIGKILL the group; each wait bounded."""
        process = self.process
        if process is None:
            return
        if process.poll() is None:
            with contextlib.suppress(httpx.HTTPError):
                self._client.post("/-/quit", timeout=2.0)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=STOP_TIMEOUT_S / 2)
        stop_group(process, timeout_s=STOP_TIMEOUT_S)

    def close(self) -> None:
        self.stop()
        self._client.close()

    def set_targets(self, targets: Sequence[ScrapeTarget]) -> None:
        """Replace the scrape targets and reload the config (the stored data stays)."""
        self.targets = list(targets)
        self.config_path.write_text(render_config(self.targets, scrape_interval=self.scrape_interval))
        if self.running:
            response = self._client.post("/-/reload", timeout=5.0)
            if response.status_code != 200:
                raise RuntimeError(
                    f"prometheus rejected the new config: {response.status_code} {response.text}"
                )

    def query(self, promql: str) -> list:
        """The raw ``result`` of an instant query (a list of ``{"metric", "value"}``)."""
        response = self._client.get("/api/v1/query", params={"query": promql})
        body = response.json()
        if body.get("status") != "success":
            raise RuntimeError(f"query failed: {body.get('error', response.text)}: {promql}")
        return body["data"]["result"]

    def value(self, promql: str) -> float | None:
        """The single value of an instant query; None when empty (NaN stays NaN)."""
        result = self.query(promql)
        if not result:
            return None
        if len(result) != 1:
            raise RuntimeError(f"{len(result)} series for {promql}; aggregate it")
        return float(result[0]["value"][1])

    def wait_for(
        self,
        promql: str,
        predicate: Callable[[float], bool],
        *,
        timeout_s: float = 30.0,
        every_s: float = 0.5,
    ) -> float:
        """Poll ``promql`` until its value satisfies ``predicate`` (NaN/empty never do); bounded."""
        deadline = time.monotonic() + timeout_s
        last: float | None = None
        while time.monotonic() < deadline:
            with contextlib.suppress(httpx.HTTPError):
                last = self.value(promql)
                if last is not None and not math.isnan(last) and predicate(last):
                    return last
            time.sleep(every_s)
        raise TimeoutError(f"{promql} never satisfied the condition in {timeout_s:.0f}s (last value {last})")

    def wait_targets_up(self, *, timeout_s: float = 30.0) -> None:
        """Every configured target scraped successfully at least once."""
        self.wait_for("sum(up)", lambda v: v >= len(self.targets), timeout_s=timeout_s, every_s=0.25)

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except OSError as exc:
            return f"(no log: {exc})"


@contextlib.contextmanager
def running_prometheus(
    targets: Sequence[ScrapeTarget], *, workdir: Path | None = None, scrape_interval: str = "1s"
) -> Iterator[PrometheusServer]:
    """A started, ready Prometheus scraping ``targets``; always stopped at the end."""
    with contextlib.ExitStack() as stack:
        if workdir is None:
            workdir = Path(stack.enter_context(tempfile.TemporaryDirectory(prefix="prometheus-")))
        else:
            workdir = Path(tempfile.mkdtemp(prefix="prometheus-", dir=workdir))
        server = PrometheusServer(targets, workdir=workdir, scrape_interval=scrape_interval)
        stack.callback(server.close)
        server.start()
        yield server


@pytest.fixture
def prometheus_factory(tmp_path: Path):
    """``start(targets) -> PrometheusServer``: started and ready; stopped when the test ends."""
    try:
        find_binary()
    except PrometheusUnavailable as exc:
        pytest.skip(str(exc))
    with contextlib.ExitStack() as stack:

        def start(targets: Sequence[ScrapeTarget], **kwargs) -> PrometheusServer:
            return stack.enter_context(running_prometheus(targets, workdir=tmp_path, **kwargs))

        yield start
