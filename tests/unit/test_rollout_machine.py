"""The rollout state machine, table-driven with an injected clock and scripted analysis."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelrollout.api import conditions as R
from modelrollout.api.spec import parse_spec
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.rollout.machine import Cluster, Requests, decide

T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
ANALYSIS = {
    "prometheus": {"address": "http://127.0.0.1:9090"},
    "interval": "30s",
    "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
}


def spec(version="2.0.0", **rollout):
    rollout.setdefault("steps", [{"setWeight": 10, "pause": "1m"}, {"setWeight": 50, "pause": "1m"}])
    rollout.setdefault("analysis", ANALYSIS)
    rollout.setdefault("scaleDownDelay", "30s")
    return parse_spec(
        {"model": {"name": "iris", "version": version, "image": f"reg/iris:{version}"}, "rollout": rollout}
    )


def serving_v1() -> ModelDeploymentStatus:
    return ModelDeploymentStatus(stable_version="1.0.0", stable_image="reg/iris:1.0.0", phase="Ready")


def check(verdict, value=0.1, message=""):
    return CheckResult(
        metric="p99",
        query="histogram_quantile(...)",
        value=value,
        threshold="<= 0.5",
        verdict=verdict,
        message=message or f"p99 = {value}",
        time="2026-11-21T12:00:00Z",
    )


class Sim:
    """Drives decide() the way the controller does: status in, status out, clock forward."""

    def __init__(self, spec, status=None, verdicts=None):
        self.spec = spec
        self.status = status or serving_v1()
        self.verdicts = list(verdicts or [])
        self.analyses = 0
        self.now = T0
        self.events = []
        self.cluster = Cluster(
            canary_ready=True, stable_ready=True, stable_version="1.0.0", weight_settled=True
        )

    def analyze(self):
        """The next scripted verdict (a str), or scripted check results (a list); then passes."""
        self.analyses += 1
        verdict = self.verdicts.pop(0) if self.verdicts else "pass"
        if isinstance(verdict, list):
            return verdict
        return [check(verdict, value=0.9 if verdict == "fail" else 0.1)]

    def tick(self, seconds=0.0, requests=None, **cluster):
        requests = requests or Requests()
        self.now += timedelta(seconds=seconds)
        if cluster:
            self.cluster = Cluster(**{**self.cluster.__dict__, **cluster})
        d = decide(
            self.spec, self.status, self.cluster, requests=requests, analyze=self.analyze, now=self.now
        )
        self.cluster = Cluster(**{**self.cluster.__dict__, "observed_weight": d.weight})
        self.status = self.status.model_copy(update=d.status_fields())
        self.events += [e.reason for e in d.events]
        return d

    def start(self):
        """The rollout starts, the router realises the first weight, the step's clock starts."""
        self.tick()
        return self.tick()

    def run(self, seconds, step=5.0, **cluster):
        d = None
        for _ in range(int(seconds / step)):
            d = self.tick(step, **cluster)
        return d


def test_first_deployment_needs_no_rollout():
    d = decide(spec(), ModelDeploymentStatus(), Cluster(), requests=Requests(), analyze=lambda: [], now=T0)
    assert d.rollout is None and d.canary_model is None and d.stable_model.version == "2.0.0"


def test_unchanged_version_is_steady():
    s = Sim(spec("1.0.0"))
    d = s.tick()
    assert d.rollout is None and d.canary_model is None and d.weight == 0


def test_healthy_canary_walks_every_step_then_promotes():
    s = Sim(spec())
    d = s.tick()
    assert s.events == [R.ROLLOUT_STARTED] and d.weight == 10 and d.canary_model.version == "2.0.0"
    s.tick()  # the router has realised 10%: the step's clock starts
    assert s.events == [R.ROLLOUT_STARTED, R.STEP_STARTED]
    d = s.run(60)  # 1m pause at 10%, analysed at 30 s and 60 s
    assert s.status.rollout.step == 1 and d.weight == 50 and s.analyses == 2
    assert s.status.rollout.desired_weight == 50  # the status says what the decision asked for
    d = s.run(70)
    assert s.status.rollout.phase == "Promoting" and d.stable_version == "1.0.0"
    assert d.stable_model.version == "2.0.0"  # the stable track takes the candidate
    d = s.tick(5, stable_version="2.0.0", stable_ready=True)
    assert s.status.rollout.phase == "Succeeded" and d.promoted
    assert d.stable_version == "2.0.0" and d.weight == 0
    assert s.status.rollout.counts.passes == s.analyses >= 4 and s.status.rollout.counts.failures == 0
    assert R.PROMOTED in s.events
    # after the scale-down delay the canary goes away, and nothing restarts
    d = s.tick(31)
    assert d.canary_model is None and d.rollout.phase == "Succeeded"


def test_failing_check_rolls_back_with_value_and_threshold():
    s = Sim(spec(), verdicts=["fail"])
    s.start()
    d = s.run(30)
    r = s.status.rollout
    assert r.phase == "RolledBack" and d.rolled_back and d.weight == 0
    assert "p99" in r.message and "0.9" in r.message and "histogram_quantile" in r.message
    assert d.stable_model.version == "1.0.0" and d.stable_version == "1.0.0"
    assert s.status.rejected_version == "2.0.0@reg/iris:2.0.0"
    assert d.canary_model is not None  # still up during scaleDownDelay, at weight 0
    assert s.tick(31).canary_model is None
    assert R.ANALYSIS_FAILED in s.events


def test_rejected_version_is_not_retried_until_asked():
    s = Sim(spec(), verdicts=["fail"])
    s.start()
    s.run(30)
    for _ in range(10):
        d = s.tick(30)
        assert d.weight == 0 and s.status.rollout.phase == "RolledBack"
    d = s.tick(1, requests=Requests(retry="r1"))
    assert s.status.rollout.phase == "Progressing" and s.status.rollout.counts.failures == 0
    assert s.status.handled_requests.retry == "r1" and s.status.rejected_version is None
    started = s.events.count(R.ROLLOUT_STARTED)
    s.tick(1, requests=Requests(retry="r1"))  # the same token acts once
    assert s.events.count(R.ROLLOUT_STARTED) == started


@pytest.mark.parametrize(
    ("limit", "consecutive", "verdicts", "fails_at"),
    [
        (0, None, ["fail"], 1),
        (1, None, ["fail", "pass", "fail"], 3),
        (2, None, ["fail", "pass", "fail", "pass", "fail"], 5),
        (5, 2, ["fail", "pass", "fail", "fail"], 4),
    ],
)
def test_failure_limits(limit, consecutive, verdicts, fails_at):
    steps = [{"setWeight": 10, "pause": "10m"}]
    analysis = {**ANALYSIS, "failureLimit": limit}
    if consecutive:
        analysis["consecutiveFailureLimit"] = consecutive
    s = Sim(spec(steps=steps, analysis=analysis, progressDeadline="1h"), verdicts=verdicts)
    s.start()
    ticks = 0
    while ticks < 10 and s.status.rollout.phase != "RolledBack":
        s.tick(30)
        ticks += 1
    assert ticks == fails_at and s.analyses == fails_at


def test_no_data_waits_and_then_fails_at_the_deadline_never_passing():
    s = Sim(spec(progressDeadline="3m"), verdicts=["inconclusive"] * 100)
    s.start()
    # The first 30 s are the deliberate wait for one interval of data; the stall starts with
    # the first inconclusive analysis (30 s), so the 3m deadline ends it after 210 s.
    d = s.run(205)
    assert s.status.rollout.phase == "Progressing" and s.status.rollout.step == 0
    assert s.status.rollout.counts.inconclusives >= 5 and d.weight == 10
    assert s.status.rollout.stalled_since == "2026-11-21T12:00:30Z"
    s.run(10)
    assert s.status.rollout.phase == "Failed"
    assert R.PROGRESS_DEADLINE_EXCEEDED in s.events and R.PROMOTED not in s.events


def test_provider_errors_count_apart_and_abort_past_the_limit():
    s = Sim(spec(analysis={**ANALYSIS, "errorLimit": 2}), verdicts=["error"] * 10)
    s.start()
    s.run(60)
    r = s.status.rollout
    assert r.phase == "Progressing" and r.counts.errors == 2 and r.counts.failures == 0
    s.run(30)
    assert s.status.rollout.phase == "Failed" and s.status.rollout.counts.errors == 3
    assert R.ANALYSIS_ERRORS in s.events and s.status.stable_version == "1.0.0"


def test_new_version_mid_rollout_restarts_without_old_verdicts():
    s = Sim(spec(analysis={**ANALYSIS, "failureLimit": 3}), verdicts=["fail", "pass"])
    s.start()
    s.run(60)
    assert s.status.rollout.counts.failures == 1
    s.spec = spec("3.0.0", analysis={**ANALYSIS, "failureLimit": 3})
    d = s.tick(1)
    r = s.status.rollout
    assert r.canary_version == "3.0.0" and r.step == 0 and r.counts.failures == 0 and r.checks == []
    assert R.ROLLOUT_SUPERSEDED in s.events and d.canary_model.version == "3.0.0"
    assert r.from_version == "1.0.0"


def test_resume_from_a_snapshot_mid_step_repeats_nothing():
    s = Sim(spec())
    s.start()
    s.run(35)  # one analysis done at step 0
    snapshot = ModelDeploymentStatus.model_validate(s.status.model_dump(by_alias=True, mode="json"))
    analyses, events = s.analyses, len(s.events)
    restarted = Sim(spec(), status=snapshot)
    restarted.now = s.now
    d = restarted.tick(1)
    assert restarted.status.rollout.step == 0 and d.weight == 10  # same step, same weight
    assert restarted.status.rollout.step_started_at == s.status.rollout.step_started_at
    assert restarted.events == [] and restarted.analyses == 0  # no second StepStarted, no early analysis
    assert s.analyses == analyses and len(s.events) == events


def test_canary_not_ready_gets_no_traffic():
    s = Sim(spec())
    d = s.tick(canary_ready=False)
    assert (
        d.weight == 0
        and d.canary_model.version == "2.0.0"
        and "waiting for the canary" in s.status.rollout.message
    )
    assert s.analyses == 0


def test_unsettled_weight_delays_the_step_clock():
    s = Sim(spec())
    s.tick(weight_settled=False)
    s.run(120, weight_settled=False)
    assert s.status.rollout.step_started_at is None and s.analyses == 0


def test_abort_rolls_back_and_promote_skips_steps():
    s = Sim(spec())
    s.tick()
    d = s.tick(5, requests=Requests(abort="a1"))
    assert s.status.rollout.phase == "RolledBack" and d.weight == 0 and R.ABORTED in s.events
    s2 = Sim(spec())
    s2.tick()
    d = s2.tick(5, requests=Requests(promote="p1"))
    assert s2.status.rollout.phase == "Promoting" and d.stable_model.version == "2.0.0"


def test_pause_holds_weight_and_stops_the_deadline_clock():
    s = Sim(spec(progressDeadline="2m"))
    s.tick()
    s.spec = spec(paused=True, progressDeadline="2m")
    for _ in range(20):
        d = s.tick(30)
        assert s.status.rollout.phase == "Paused" and d.weight == 10
    analyses = s.analyses
    s.spec = spec(progressDeadline="2m")
    s.tick(1)
    assert s.status.rollout.phase == "Progressing" and s.analyses == analyses
    assert {R.PAUSED, R.RESUMED} <= set(s.events)


def test_spec_reverted_to_stable_withdraws_the_canary():
    s = Sim(spec())
    s.tick()
    s.spec = spec("1.0.0")
    d = s.tick(5)
    assert s.status.rollout.phase == "RolledBack" and d.weight == 0 and R.SPEC_REVERTED in s.events
    assert s.status.stable_version == "1.0.0"


def test_step_weight_increments_up_to_max_weight():
    from modelrollout.rollout.steps import effective_steps

    r = spec(steps=[], stepWeight=20, maxWeight=50).rollout
    assert [st.weight for st in effective_steps(r)] == [20, 40, 50]
    assert [st.weight for st in effective_steps(spec(steps=[]).rollout)] == [10, 50]
