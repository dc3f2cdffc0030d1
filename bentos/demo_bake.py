"""The bake part of ``bentos/demo.py``: a promoted model rolled back when its late labels turn bad.

Ground truth often arrives hours or days after the prediction (a fraud case closes, a customer
churns): a canary cannot judge accuracy then, and most labels arrive after the promotion. Here v4,
another model trained on shuffled labels, is rolled out over stable v2 with every label held back:
its canary is judged on latency and errors only, passes, and is promoted (the stable track moves to
v4's pods). Its bake then judges accuracy on the labels as they arrive - first a few through
``/feedback``, each to another pod than the one that predicted (fewer than ``minLabels``: the bake
waits, it never passes on too few), then the rest in bulk with ``modelrollout-batch labels
import`` from a CSV of request ids and labels, as if loaded from a warehouse six hours later
(``--now``). The accuracy check fails and the bake rolls the stable track back to v2.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path

from demo_canary import RATE_PER_S, _body, _pods, _targets, _urls, drive
from demo_support import (
    FEEDBACK_TOKEN,
    Console,
    DemoFailed,
    Servers,
    late_labels,
    loadgen,
    metric_value,
    prometheus,
    rollout_loop,
)
from modelrollout.api.spec import parse_spec
from modelrollout.cli.status_view import render_status

MIN_LABELS = 25
BY_FEEDBACK = 10
BY_IMPORT = 40
HOURS_LATER = 6
TIMEOUT_S = 60.0
FIGURES = ("predictions", "labelled", "correct")


def bake_spec(prometheus_url: str, *, version: str):
    """Canary on latency and errors (no labels yet); the bake on accuracy, once labels arrive."""
    return parse_spec({
        "model": {"name": "iris-classifier", "version": version, "image": f"reg/iris:{version}"},
        "rollout": {
            "steps": [{"setWeight": 50, "pause": "4s"}],
            "progressDeadline": "40s",
            "analysis": {
                "prometheus": {"address": prometheus_url},
                "interval": "4s",
                "minSamples": 10,
                "failureLimit": 1,
                "metrics": [{"name": "latency-p99", "template": "latency-p99", "max": 0.5},
                            {"name": "error-rate", "template": "error-rate", "max": 0.05}],
            },
            "bake": {"duration": "2m", "interval": "3s", "minLabels": MIN_LABELS,
                     "metrics": [{"name": "accuracy", "template": "accuracy", "min": 0.8}]},
        },
    })  # fmt: skip


def bake(console: Console, servers: Servers, workdir: Path, *, stable: list) -> None:
    console.print("\n3) v4, trained on shuffled labels too - but now its labels arrive late (hours later, as")
    console.note("fraud or churn labels do). The canary judges latency and errors only (50 % for 4 s);")
    console.note(
        f"after the promotion a bake judges accuracy >= 0.8 every 3 s for 2 min, on >= {MIN_LABELS} labels:"
    )
    with contextlib.ExitStack() as stack:
        canary, promoted = _pods(console, servers, ("canary-v4", "v4", "canary"), ("stable-v4", "v4", "stable"),
                                 stack=stack)  # fmt: skip
        pods = [*stable, *canary, *promoted]
        with console.step(f"starting Prometheus (scraping all {len(pods)} pods) and waiting for its targets"):
            prom = stack.enter_context(prometheus.running_prometheus(_targets(pods), workdir=workdir))
            prom.wait_targets_up()
        load = stack.enter_context(loadgen.LoadGenerator(
            stable_url=_urls(stable), canary_url=_urls(canary), rate_per_s=RATE_PER_S, max_seconds=TIMEOUT_S * 2,
            feedback_token=FEEDBACK_TOKEN))  # fmt: skip
        load.hold_labels()  # every label arrives late
        loop = rollout_loop.RolloutLoop(bake_spec(prom.url, version="v4"), prometheus_url=prom.url, load=load,
                                        stable_version="v2", stable_image="reg/iris:v2",
                                        stable_pods={"v2": _urls(stable), "v4": _urls(promoted)})  # fmt: skip
        names = {server.url: name for name, server in servers.running.items()}
        _late_labels(console, loop, candidate=_urls(canary) + _urls(promoted), pods=_urls(pods), names=names,
                     store_url=servers.log_url, workdir=workdir)  # fmt: skip
        _figures(console, [*canary, *promoted], names=names)
    if loop.phase != "RolledBack" or loop.stable_version != "v2":
        raise DemoFailed(f"the bake of v4 ended {loop.phase}: {loop.status.rollout.message}")
    console.print()
    console.print(render_status(_body(loop)), indent=3)


def _late_labels(console: Console, loop, *, candidate: list[str], pods: list[str], names: dict[str, str],
                 store_url: str, workdir: Path) -> None:  # fmt: skip
    """The canary and the promotion, then the labels of v4's predictions in two parts while it bakes."""
    started = time.monotonic()

    def until(done) -> None:
        drive(console, loop, until=lambda lp: done(lp) or rollout_loop.ended(lp), timeout_s=TIMEOUT_S,
              started=started)  # fmt: skip

    until(lambda lp: lp.phase == "Baking")
    if loop.phase != "Baking":
        raise DemoFailed(f"v4 was not promoted and baked: {loop.phase}: {loop.status.rollout.message}")
    held = _held_labels(loop.load, candidate)
    _feedback(console, held[:BY_FEEDBACK], pods=pods, names=names)
    until(lambda lp: _labelled(lp) >= BY_FEEDBACK)
    _bulk(console, held[BY_FEEDBACK : BY_FEEDBACK + BY_IMPORT], store_url=store_url, workdir=workdir)
    until(lambda lp: False)


def _figures(console: Console, pods: list, *, names: dict[str, str]) -> None:
    """What each pod of v4 exports, once they agree (no new v4 predictions since the rollback;
    each recomputes every second; bounded)."""

    def read() -> list[dict[str, float]]:
        return [
            {k: metric_value(p.metrics_text(), f"modelrollout_ground_truth_{k}") for k in FIGURES}
            for p in pods
        ]

    deadline, figures = time.monotonic() + 5, read()
    while time.monotonic() < deadline and any(f != figures[0] for f in figures):
        time.sleep(0.5)
        figures = read()
    console.note("what each pod of v4 exports (the figures of its version, computed from the shared store):")
    for pod, values in zip(pods, figures, strict=True):
        console.note(f"  {names[pod.url]:12s} " + ", ".join(f"{k} {v:.0f}" for k, v in values.items()))


def _held_labels(load, candidate: list[str]) -> list:
    """The labels of v4's predictions held back so far (enough for both deliveries; bounded wait)."""
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline:
        held = late_labels.predicted_by(load.held_labels(), candidate)
        if len(held) >= BY_FEEDBACK + BY_IMPORT:
            return held
        time.sleep(0.5)
    raise DemoFailed("v4 made too few predictions to label")


def _labelled(loop) -> float:
    checks = loop.status.rollout.bake.checks if loop.status.rollout.bake else []
    return max((c.samples or 0 for c in checks), default=0)


def _feedback(console: Console, held: list, *, pods: list[str], names: dict[str, str]) -> None:
    console.print(
        f"\n   The first {len(held)} labels of v4's predictions arrive through /feedback, each to another pod:"
    )
    delivered = late_labels.send_feedback(held, pods=pods, token=FEEDBACK_TOKEN)
    for d in delivered[:3]:
        console.note(f"predicted by {names[d.label.url]}, sent to {names[d.to]}: HTTP {d.status} {d.body.get('outcome')} "
                     f"(predicted {d.body.get('predicted')}, label {d.label.label}, correct {d.body.get('correct')})")  # fmt: skip
    outcomes = [d.body.get("outcome") for d in delivered]
    if outcomes.count("accepted") != len(held):
        raise DemoFailed(f"labels through /feedback were not all accepted: {outcomes}")
    console.note(
        f"... {len(held)} accepted; {len(held)} < minLabels {MIN_LABELS}: the bake waits (inconclusive)"
    )


def _bulk(console: Console, held: list, *, store_url: str, workdir: Path) -> None:
    path = late_labels.write_csv(held, workdir / "late-labels.csv")
    now = time.time() + HOURS_LATER * 3600
    console.print(
        f"\n   {HOURS_LATER} hours later (--now), the rest arrive in bulk, {len(held)} rows of request ids and labels:"
    )
    for line in path.read_text().splitlines()[:3]:
        console.note(line)
    console.command(["modelrollout-batch", *late_labels.import_command(path, store_url=store_url, now=now)])
    try:
        report = late_labels.import_labels(path, store_url=store_url, now=now)
    except RuntimeError as exc:
        raise DemoFailed(str(exc)) from None
    console.note(
        "<- " + ", ".join(f"{k} {report[k]}" for k in ("read", "accepted", "duplicate", "unknown", "invalid"))
    )
