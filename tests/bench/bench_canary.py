"""Benchmark: how fast a canary latency breach visible in Prometheus becomes a rollback.

    python -m tests.bench.bench_canary                      # intervals 5s and 10s, 4 trials each
    python -m tests.bench.bench_canary --intervals 5s --trials 1

Real processes, as in ``tests/integration/test_canary_rollout.py``: stable (good model v1), a
healthy canary and a slow canary (same model, ``--latency-ms`` injected) under ``bentoml serve``,
scraped every second by Prometheus; the load generator routes traffic by the decided weight. The
rollout (one step at 20 %, held for ten minutes, latency-p99 ``<= --threshold`` over the analysis
interval, ``failureLimit: 0``) is driven by the operator's own ``decide`` exactly on its
``requeue_after`` schedule, as the controller would requeue it.

Once the healthy canary has passed an analysis, the canary share is switched to the slow server
(the canary "turns slow") at an offset after that analysis - trials spread the offsets over the
interval, since where the breach falls between two analyses decides the wait. From the switch on,
a poller asks Prometheus for the canary's p99 - the analysis' own query - every 0.2 s: the first
value above the threshold is "breach visible". "Rollback" is when ``decide`` returns weight 0 (the
stable track holds 100 %). Target: rollback within one analysis interval + 2 s of the breach being
visible. Exit status 1 when a trial misses it.
"""

from __future__ import annotations

import argparse
import math
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

from modelrollout.api.base import parse_duration
from modelrollout.api.spec import parse_spec
from modelrollout.rollout import analysis
from modelrollout.rollout.templates import TEMPLATES, render
from tests.integration.bentoproc import BentoServer, BentoSpec, ModelSpec, bento_servers, trained_store
from tests.integration.loadgen import LoadGenerator
from tests.integration.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from tests.integration.rollout_loop import NAME, NAMESPACE, RolloutLoop, track_labels

POLL_S = 0.2
TARGET_SLACK_S = 2.0
TRIAL_TIMEOUT_S = 120.0


@dataclass
class Trial:
    interval_s: float
    offset_s: float  # switch to the slow canary this long after a passing analysis
    visible_s: float = math.nan  # breach visible, seconds after the switch
    rollback_s: float = math.nan  # decision with weight 0, seconds after the switch
    analyses: int = 0

    @property
    def delta_s(self) -> float:
        return self.rollback_s - self.visible_s

    @property
    def target_s(self) -> float:
        return self.interval_s + TARGET_SLACK_S

    @property
    def met(self) -> bool:
        return self.delta_s <= self.target_s  # NaN (never seen) is not met


def bench_spec(prometheus_url: str, *, interval: str, threshold: float, min_samples: int):
    return parse_spec(
        {
            "model": {"name": "iris-classifier", "version": "v2", "image": "reg/iris:v2"},
            "rollout": {
                "steps": [{"setWeight": 20, "pause": "10m"}],
                "progressDeadline": "10m",
                "analysis": {
                    "prometheus": {"address": prometheus_url},
                    "interval": interval,
                    "minSamples": min_samples,
                    "failureLimit": 0,
                    "metrics": [{"name": "latency-p99", "template": "latency-p99", "max": threshold}],
                },
            },
        }
    )


class BreachWatch:
    """Polls the canary p99 every POLL_S from start(); remembers when it first exceeded the threshold."""

    def __init__(self, prom: PrometheusServer, *, interval: str, threshold: float) -> None:
        variables = analysis.variables(
            namespace=NAMESPACE, name=NAME, track="canary", version="v2", interval=interval
        )
        self.query = render(TEMPLATES["latency-p99"], variables)
        self.prom, self.threshold = prom, threshold
        self.seen_at: float | None = None
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._poll, daemon=True)

    def start(self, *, deadline_s: float) -> None:
        self._deadline = time.monotonic() + deadline_s
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=5)

    def _poll(self) -> None:
        while not self._stop.is_set() and time.monotonic() < self._deadline:
            try:
                value = self.prom.value(self.query)
            except Exception:  # noqa: BLE001 - a failed poll is just not a sighting
                value = None
            if value is not None and not math.isnan(value) and value > self.threshold:
                self.seen_at = time.monotonic()
                return
            self._stop.wait(POLL_S)


def run_trial(servers: dict[str, BentoServer], workdir: Path, trial: Trial, args) -> Trial:
    interval = f"{trial.interval_s:g}s"
    targets = [ScrapeTarget(servers["stable"].target, track_labels("stable", version="v1"))] + [
        ScrapeTarget(servers[k].target, track_labels("canary", version=servers[k].spec.version))
        for k in ("healthy", "slow")
    ]
    with (
        running_prometheus(targets, workdir=workdir) as prom,
        LoadGenerator(
            stable_url=servers["stable"].url,
            canary_url=servers["healthy"].url,
            rate_per_s=args.rate,
            max_seconds=TRIAL_TIMEOUT_S + 60,
            feedback=False,
        ) as load,
    ):
        prom.wait_targets_up()
        spec = bench_spec(prom.url, interval=interval, threshold=args.threshold, min_samples=args.min_samples)
        loop = RolloutLoop(spec, prometheus_url=prom.url, load=load)
        watch = BreachWatch(prom, interval=interval, threshold=args.threshold)
        deadline = time.monotonic() + TRIAL_TIMEOUT_S
        next_tick, switch_at, switched_at = time.monotonic(), None, None
        while time.monotonic() < deadline:
            wake = next_tick if switch_at is None else min(next_tick, switch_at)
            time.sleep(max(0.0, wake - time.monotonic()))
            if switch_at is not None and time.monotonic() >= switch_at:
                load.set_canary_url(servers["slow"].url)
                switched_at, switch_at = time.monotonic(), None
                watch.start(deadline_s=deadline - switched_at)
            if time.monotonic() < next_tick:
                continue
            passes_before = loop.status.rollout.counts.passes if loop.status.rollout else 0
            d = loop.tick()
            tick_end = time.monotonic()
            next_tick = tick_end + (1.0 if d.requeue_after is None else d.requeue_after)
            if (
                switched_at is None
                and switch_at is None
                and loop.status.rollout.counts.passes > passes_before
            ):
                switch_at = tick_end + trial.offset_s
            if switched_at is not None and d.weight == 0:
                trial.rollback_s = tick_end - switched_at
                break
            if loop.phase not in (None, "Progressing"):
                raise RuntimeError(f"unexpected phase {loop.phase}: {loop.status.rollout.message}")
        watch.stop()
        if watch.seen_at is not None and switched_at is not None:
            trial.visible_s = watch.seen_at - switched_at
        trial.analyses = len(loop.analyses)
    return trial


def print_table(trials: list[Trial]) -> None:
    header = ("interval", "switch offset", "breach visible", "rollback", "delta", "target", "met?")
    rows = [
        (
            f"{t.interval_s:g}s",
            f"+{t.offset_s:.2f}s",
            f"{t.visible_s:.2f}s",
            f"{t.rollback_s:.2f}s",
            f"{t.delta_s:.2f}s",
            f"<= {t.target_s:g}s",
            "yes" if t.met else "NO",
        )
        for t in trials
    ]
    widths = [max(len(h), *(len(r[i]) for r in rows)) for i, h in enumerate(header)]
    line = "  ".join(f"{{:>{w}}}" for w in widths)
    print("\ncanary breach -> rollback (times after the canary turned slow)")
    print(line.format(*header))
    print(line.format(*("-" * w for w in widths)))
    for row in rows:
        print(line.format(*row))


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--intervals", default="5s,10s", help="analysis intervals, comma-separated (default 5s,10s)"
    )
    parser.add_argument("--trials", type=int, default=4, help="trials per interval, offsets spread over it")
    parser.add_argument("--rate", type=float, default=30.0, help="requests per second (all tracks)")
    parser.add_argument(
        "--latency-ms", type=float, default=400.0, help="latency injected into the slow canary"
    )
    parser.add_argument("--threshold", type=float, default=0.25, help="latency-p99 max (seconds)")
    parser.add_argument("--min-samples", type=int, default=10)
    args = parser.parse_args(argv)
    try:
        args.interval_list = [parse_duration(x.strip()) for x in args.intervals.split(",") if x.strip()]
    except ValueError as exc:
        parser.error(f"--intervals: {exc}")
    if not args.interval_list or args.trials < 1:
        parser.error("need at least one interval and one trial")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    trials: list[Trial] = []
    with tempfile.TemporaryDirectory(prefix="bench-canary-") as tmp:
        work = Path(tmp)
        store = trained_store(work / "store", [ModelSpec("v1"), ModelSpec("v2")])
        specs = {
            "stable": BentoSpec(store, "v1"),
            "healthy": BentoSpec(store, "v2", track="canary"),
            "slow": BentoSpec(store, "v2", track="canary", inject_latency_ms=args.latency_ms),
        }
        with bento_servers(list(specs.values()), workdir=work) as running:
            servers = dict(zip(specs, running, strict=True))
            for interval_s in args.interval_list:
                for j in range(args.trials):
                    trial = Trial(interval_s=interval_s, offset_s=interval_s * j / args.trials)
                    run_trial(servers, work, trial, args)
                    print(
                        f"interval {interval_s:g}s offset +{trial.offset_s:.2f}s: visible {trial.visible_s:.2f}s, "
                        f"rollback {trial.rollback_s:.2f}s, {trial.analyses} analyses",
                        flush=True,
                    )
                    trials.append(trial)
    print_table(trials)
    return 0 if all(t.met for t in trials) else 1


if __name__ == "__main__":
    sys.exit(main())
