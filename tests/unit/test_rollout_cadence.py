"""Per-check interval and window (rollout/cadence.py) driven through decide(): each check runs at
its own interval, over its own window; a pass needs every check's current evidence; a failure
is counted once, when it is observed."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from modelrollout.api.spec import parse_spec
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.rollout import analysis
from modelrollout.rollout.decision import Cluster, Requests
from modelrollout.rollout.machine import decide

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
READY = Cluster(canary_ready=True, stable_ready=True, stable_version="1.0.0", weight_settled=True)


def spec(metrics, *, interval="10s", pause="1h", deadline="30m"):
    return parse_spec(
        {
            "model": {"name": "iris", "version": "2.0.0", "image": "reg/iris:2.0.0"},
            "rollout": {
                "steps": [{"setWeight": 10, "pause": pause}, {"setWeight": 50, "pause": pause}],
                "progressDeadline": deadline,
                "scaleDownDelay": "0s",
                "analysis": {
                    "prometheus": {"address": "http://127.0.0.1:9090"},
                    "interval": interval,
                    "failureLimit": 5,
                    "metrics": metrics,
                },
            },
        }
    )


FAST = {"name": "fast", "template": "error-rate", "max": 0.01}  # analysis.interval: 10s
SLOW = {"name": "slow", "template": "latency-p99", "max": 0.5, "interval": "40s", "window": "5m"}


class Sim:
    """decide() with the clock moving and a scripted analysis that records which checks it ran."""

    def __init__(self, spec, verdicts=None):
        self.spec, self.now, self.cluster = spec, T0, READY
        self.status = ModelDeploymentStatus(
            stable_version="1.0.0", stable_image="reg/iris:1.0.0", phase="Ready"
        )
        self.verdicts = verdicts or {}  # check -> list of verdicts (then pass)
        self.runs: list[list[str]] = []

    def analyze(self, only=None):
        names = [m.name for m in self.spec.rollout.analysis.metrics if only is None or m.name in only]
        self.runs.append(names)
        results = []
        for name in names:
            verdict = self.verdicts.get(name, []).pop(0) if self.verdicts.get(name) else "pass"
            results.append(
                CheckResult(metric=name, query="q", verdict=verdict, message=f"{name} {verdict}", time="t")
            )
        return results

    def tick(self, seconds=1.0):
        self.now += timedelta(seconds=seconds)
        d = decide(
            self.spec, self.status, self.cluster, requests=Requests(), analyze=self.analyze, now=self.now
        )
        self.cluster = Cluster(**{**self.cluster.__dict__, "observed_weight": d.weight})
        self.status = self.status.model_copy(update=d.status_fields())
        return d

    def run(self, seconds, step=1.0):
        for _ in range(int(seconds / step)):
            self.tick(step)

    @property
    def r(self):
        return self.status.rollout


def started(sim: Sim) -> Sim:
    sim.tick()  # rollout starts
    sim.tick()  # weight settles, the step's hold starts
    assert sim.r.step_started_at is not None
    return sim


def test_each_check_runs_at_its_own_interval():
    sim = started(Sim(spec([FAST, SLOW])))
    sim.run(80)
    fast_runs = sum("fast" in r for r in sim.runs)
    slow_runs = sum("slow" in r for r in sim.runs)
    assert fast_runs == 8 and slow_runs == 2  # every 10s and every 40s over 80s
    assert ["fast"] in sim.runs and ["fast", "slow"] in sim.runs  # alone, and together when both are due


def test_a_step_waits_for_the_first_result_of_every_check():
    sim = started(Sim(spec([FAST, SLOW], pause="5s")))
    sim.run(35)  # fast has passed three times; slow has not run yet
    assert sim.r.step == 0 and sim.r.step_verdict is None and sim.r.counts.passes == 0
    assert sim.r.stalled_since is None  # waiting for the first data of every check is a hold
    sim.run(6)  # slow runs at 40s and passes: the step moves on
    assert sim.r.step == 1 and sim.r.counts.passes == 1


def test_a_failure_is_counted_once_and_blocks_the_step_until_that_check_passes():
    sim = started(Sim(spec([FAST, SLOW], pause="5s"), verdicts={"slow": ["fail"]}))
    sim.run(41)  # slow fails at 40s (tolerated: failureLimit 5)
    assert sim.r.counts.failures == 1 and sim.r.step_verdict == "fail"
    sim.run(30)  # fast passes three more times: no news, the failure is not counted again
    assert sim.r.counts.failures == 1 and sim.r.counts.passes == 0 and sim.r.step == 0
    assert sim.r.step_verdict == "fail" and sim.r.stalled_since is not None
    sim.run(10)  # slow runs again at 80s and passes: every check's current evidence passes
    assert sim.r.step == 1 and sim.r.counts.passes == 1


def test_with_one_interval_every_run_evaluates_every_check_as_before():
    sim = started(Sim(spec([FAST, {**SLOW, "interval": None}], pause="5s")))
    sim.run(10)
    assert sim.runs == [["fast", "slow"]] and sim.r.step == 1


def test_each_check_is_queried_over_its_own_window():
    queries: list[str] = []

    class Provider:
        def query(self, promql):
            queries.append(promql)
            return 100.0

    s = spec([FAST, SLOW])

    def run_only(check: str) -> None:
        queries.clear()
        analysis.run(
            s.rollout.analysis,
            Provider(),
            namespace="ml",
            name="iris",
            canary_version="2",
            stable_version="1",
            now=T0,
            only={check},
        )

    run_only("slow")
    assert queries and all("[5m]" in q for q in queries)  # slow's window, not the 10s interval
    run_only("fast")
    assert queries and all("[10s]" in q for q in queries)  # window defaults to the check's interval


def test_requeue_comes_when_the_next_check_is_due():
    sim = started(Sim(spec([FAST, SLOW])))
    d = sim.tick(0.5)
    assert d.requeue_after == 9.5  # fast is due 10s after the hold started
