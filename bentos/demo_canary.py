"""The canary part of ``bentos/demo.py``: rollouts judged on real Prometheus data, without a cluster.

The operator's rollout core (``rollout.machine.decide`` with ``rollout.analysis`` querying
Prometheus) drives real ``bentoml serve`` processes - two pods per track - scraped every second by
a local Prometheus; a bounded load generator stands in for the Service and the router (it splits
traffic by the weight the last decision asked for, and spreads each track's share over its pods).
Every pod logs to one shared store and exports its version's figures, which the accuracy gate
reads by ``model_version``; each label goes through ``/feedback`` (with the bearer token) to
another pod than the one that predicted. Only Kubernetes is replaced (see
``tests/integration/rollout_loop.py``): when a decision moves the stable track, the loop sends
the stable share to pods of that version (started beforehand, as a rolled-out Deployment's).

1. a degraded v3 (trained on shuffled labels) is rolled back by the accuracy gate;
2. a healthy v2 passes every step and is promoted: the stable track moves to v2's pods;
3. (``demo_bake.py``) a degraded v4 whose labels arrive late passes the canary and is promoted;
   its bake judges the late labels and rolls it back to v2.

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
from modelrollout.rollout.templates import render

LoadGenerator, RolloutLoop = loadgen.LoadGenerator, rollout_loop.RolloutLoop
ScrapeTarget, running_prometheus = prometheus.ScrapeTarget, prometheus.running_prometheus
NAME, NAMESPACE, track_labels = rollout_loop.NAME, rollout_loop.NAMESPACE, rollout_loop.track_labels
INTERVAL = "5s"
MIN_SAMPLES = 10
RATE_PER_S = 30.0
SCENARIO_TIMEOUT_S = 90.0
WARMUP_TIMEOUT_S = 30.0
LABEL_DELAY_S = 0.5  # a prediction reaches the shared log ~0.1 s after its answer


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
    console.note("(accuracy from /feedback labels joined in the shared log, whichever pod receives them;")
    console.note(" two failed analyses in a row roll it back)")
    (stable,) = _pods(console, servers, ("stable", "v1", "stable"))

    console.print("\n1) v3, a model trained on shuffled labels (held-out accuracy ~0.3), 2 canary pods:")
    with contextlib.ExitStack() as scenario:  # its canary pods stop when it ends
        (canary_v3,) = _pods(console, servers, ("canary-v3", "v3", "canary"), stack=scenario)
        loop = _scenario(console, stable, canary_v3, version="v3", workdir=workdir, until=_finished)
    if loop.phase != "RolledBack":
        raise DemoFailed(
            f"the degraded canary ended {loop.phase}, not RolledBack: {loop.status.rollout.message}"
        )
    console.print()
    console.print(render_status(_body(loop)), indent=3)

    console.print(
        "\n2) v2, a healthy model, 2 canary pods (and 2 stable pods of v2 ready for the promotion):"
    )
    canary_v2, promoted = _pods(
        console, servers, ("canary-v2", "v2", "canary"), ("stable-v2", "v2", "stable")
    )
    loop = _scenario(console, stable, canary_v2, version="v2", workdir=workdir, until=_finished,
                     stable_pods={"v1": stable, "v2": promoted})  # fmt: skip
    if loop.phase != "Succeeded" or loop.stable_version != "v2":
        raise DemoFailed(f"the healthy canary ended {loop.phase}: {loop.status.rollout.message}")
    console.print()
    console.print(render_status(_body(loop)), indent=3)

    from demo_bake import bake

    bake(console, servers, workdir, stable=promoted)


def _pods(console: Console, servers: Servers, *groups: tuple[str, str, str],
          stack: contextlib.ExitStack | None = None) -> list[list]:  # fmt: skip
    """Two pods of each (name, version, track) group, started together if not running; the first
    of a group is named without a suffix (as the online part's ``stable``)."""
    names = {(name, version, track): [name, f"{name}-2"] for name, version, track in groups}
    specs = {n: servers.spec(version, track=track) for (_, version, track), ns in names.items() for n in ns}
    running = servers.start(console, specs, stack=stack)
    return [[running[n] for n in ns] for ns in names.values()]


def _finished(loop: RolloutLoop) -> bool:
    return rollout_loop.ended(loop)


def _scenario(console: Console, stable: list, canary_pods: list, *, version: str, workdir: Path, until,
              stable_pods: dict | None = None) -> RolloutLoop:  # fmt: skip
    """Fresh Prometheus and load for one rollout; returns the loop once ``until`` holds (bounded)."""
    pods = [*stable, *canary_pods, *[p for ps in (stable_pods or {}).values() for p in ps if p not in stable]]
    with contextlib.ExitStack() as stack:
        with console.step(f"starting Prometheus (127.0.0.1, scraping all {len(pods)} pods every second)"):
            prom = stack.enter_context(running_prometheus(_targets(pods), workdir=workdir))
        console.note(f"Prometheus: {prom.url}")
        load = stack.enter_context(LoadGenerator(
            stable_url=_urls(stable), canary_url=_urls(canary_pods), rate_per_s=RATE_PER_S,
            max_seconds=SCENARIO_TIMEOUT_S + 60, feedback_token=FEEDBACK_TOKEN, feedback_urls=_urls(pods),
            feedback_delay_s=LABEL_DELAY_S))  # fmt: skip
        stable_samples = render(ground_truth.SAMPLES["accuracy"], analysis.variables(
            namespace=NAMESPACE, name=NAME, track="stable", version="v1", interval=INTERVAL))  # fmt: skip
        with console.step(
            f"sending {RATE_PER_S:.0f} requests/s (+ their labels) until stable has a full window"
        ):
            prom.wait_for(stable_samples, lambda v: v >= 2 * MIN_SAMPLES, timeout_s=WARMUP_TIMEOUT_S)
        pods_of = {k: _urls(v) for k, v in (stable_pods or {}).items()}
        loop = RolloutLoop(rollout_spec(prom.url, version=version), prometheus_url=prom.url, load=load,
                           stable_pods=pods_of)  # fmt: skip
        drive(console, loop, until=until, timeout_s=SCENARIO_TIMEOUT_S)
        stats = load.stats()
        console.note(f"traffic: {stats.sent.get('stable', 0)} requests to the stable pods, "
                     f"{stats.sent.get('canary', 0)} to the canary pods; every label went to another pod "
                     f"than the one that predicted: {dict(stats.feedback)}")  # fmt: skip
        return loop


def _targets(pods: list) -> list:
    """The scrape targets with the labels a PodMonitor gives each pod (track, model_version)."""
    return [ScrapeTarget(p.target, track_labels(p.spec.track, version=p.spec.version)) for p in pods]


def _urls(pods: list) -> list[str]:
    return [p.url for p in pods]


def drive(
    console: Console, loop: RolloutLoop, *, until, timeout_s: float, started: float | None = None
) -> None:
    """Tick the rollout like the controller's timer, printing each new weight, analysis and event
    (``t=`` counts from ``started``, default now)."""
    started = time.monotonic() if started is None else started
    deadline = time.monotonic() + timeout_s
    seen = (loop.decisions[-1].weight if loop.decisions else None, len(loop.analyses),
            len(loop.bake_analyses), len(loop.event_log), len(loop.stable_changes))  # fmt: skip
    while time.monotonic() < deadline:
        decision = loop.tick()
        clock = f"t={time.monotonic() - started:5.1f}s"
        if decision.weight != seen[0]:
            console.note(f"{clock}  weight -> {decision.weight:3d} %   phase {loop.phase}")
        for checks in loop.analyses[seen[1] :]:
            console.note(f"{clock}  analysis: {_verdicts(checks)}")
        for checks in loop.bake_analyses[seen[2] :]:
            console.note(f"{clock}  bake analysis: {_verdicts(checks)}")
        for before, after in loop.stable_changes[seen[4] :]:
            console.note(
                f"{clock}  the stable track now runs {after} (was {before}): stable traffic goes to its pods"
            )
        for event in loop.event_log[seen[3] :]:
            console.note(f"{clock}  event {event.type} {event.reason}: {event.message.split(' (query: ')[0]}")
        seen = (decision.weight, len(loop.analyses), len(loop.bake_analyses), len(loop.event_log),
                len(loop.stable_changes))  # fmt: skip
        if until(loop):
            return
        time.sleep(min(1.0 if decision.requeue_after is None else decision.requeue_after, 1.0))
    raise DemoFailed(f"rollout not done within {timeout_s:.0f} s (phase {loop.phase})")


def _verdicts(checks: list) -> str:
    out = []
    for c in checks:
        text = f"{c.metric} {_num(c.value)} {c.verdict.upper() if c.verdict != 'pass' else 'pass'}"
        if c.stable_value is not None:
            text += f" (stable {_num(c.stable_value)})"
        if c.coverage is not None or c.verdict == "inconclusive":
            text += f" [{_num(c.samples)} labelled, coverage {_num(c.coverage)}]"
        out.append(text)
    return ", ".join(out)


def _num(value: float | None) -> str:
    return "-" if value is None else f"{value:.3g}"


def _body(loop: RolloutLoop) -> dict:
    """The ModelDeployment as ``kubectl get -o json`` would show it, for ``modelrollout status``."""
    status = loop.status.model_dump(by_alias=True, exclude_none=True, mode="json")
    return {"metadata": {"name": NAME, "namespace": NAMESPACE}, "spec": loop.spec.to_wire(), "status": status}
