"""What every part of ``bentos/demo.py`` shares: headed console output, bounded waits, the model
store and the local servers (all on 127.0.0.1, all stopped when the demo ends, also on Ctrl-C).

The servers, the trained models, Prometheus and the load generator are the integration tests'
own helpers (``tests/integration/``), so the demo runs exactly what the tests prove.
"""

from __future__ import annotations

import contextlib
import json
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

REPO_ROOT = Path(__file__).resolve().parents[1]
IRIS_DIR = REPO_ROOT / "bentos" / "iris"
if str(REPO_ROOT) not in sys.path:  # the tests' helpers are imported as `tests.integration.*`
    sys.path.insert(0, str(REPO_ROOT))

from tests.integration import late_labels, loadgen, prometheus, rollout_loop  # noqa: E402
from tests.integration.bentoproc import (  # noqa: E402
    FEEDBACK_TOKEN,
    SETOSA_ROW,
    VIRGINICA_ROW,
    BentoServer,
    BentoSpec,
    ModelSpec,
    ModelStore,
    base_env,
    bento_servers,
    free_port,
    metric_value,
    trained_store,
)
from tests.support.procs import stop_group  # noqa: E402,F401 - re-exported for demo_cluster

WIDTH = 100


class DemoFailed(RuntimeError):
    """A step did not do what the demo shows; the message says what happened instead."""


class Console:
    """Headed, indented output a person can follow; every step prints how long it took."""

    def __init__(self, out: Any = None) -> None:
        self.out = out or sys.stdout
        self.started = time.monotonic()

    def print(self, text: str = "", *, indent: int = 0) -> None:
        pad = " " * indent
        for line in text.splitlines() or [""]:
            print((pad + line).rstrip(), file=self.out, flush=True)

    def section(self, title: str, subtitle: str = "") -> None:
        self.print()
        self.print("=" * WIDTH)
        self.print(f" {title}")
        if subtitle:
            self.print(f" {subtitle}")
        self.print("=" * WIDTH)

    def note(self, text: str) -> None:
        self.print(text, indent=3)

    @contextlib.contextmanager
    def step(self, text: str) -> Iterator[None]:
        """``-> text`` now, ``ok (1.2 s)`` or ``FAILED`` once the block is done."""
        print(f"-> {text} ...", end="", file=self.out, flush=True)
        started = time.monotonic()
        try:
            yield
        except BaseException:
            print(" FAILED", file=self.out, flush=True)
            raise
        print(f" ok ({time.monotonic() - started:.1f} s)", file=self.out, flush=True)

    def command(self, argv: Sequence[str] | str, *, env: dict[str, str] | None = None) -> None:
        """Show a command the way a person would type it (env assignments first)."""
        text = argv if isinstance(argv, str) else " ".join(shlex.quote(a) for a in argv)
        prefix = " ".join(f"{k}={shlex.quote(v)}" for k, v in (env or {}).items())
        self.print(f"$ {prefix + ' ' if prefix else ''}{text}", indent=3)

    def http(self, method: str, url: str, body: Any = None, headers: dict[str, str] | None = None) -> None:
        """Show an HTTP call as the equivalent curl command."""
        parts = ["curl -s", f"-X {method}" if method != "GET" else "", url]
        parts += [f"-H '{k}: {v}'" for k, v in (headers or {}).items()]
        if body is not None:
            parts += ["-H 'Content-Type: application/json'", f"-d '{json.dumps(body)}'"]
        self.command(" ".join(p for p in parts if p))

    def response(self, status: int, body: Any) -> None:
        text = json.dumps(body) if not isinstance(body, str) else body
        self.print(f"<- {status} {text}", indent=3)

    def table(self, rows: Sequence[Sequence[Any]], *, indent: int = 3) -> None:
        cells = [["-" if c is None else str(c) for c in row] for row in rows]
        widths = [max(len(r[i]) for r in cells if i < len(r)) for i in range(max(map(len, cells)))]
        for row in cells:
            self.print(
                "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=False)).rstrip(), indent=indent
            )

    def elapsed(self) -> float:
        return time.monotonic() - self.started


def wait_until(check: Callable[[], bool], *, timeout_s: float, what: str, every_s: float = 0.25) -> None:
    """Poll ``check`` until true; :class:`DemoFailed` after ``timeout_s``."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        if check():
            return
        time.sleep(every_s)
    raise DemoFailed(f"not within {timeout_s:.0f} s: {what}")


def metric_lines(server: BentoServer, *prefixes: str) -> list[str]:
    """The exposition lines of the named metrics (no comments), as ``/metrics`` shows them."""
    return [
        line
        for line in server.metrics_text().splitlines()
        if line.startswith(prefixes) and not line.startswith("#")
    ]


class Servers:
    """``bentoml serve`` processes of the example bento, started in parallel, stopped with the stack."""

    def __init__(self, stack: contextlib.ExitStack, *, store: ModelStore, workdir: Path) -> None:
        self.stack = stack
        self.store = store
        self.workdir = workdir
        self.running: dict[str, BentoServer] = {}
        # Every server logs its predictions to one shared store (as every pod of a deployment does)
        # and recomputes its version's ground-truth figures every second.
        self.log_url = f"sqlite:///{workdir / 'ground-truth.sqlite'}"
        self.env = {
            "MODELROLLOUT_GROUND_TRUTH_DSN": self.log_url,
            "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "1",
        }

    def start(
        self, console: Console, specs: dict[str, BentoSpec], *, stack: contextlib.ExitStack | None = None
    ):
        """Start every spec not yet running; ``stack`` (default: the demo's) decides when they stop."""
        new = {name: spec for name, spec in specs.items() if name not in self.running}
        if new:
            names = ", ".join(
                f"{n} ({s.version}, {s.env.get('MODELROLLOUT_MODE', 'online')})" for n, s in new.items()
            )
            with console.step(f"starting bentoml serve on 127.0.0.1: {names}"):
                started = (stack or self.stack).enter_context(
                    bento_servers(list(new.values()), workdir=self.workdir)
                )
            for (name, _), server in zip(new.items(), started, strict=True):
                self.running[name] = server
                console.note(f"{name}: {server.url}  (log: {server.log_path})")
                if stack is not None:
                    stack.callback(self.running.pop, name, None)
        return {name: self.running[name] for name in specs}

    def spec(self, version: str, *, env: dict[str, str] | None = None, **kwargs: Any) -> BentoSpec:
        """A server of ``version`` with the demo's shared log and the bearer token ``FEEDBACK_TOKEN``."""
        return BentoSpec(self.store, version, env={**self.env, **(env or {})}, **kwargs)


def train(console: Console, home: Path, models: Sequence[ModelSpec]) -> ModelStore:
    listing = ", ".join(f"{m.version} ({m.quality})" for m in models)
    console.command(f"python bentos/iris/train.py --version VERSION [--quality degraded]   # {listing}",
                    env={"BENTOML_HOME": str(home)})  # fmt: skip
    with console.step(f"training iris-classifier {listing} into BENTOML_HOME={home}"):
        store = trained_store(home, models)
    return store


def run_runner(
    args: Sequence[str], *, env: dict[str, str], timeout_s: float = 120.0
) -> tuple[int, dict, str]:
    """Run ``modelrollout-batch`` (the venv's console script); (exit code, JSON report, stderr)."""
    script = Path(sys.executable).with_name("modelrollout-batch")
    argv = [str(script)] if script.exists() else [sys.executable, "-m", "modelrollout.runtime.batch.cli"]
    result = subprocess.run(
        argv + list(args), env=base_env(**env), capture_output=True, text=True, timeout=timeout_s, check=False
    )
    lines = result.stdout.strip().splitlines()
    try:
        report = json.loads(lines[-1]) if lines else {}
    except json.JSONDecodeError:
        report = {}
    if not report:
        raise DemoFailed(f"modelrollout-batch printed no report (exit {result.returncode}):\n{result.stderr}")
    return result.returncode, report, result.stderr


# Re-exported so the other demo modules import the tests' helpers only through here (this module
# puts the repository root on sys.path first).
__all__ = [
    "FEEDBACK_TOKEN",
    "SETOSA_ROW",
    "VIRGINICA_ROW",
    "BentoSpec",
    "ModelSpec",
    "ModelStore",
    "base_env",
    "metric_value",
    "free_port",
    "late_labels",
    "loadgen",
    "prometheus",
    "rollout_loop",
]
