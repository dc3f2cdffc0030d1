"""The canary part of ``bentos/demo.py``: two rollouts judged on real Prometheus data, without a cluster.

The operator's rollout core (``rollout.machine.decide`` with ``rollout.analysis`` querying
Prometheus) drives real ``bentoml serve`` processes - stable v1 and a canary - scraped every second
by a local Prometheus; a bounded load generator stands in for the router (it splits traffic by the
weight the last decision asked for) and sends every true label back through ``/feedback`` (with the
bearer token); every server logs to one shared store and exports its version's figures, which the
accuracy gate reads by ``model_version``, as in production. Only Kubernetes is replaced (see
``tests/integration/rollout_loop.py``). First a degraded v3 (trained on shuffled labels) is rolled
back by the accuracy gate, then a healthy v2 passes every step and is promoted.

Short on purpose: steps of 20 % and 50 % held 6 s each, an analysis every 5 s over a 5 s window.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from demo_support import FEEDBACK_TOKEN, Console, DemoFailed, Servers, loadgen, prometheus, rollout_loop
from modelrollout.api.spec import parse_spec
from modelrollout.cli.status_view import render_status
from modelrollout.rollout import analysis, ground_truth
from modelrollout.rollout.machine import ACTIVE
from modelrollout.rollout.templates import render

LoadGenerator, RolloutLoop = loadgen.LoadGenerator, rollout_loop.RolloutLoop
ScrapeTarget, running_prometheus = prometheus.ScrapeTarget, prometheus.running_prometheus
NAME, NAMESPACE, track_labels = rollout_loop.NAME, rollout_loop.NAMESPACE, rollout_loop.track_labels
INTERVAL = "5s"
MIN_SAMPLES = 10
RATE_PER_S = 30.0
SCENARIO_TIMEOUT_S = 90.0
WARMUP_TIMEOUT_S = 30.0


def rollout_spec(prometheus_url: str, *, version: str):
    """The demo's rollout: the integration test's spec (failureLimit 1 tolerates one hiccup)."""
    return parse_spec({
        "model": {"name": "iris-classifier", "version": version, "image": f"reg/iris:{version}"},
        "rollout": {
            "steps": [{"setWeight": 20, "pause": "6s"}, {"setWeight": 50, "pause": "6s"}],
            "progressDeadline": "60s",
            "analysis": {
                "prometheus": {"address": prometheus_url},
                "interval": INTERVAL,
                "minSamples": MIN_SAMPLES,
                "minLabels": MIN_SAMPLES,
                "failureLimit": 1,
                "metrics": [
                    {"name": "latency-p99", "template": "latency-p99", "max": 0.5, "relativeToStable": {"maxRatio": 50}},
                    {"name": "error-rate", "template": "error-rate", "max": 0.05},
                    {"name": "accuracy", "template": "accuracy", "min": 0.7, "relativeToStable": {"maxDecrease": 0.25}},
                ],
            },
        },
    })  # fmt: skip


def canary(console: Console, servers: Servers, workdir: Path) -> None:
    console.section(
        "CANARY ROLLOUT", "a new model version gets a share of traffic; Prometheus decides if it stays"
    )
    console.note("steps: 20 % for 6 s, 50 % for 6 s; an analysis every 5 s over the last 5 s:")
    console.note(
        "latency p99 <= 0.5 s (and <= 50 x stable), error rate <= 5 %, accuracy >= 0.7 and >= stable - 0.25"
    )
    console.note(
        "(accuracy from /feedback labels joined in the shared log; two failed analyses in a row roll it back)"
    )
    running = servers.start(console, {
        "stable": servers.spec("v1"),
        "canary-v3": servers.spec("v3", track="canary"),
        "canary-v2": servers.spec("v2", track="canary"),
    })  # fmt: skip
    stable = running["stable"]

    console.print("\n1) v3, a model trained on shuffled labels (held-out accuracy ~0.3):")
    loop = _scenario(console, stable, running["canary-v3"], version="v3", workdir=workdir, until=_finished)
    if loop.phase != "RolledBack":
        raise DemoFailed(
            f"the degraded canary ended {loop.phase}, not RolledBack: {loop.status.rollout.message}"
        )
    console.print()
    console.print(render_status(_body(loop)), indent=3)

    console.print("\n2) v2, a healthy model:")
    loop = _scenario(console, stable, running["canary-v2"], version="v2", workdir=workdir,
                     until=lambda lp: lp.phase == "Promoting" or _finished(lp))  # fmt: skip
    if loop.phase != "Promoting":
        raise DemoFailed(
            f"the healthy canary ended {loop.phase}, not Promoting: {loop.status.rollout.message}"
        )
    console.note("all steps passed: the operator now moves the stable Deployment to v2 (here: reported done)")
    loop.stable_version = "v2"
    _drive(console, loop, until=_finished, timeout_s=10.0)
    if loop.phase != "Succeeded":
        raise DemoFailed(f"the promotion ended {loop.phase}: {loop.status.rollout.message}")
    console.print()
    console.print(render_status(_body(loop)), indent=3)


def _finished(loop: RolloutLoop) -> bool:
    return loop.phase is not None and loop.phase not in ACTIVE


def _scenario(console: Console, stable, candidate, *, version: str, workdir: Path, until) -> RolloutLoop:
    """Fresh Prometheus and load for one rollout; returns the loop once ``until`` holds (bounded)."""
    with contextlib.ExitStack() as stack:
        targets = [ScrapeTarget(stable.target, track_labels("stable", version=stable.spec.version)),
                   ScrapeTarget(candidate.target, track_labels("canary", version=version))]  # fmt: skip
        with console.step("starting Prometheus (127.0.0.1, scraping both tracks every second)"):
            prom = stack.enter_context(running_prometheus(targets, workdir=workdir))
        console.note(f"Prometheus: {prom.url}")
        load = stack.enter_context(LoadGenerator(stable_url=stable.url, canary_url=candidate.url,
                                                 rate_per_s=RATE_PER_S, max_seconds=SCENARIO_TIMEOUT_S + 60,
                                                 feedback_token=FEEDBACK_TOKEN))  # fmt: skip
        stable_samples = render(ground_truth.SAMPLES["accuracy"], analysis.variables(
            namespace=NAMESPACE, name=NAME, track="stable", version="v1", interval=INTERVAL))  # fmt: skip
        with console.step(
            f"sending {RATE_PER_S:.0f} requests/s (+ their labels) until stable has a full window"
        ):
            prom.wait_for(stable_samples, lambda v: v >= 2 * MIN_SAMPLES, timeout_s=WARMUP_TIMEOUT_S)
        loop = RolloutLoop(rollout_spec(prom.url, version=version), prometheus_url=prom.url, load=load)
        _drive(console, loop, until=until, timeout_s=SCENARIO_TIMEOUT_S)
        stats = load.stats()
        console.note(f"traffic: {stats.sent.get('stable', 0)} requests to stable, {stats.sent.get('canary', 0)} to "
                     f"the canary; feedback judged {dict(stats.feedback)}")  # fmt: skip
        return loop


def _drive(console: Console, loop: RolloutLoop, *, until, timeout_s: float) -> None:
    """Tick the rollout like the controller's timer, printing each new weight and analysis."""
    started = time.monotonic()
    deadline = started + timeout_s
    weight, analyses = None, len(loop.analyses)
    while time.monotonic() < deadline:
        decision = loop.tick()
        clock = f"t={time.monotonic() - started:5.1f}s"
        if decision.weight != weight:
            weight = decision.weight
            console.note(f"{clock}  weight -> {weight:3d} %   phase {loop.phase}")
        for checks in loop.analyses[analyses:]:
            verdicts = ", ".join(f"{c.metric} {_num(c.value)} {c.verdict.upper() if c.verdict != 'pass' else 'pass'}"
                                 + (f" (stable {_num(c.stable_value)})" if c.stable_value is not None else "")
                                 for c in checks)  # fmt: skip
            console.note(f"{clock}  analysis: {verdicts}")
        analyses = len(loop.analyses)
        if until(loop):
            console.note(
                f"{clock}  => {loop.phase}: {loop.status.rollout.message if loop.status.rollout else ''}"
            )
            return
        time.sleep(min(1.0 if decision.requeue_after is None else decision.requeue_after, 1.0))
    raise DemoFailed(f"rollout not done within {timeout_s:.0f} s (phase {loop.phase})")


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _body(loop: RolloutLoop) -> dict:
    """The ModelDeployment as ``kubectl get -o json`` would show it, for ``modelrollout status``."""
    status = loop.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {"metadata": {"name": NAME, "namespace": NAMESPACE}, "spec": loop.spec.to_wire(), "status": status}
