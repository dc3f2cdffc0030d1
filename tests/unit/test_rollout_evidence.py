"""A canary is never promoted on stale, missing or impossible evidence (issue 12).

Each sequence the issue found, named after what must hold, driven through `decide()` with an
injected clock; where the values matter, the analysis is the operator's own (`analysis.run`
over a scripted provider), so `assess` and the sample gate are exercised too.
"""

from __future__ import annotations

import math
from datetime import timedelta

from modelrollout.api import conditions as R
from modelrollout.api.status import ModelDeploymentStatus, parse_status
from modelrollout.metrics.provider import ProviderError
from modelrollout.rollout import analysis
from modelrollout.rollout.machine import Requests
from modelrollout.rollout.verdict import assess
from tests.unit.test_rollout_machine import ANALYSIS, T0, Sim, spec

PROM = {"address": "http://127.0.0.1:9090"}


def one_step(weight=50, pause="5m", **rollout):
    return spec(steps=[{"setWeight": weight, "pause": pause}], **rollout)


def never_promoted(s: Sim) -> bool:
    return R.PROMOTING not in s.events and R.PROMOTED not in s.events


class Measured(Sim):
    """Sim whose analysis is `analysis.run` over a provider answering `answer(query)`."""

    def __init__(self, spec, answer, **kw):
        super().__init__(spec, **kw)
        self.answer = answer
        self.results = []

    def analyze(self):
        self.analyses += 1

        class Provider:
            def query(_, promql):
                value = self.answer(promql)
                if isinstance(value, Exception):
                    raise value
                return value

        results = analysis.run(
            self.spec.rollout.analysis,
            Provider(),
            namespace="default",
            name="iris",
            canary_version=self.spec.model.version,
            stable_version="1.0.0",
            now=self.now,
        )
        self.results.append(results)
        return results


# --- 1. one early pass never carries a step -----------------------------------------------------


def test_one_early_pass_does_not_carry_a_last_step_of_inconclusive_analyses():
    s = Sim(one_step(pause="5m"), verdicts=["pass"] + ["inconclusive"] * 100)
    s.start()
    s.run(330)  # the sticky stepPassed promoted here
    r = s.status.rollout
    assert r.phase == "Progressing" and r.step_verdict == "inconclusive" and never_promoted(s)
    s.run(400)  # the stall began with the first inconclusive (60 s): 10m later it fails
    assert s.status.rollout.phase == "Failed" and R.PROGRESS_DEADLINE_EXCEEDED in s.events
    assert never_promoted(s)


def test_provider_errors_after_a_pass_never_promote():
    s = Sim(one_step(pause="2m"), verdicts=["pass"] + ["error"] * 10)
    s.start()
    s.run(125)  # pause over, but the latest analysis (120 s) is an error: Prometheus is down
    r = s.status.rollout
    assert r.phase == "Progressing" and r.step_verdict == "error" and r.counts.errors == 3
    assert never_promoted(s)
    s.run(30)  # the 4th error exceeds errorLimit 3
    assert s.status.rollout.phase == "Failed" and R.ANALYSIS_ERRORS in s.events and never_promoted(s)


def test_readme_steps_with_one_pass_per_step_then_inconclusives_never_promote():
    steps = [{"setWeight": 10, "pause": "2m"}, {"setWeight": 50, "pause": "5m"}]
    script = ["pass"] + ["inconclusive"] * 3 + ["pass"] + ["inconclusive"] * 100
    s = Sim(spec(steps=steps), verdicts=script)
    s.start()
    s.run(125)
    assert s.status.rollout.step == 0  # 2m are over, but the latest analysis is inconclusive
    s.run(30)
    assert s.status.rollout.step == 1  # a fresh pass at 150 s: the step moves on
    s.run(900)
    assert s.status.rollout.phase == "Failed" and never_promoted(s)


def test_pause_and_resume_do_not_revive_a_stale_pass():
    s = Sim(spec(), verdicts=["pass"] + ["inconclusive"] * 100)
    s.start()
    s.run(35)
    assert s.status.rollout.step_verdict == "pass"
    s.spec = spec(paused=True)
    s.run(600)
    s.spec = spec()
    s.tick(1)
    r = s.status.rollout
    assert r.phase == "Progressing" and r.step_verdict is None and r.step_started_at == "2026-11-21T12:10:36Z"
    s.run(90)  # the 1m hold restarted at the resume is over; the analysis since is inconclusive
    assert s.status.rollout.step == 0 and s.status.rollout.step_verdict == "inconclusive"
    assert never_promoted(s)


def test_a_step_waits_for_its_own_first_analysis():
    """The verdict is per step: the next step starts with none, and needs its own pass."""
    s = Sim(spec(), verdicts=["pass", "pass"] + ["inconclusive"] * 100)
    s.start()
    s.run(60)
    r = s.status.rollout
    assert r.step == 1 and r.step_verdict is None
    s.run(200)
    assert s.status.rollout.step == 1 and never_promoted(s)


def test_an_old_status_with_the_sticky_step_passed_waits_for_a_fresh_pass():
    old = ModelDeploymentStatus(stable_version="1.0.0", stable_image="reg/iris:1.0.0").to_wire()
    old["rollout"] = {
        "phase": "Progressing",
        "canaryVersion": "2.0.0",
        "canaryImage": "reg/iris:2.0.0",
        "step": 0,
        "startedAt": "2026-11-21T11:55:00Z",
        "stepStartedAt": "2026-11-21T11:58:00Z",
        "lastProgressAt": "2026-11-21T11:58:30Z",
        "lastAnalysisAt": "2026-11-21T11:59:50Z",
        "stepPassed": True,  # written by an operator before issue 12
        "desiredWeight": 10,
        "observedWeight": 10,
    }
    s = Sim(spec(), status=parse_status(old), verdicts=["inconclusive", "pass"])
    s.cluster = type(s.cluster)(**{**s.cluster.__dict__, "observed_weight": 10})
    s.tick(1)  # the 1m hold is long over, but no analysis of this operator has passed yet
    assert s.status.rollout.step == 0 and s.analyses == 0
    s.run(20)  # the next analysis (30 s after the last) is inconclusive
    assert s.status.rollout.step == 0 and s.status.rollout.step_verdict == "inconclusive"
    s.run(30)
    assert s.status.rollout.step == 1  # the pass after it moves the step on


# --- 2. non-finite values are unknown ------------------------------------------------------------

RELATIVE = {
    **ANALYSIS,
    "metrics": [{"name": "p99", "template": "latency-p99", "relativeToStable": {"maxRatio": 1.2}}],
}


def latency(canary, stable, samples=100.0):
    def answer(query):
        if "increase(" in query:
            return samples
        return canary if 'track="canary"' in query else stable

    return answer


def test_a_stable_value_of_plus_inf_never_lets_a_canary_pass():
    s = Measured(one_step(pause="1m", analysis=RELATIVE), latency(canary=30.0, stable=math.inf))
    s.start()
    s.run(120)
    assert s.results and all(r[0].verdict == "inconclusive" for r in s.results)
    last = s.results[-1][0]
    assert last.value == 30.0 and last.stable_value is None and "stable value is inf" in last.message
    s.run(600)
    assert s.status.rollout.phase == "Failed" and never_promoted(s)


def test_an_infinite_canary_value_is_inconclusive_not_a_pass():
    minimum = {**ANALYSIS, "metrics": [{"name": "acc", "template": "accuracy", "min": 0.9}]}
    # the accuracy value query reads the correct figure; its samples query the labelled one
    s = Measured(
        one_step(pause="1m", analysis=minimum),
        lambda q: math.inf if "modelrollout_ground_truth_correct" in q else 100.0,
    )
    s.start()
    s.run(60)
    assert s.results[-1][0].verdict == "inconclusive" and "inf" in s.results[-1][0].message
    assert s.status.rollout.step_verdict == "inconclusive" and never_promoted(s)


# --- 3. every check has a sample gate ------------------------------------------------------------

CUSTOM = {
    "name": "errors",
    "template": "custom",
    "query": 'sum(rate(errors_total{track="{{track}}"}[{{interval}}])) or vector(0)',
    "samplesQuery": 'sum(increase(requests_total{track="{{track}}"}[{{interval}}]))',
    "max": 0.1,
}


def test_a_custom_check_with_zero_canary_traffic_is_inconclusive():
    spec_ = one_step(pause="1m", analysis={**ANALYSIS, "metrics": [CUSTOM]})
    s = Measured(spec_, lambda q: None if "requests_total" in q else 0.0)  # no request series
    s.start()
    s.run(120)
    last = s.results[-1][0]
    assert last.verdict == "inconclusive" and last.samples == 0.0
    assert last.message == "0 samples < minSamples 20" and never_promoted(s)


def test_a_custom_check_passes_once_its_samples_query_counts_enough():
    spec_ = one_step(pause="1m", analysis={**ANALYSIS, "metrics": [CUSTOM]})
    s = Measured(spec_, lambda q: 25.0 if "requests_total" in q else 0.01)
    s.start()
    s.run(65)
    assert s.results[-1][0].verdict == "pass" and s.status.rollout.phase == "Promoting"


def test_a_check_may_opt_out_of_the_gate_only_explicitly():
    opted_out = {
        **{k: v for k, v in CUSTOM.items() if k != "samplesQuery"},
        "minSamples": 0,
        "minSamplesReason": "a synthetic probe: one sample is the whole signal",
    }
    spec_ = one_step(pause="1m", analysis={**ANALYSIS, "metrics": [opted_out]})
    s = Measured(spec_, lambda q: 0.01)
    s.start()
    s.run(65)
    assert s.results[-1][0].verdict == "pass" and s.results[-1][0].samples is None


def test_a_check_can_ask_for_more_samples_than_the_analysis():
    stricter = {"name": "p99", "template": "latency-p99", "max": 0.5, "minSamples": 50}
    spec_ = one_step(pause="1m", analysis={**ANALYSIS, "metrics": [stricter]})
    s = Measured(spec_, latency(canary=0.1, stable=0.1, samples=30.0))
    s.start()
    s.run(60)
    assert s.results[-1][0].message == "30 samples < minSamples 50" and never_promoted(s)


def test_sample_counts_are_reported_honestly():
    from modelrollout.api.checks import MetricCheck

    check = MetricCheck.model_validate({"name": "m", "template": "latency-p99", "max": 1})
    for samples, text in [(19.5, "19.5 samples"), (19.9999999, "19.9999999 samples"), (0.0, "0 samples")]:
        verdict, _, message = assess(check, value=0.1, stable_value=None, samples=samples, min_samples=20)
        assert verdict == "inconclusive" and message == f"{text} < minSamples 20"


def test_an_analysis_without_results_is_no_evidence():
    s = Sim(one_step(pause="1m"), verdicts=[[]] * 100)
    s.start()
    s.run(120)
    r = s.status.rollout
    assert (
        r.step_verdict == "inconclusive" and r.message == "inconclusive: no checks ran" and never_promoted(s)
    )


# --- 4. deadline semantics -----------------------------------------------------------------------


def test_a_long_step_without_analysis_is_a_hold_not_a_stall():
    s = Sim(one_step(weight=50, pause="20m", analysis=None, progressDeadline="10m"))
    s.start()
    s.run(1195)
    assert s.status.rollout.phase == "Progressing" and s.status.rollout.stalled_since is None
    s.run(10)
    assert s.status.rollout.phase == "Promoting" and R.PROGRESS_DEADLINE_EXCEEDED not in s.events


def test_a_long_pause_with_passing_analyses_outlasts_the_deadline():
    s = Sim(one_step(pause="30m", progressDeadline="2m"))
    s.start()
    s.run(1795)
    assert s.status.rollout.phase == "Progressing" and s.analyses >= 50
    s.run(10)
    assert s.status.rollout.phase == "Promoting"


def test_the_first_interval_of_data_is_not_a_stall():
    analysis_5m = {**ANALYSIS, "interval": "5m"}
    s = Sim(
        one_step(pause="5m", analysis=analysis_5m, progressDeadline="6m"), verdicts=["inconclusive", "pass"]
    )
    s.start()
    s.run(605)  # inconclusive at 5m (the stall starts), a pass at 10m: 5m of stall < 6m
    assert s.status.rollout.phase == "Promoting" and R.PROGRESS_DEADLINE_EXCEEDED not in s.events


def test_an_inconclusive_after_a_pass_starts_the_stall_clock():
    s = Sim(one_step(pause="1h", progressDeadline="2m"), verdicts=["pass", "pass"] + ["inconclusive"] * 100)
    s.start()
    s.run(95)
    assert s.status.rollout.stalled_since == "2026-11-21T12:01:30Z"
    s.run(115)  # 205 s: 115 s of stall
    assert s.status.rollout.phase == "Progressing"
    s.run(10)
    assert s.status.rollout.phase == "Failed" and "inconclusive" in s.status.rollout.message


def test_canary_pods_lost_mid_step_are_a_stall():
    s = Sim(one_step(pause="1h", progressDeadline="2m"))
    s.start()
    s.run(300)
    s.run(120, canary_ready=False)  # unready since 305 s: 115 s of stall at 420 s
    assert s.status.rollout.phase == "Progressing"
    s.run(10, canary_ready=False)
    r = s.status.rollout
    assert r.phase == "Failed" and "canary pods not ready" in r.message


def test_pods_that_come_back_before_the_deadline_end_the_stall():
    s = Sim(one_step(pause="1h", progressDeadline="2m"))
    s.start()
    s.run(300)
    s.run(60, canary_ready=False)
    assert s.status.rollout.stalled_since is not None
    s.run(30, canary_ready=True)
    assert s.status.rollout.stalled_since is None and s.status.rollout.phase == "Progressing"


# --- 5. onInconclusive and the error limits ------------------------------------------------------


def test_on_inconclusive_rollback_fails_at_the_first_inconclusive():
    s = Sim(one_step(analysis={**ANALYSIS, "onInconclusive": "rollback"}), verdicts=["pass", "inconclusive"])
    s.start()
    s.run(60)
    r = s.status.rollout
    assert r.phase == "Failed" and R.ANALYSIS_INCONCLUSIVE in s.events and s.status.rejected_version
    assert "onInconclusive: rollback" in r.message and s.tick(1).weight == 0


def test_on_inconclusive_pause_holds_for_a_person_outside_the_deadline_and_a_retry_continues():
    s = Sim(one_step(pause="1m", analysis={**ANALYSIS, "onInconclusive": "pause"}), verdicts=["inconclusive"])
    s.start()
    d = s.run(30)
    r = s.status.rollout
    assert r.phase == "Paused" and r.analysis_hold and d.weight == 50 and R.ANALYSIS_INCONCLUSIVE in s.events
    d = s.run(3600)  # an hour: far past the 10m deadline, held as it is, no analysis
    assert s.status.rollout.phase == "Paused" and d.weight == 50 and s.analyses == 1
    s.tick(1, requests=Requests(retry="r1"))
    r = s.status.rollout
    assert r.phase == "Progressing" and not r.analysis_hold and r.step_verdict is None
    s.run(60)  # a fresh hold and a fresh pass
    assert s.status.rollout.phase == "Promoting"


def test_on_inconclusive_pause_hands_over_to_paused_and_resumes_with_it():
    s = Sim(one_step(pause="1m", analysis={**ANALYSIS, "onInconclusive": "pause"}), verdicts=["inconclusive"])
    s.start()
    s.run(30)
    s.spec = one_step(pause="1m", analysis={**ANALYSIS, "onInconclusive": "pause"}, paused=True)
    s.tick(5)
    assert s.status.rollout.phase == "Paused" and not s.status.rollout.analysis_hold
    s.spec = one_step(pause="1m", analysis={**ANALYSIS, "onInconclusive": "pause"})
    s.tick(5)
    assert s.status.rollout.phase == "Progressing" and R.RESUMED in s.events


def test_on_inconclusive_pause_can_be_promoted_or_aborted():
    for request, phase in [(Requests(promote="p1"), "Promoting"), (Requests(abort="a1"), "RolledBack")]:
        s = Sim(one_step(analysis={**ANALYSIS, "onInconclusive": "pause"}), verdicts=["inconclusive"])
        s.start()
        s.run(30)
        s.tick(5, requests=request)
        assert s.status.rollout.phase == phase


def test_consecutive_error_limit_counts_errors_in_a_row_only():
    limits = {**ANALYSIS, "errorLimit": 100, "consecutiveErrorLimit": 2}
    script = ["error", "error", "inconclusive", "error", "error", "error"]
    s = Sim(one_step(pause="1h", analysis=limits), verdicts=script)
    s.start()
    s.run(150)
    r = s.status.rollout
    assert r.phase == "Progressing" and r.counts.errors == 4 and r.counts.consecutive_errors == 2
    s.run(30)
    r = s.status.rollout
    assert r.phase == "Failed" and r.counts.consecutive_errors == 3
    assert "3 analysis errors in a row (consecutiveErrorLimit 2)" in r.message


def test_error_limit_is_a_total_that_passes_do_not_reset():
    limits = {**ANALYSIS, "errorLimit": 2}
    s = Sim(one_step(pause="1h", analysis=limits), verdicts=["error", "pass", "error", "pass", "error"])
    s.start()
    s.run(150)
    r = s.status.rollout
    assert r.phase == "Failed" and r.counts.errors == 3 and r.counts.passes == 2


def test_a_failure_streak_is_ended_only_by_a_pass():
    limits = {**ANALYSIS, "failureLimit": 10, "consecutiveFailureLimit": 2}
    for between, ends in [("inconclusive", True), ("error", True), ("pass", False)]:
        s = Sim(one_step(pause="1h", analysis=limits), verdicts=["fail", between, "fail"])
        s.start()
        s.run(90)
        assert (s.status.rollout.phase == "RolledBack") is ends, between


def test_a_tolerated_failure_holds_the_step_until_a_pass():
    s = Sim(one_step(pause="1m", analysis={**ANALYSIS, "failureLimit": 1}), verdicts=["pass", "fail", "pass"])
    s.start()
    s.run(65)
    assert s.status.rollout.phase == "Progressing" and s.status.rollout.step_verdict == "fail"
    s.run(30)
    assert s.status.rollout.phase == "Promoting"


def test_a_provider_outage_is_an_error_and_never_a_pass():
    spec_ = one_step(pause="1m", analysis={**ANALYSIS, "errorLimit": 100})
    s = Measured(spec_, lambda q: ProviderError("connection refused"))
    s.start()
    s.run(300)
    assert all(r[0].verdict == "error" for r in s.results) and never_promoted(s)
    assert s.status.rollout.stalled_since == (T0 + timedelta(seconds=30)).strftime("%Y-%m-%dT%H:%M:%SZ")
