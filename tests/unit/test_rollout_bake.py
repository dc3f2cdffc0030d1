"""The bake after promotion: late labels keep judging the promoted version; a failure rolls back
to the previous one, as a canary failure does; too few labels never roll back."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelrollout.api import conditions as R
from modelrollout.api.spec import SpecError, parse_spec
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.rollout.decision import Cluster, Requests
from modelrollout.rollout.machine import decide
from tests.support.crdschema import model_deployment, validate

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
ANALYSIS = {
    "prometheus": {"address": "http://127.0.0.1:9090"},
    "interval": "30s",
    "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
}
BAKE = {
    "duration": "1h",
    "interval": "5m",
    "minLabels": 100,
    "metrics": [{"name": "accuracy", "template": "accuracy", "min": 0.9}],
}


def spec(version="2.0.0", **rollout):
    rollout.setdefault("steps", [{"setWeight": 50, "pause": "1m"}])
    rollout.setdefault("analysis", ANALYSIS)
    rollout.setdefault("bake", BAKE)
    rollout.setdefault("scaleDownDelay", "0s")
    return parse_spec(
        {"model": {"name": "iris", "version": version, "image": f"reg/iris:{version}"}, "rollout": rollout}
    )


def result(verdict: str, value: float = 0.95) -> list[CheckResult]:
    return [
        CheckResult(
            metric="accuracy", query="q", value=value, samples=500, verdict=verdict, message=verdict, time="t"
        )
    ]


class Driver:
    """decide() as the controller calls it, with scripted canary and bake analyses."""

    def __init__(self, spec):
        self.spec, self.now = spec, T0
        self.status = ModelDeploymentStatus(
            stable_version="1.0.0", stable_image="reg/iris:1.0.0", phase="Ready"
        )
        self.cluster = Cluster(
            canary_ready=True, stable_ready=True, stable_version="1.0.0", weight_settled=True
        )
        self.bake_verdicts: list[list[CheckResult]] = []
        self.bake_calls = 0
        self.events: list[tuple[str, str, str]] = []
        self.decision = None

    def analyze_bake(self):
        self.bake_calls += 1
        return self.bake_verdicts.pop(0) if self.bake_verdicts else result("inconclusive")

    def tick(self, seconds=1.0, **requests):
        self.now += timedelta(seconds=seconds)
        canary = [
            CheckResult(
                metric="p99", query="q", value=0.1, samples=100, verdict="pass", message="ok", time="t"
            )
        ]
        self.decision = d = decide(
            self.spec,
            self.status,
            self.cluster,
            requests=Requests(**requests),
            analyze=lambda: canary,
            analyze_bake=self.analyze_bake,
            now=self.now,
        )
        self.cluster = Cluster(
            **{**self.cluster.__dict__, "observed_weight": d.weight, "stable_version": d.stable_model.version}
        )
        self.status = self.status.model_copy(update=d.status_fields())
        self.events += [(e.type, e.reason, e.message) for e in d.events]
        return d

    def reasons(self):
        return [reason for _, reason, _ in self.events]

    @property
    def rollout(self):
        return self.status.rollout


def promoted() -> Driver:
    d = Driver(spec())
    for _ in range(40):  # start, step of 1m with passing analyses, promote, stable rolls out
        d.tick(5)
        if d.rollout.phase == "Baking":
            return d
    raise AssertionError(f"never baked: {d.rollout}")


def test_promotion_starts_a_bake_with_the_previous_version_recorded():
    d = promoted()
    r = d.rollout
    assert R.PROMOTED in d.reasons() and R.BAKE_STARTED in d.reasons()
    assert (
        d.status.stable_version == "2.0.0" and r.from_version == "1.0.0" and r.from_image == "reg/iris:1.0.0"
    )
    started = datetime.fromisoformat(r.bake.started_at.replace("Z", "+00:00"))
    until = datetime.fromisoformat(r.bake.until.replace("Z", "+00:00"))
    assert until - started == timedelta(hours=1)
    assert d.decision.stable_model.version == "2.0.0" and d.decision.canary_model is None


def test_bad_late_labels_roll_back_to_the_previous_version():
    d = promoted()
    d.bake_verdicts = [result("pass"), result("pass"), result("fail", value=0.7)]
    for _ in range(3):
        d.tick(300)
    r = d.rollout
    assert r.phase == "RolledBack" and d.decision.rolled_back
    assert d.decision.stable_model.version == "1.0.0" and d.decision.stable_model.image == "reg/iris:1.0.0"
    assert d.status.stable_version == "1.0.0" and d.status.rejected_version == "2.0.0@reg/iris:2.0.0"
    warning = [e for e in d.events if e[1] == R.BAKE_FAILED]
    assert warning and warning[0][0] == "Warning" and "accuracy" in warning[0][2]
    # and it stays rolled back: the spec still names the rejected version
    d.tick(300)
    assert d.decision.stable_model.version == "1.0.0" and d.bake_calls == 3


def test_too_few_labels_never_roll_back_and_the_bake_ends_with_a_warning():
    d = promoted()
    for _ in range(13):  # 65 minutes of inconclusive (too few labels)
        d.tick(300)
    assert d.rollout.phase == "Succeeded" and d.status.stable_version == "2.0.0"
    assert R.BAKE_INCONCLUSIVE in d.reasons() and not d.decision.rolled_back
    assert d.rollout.bake.counts.inconclusives >= 11


def test_a_clean_bake_ends_succeeded():
    d = promoted()
    d.bake_verdicts = [result("pass")] * 20
    for _ in range(13):
        d.tick(300)
    assert d.rollout.phase == "Succeeded" and R.BAKED in d.reasons()
    assert d.rollout.bake.verdict == "pass" and d.rollout.bake.counts.passes == 12


def test_analyses_run_at_the_bake_interval_only():
    d = promoted()
    for _ in range(10):
        d.tick(60)  # 10 minutes: two bake analyses at a 5m interval
    assert d.bake_calls == 2
    assert d.decision.requeue_after is not None and d.decision.requeue_after <= 300


def test_tolerated_failures_do_not_roll_back():
    d = Driver(spec(bake={**BAKE, "failureLimit": 1}))
    for _ in range(40):
        d.tick(5)
        if d.rollout.phase == "Baking":
            break
    d.bake_verdicts = [result("fail", 0.8), result("pass"), result("fail", 0.8)]
    d.tick(300)
    assert d.rollout.phase == "Baking" and R.CHECK_FAILED in d.reasons()
    d.tick(300)
    d.tick(300)
    assert d.rollout.phase == "RolledBack"


def test_abort_during_the_bake_rolls_back_and_promote_ends_it():
    d = promoted()
    d.tick(1, abort="a1")
    assert d.rollout.phase == "RolledBack" and d.decision.stable_model.version == "1.0.0"
    d2 = promoted()
    d2.tick(1, promote="p1")
    assert d2.rollout.phase == "Succeeded" and d2.status.stable_version == "2.0.0"
    assert d2.status.handled_requests.results[-1].outcome == "Accepted"


def test_removing_the_bake_from_the_spec_ends_it_and_keeps_the_promoted_version():
    d = promoted()
    d.spec = spec(bake=None)
    assert d.spec.rollout.bake is None
    d.tick(300)
    assert d.rollout.phase == "Succeeded" and d.status.stable_version == "2.0.0"
    assert d.rollout.message == "bake removed from the spec" and not d.decision.rolled_back
    assert d.events[-1][:2] == ("Normal", R.BAKED) and d.bake_calls == 0
    d.tick(300)  # and it stays so
    assert d.rollout.phase == "Succeeded" and d.decision.stable_model.version == "2.0.0"


def test_a_new_version_during_the_bake_supersedes_it_and_rolls_out_from_the_baked_one():
    d = promoted()
    d.spec = spec("3.0.0")
    d.tick(5)
    assert R.BAKE_SUPERSEDED in d.reasons()
    assert d.rollout.phase == "Progressing" and d.rollout.canary_version == "3.0.0"
    assert d.rollout.from_version == "2.0.0"


def test_the_bake_resumes_from_status_after_a_restart():
    d = promoted()
    d.bake_verdicts = [result("pass")]
    d.tick(300)
    saved = d.status.model_dump(by_alias=True, mode="json")
    restarted = Driver(spec())
    restarted.status = ModelDeploymentStatus.model_validate(saved)
    restarted.now, restarted.cluster = d.now, d.cluster
    restarted.bake_verdicts = [result("fail", 0.5)]
    restarted.tick(1)
    assert restarted.bake_calls == 0  # not due yet: the clock came from status
    restarted.tick(300)
    assert restarted.rollout.phase == "RolledBack"


@pytest.mark.parametrize(
    ("rollout", "fragment"),
    [
        ({"bake": BAKE}, "bake needs rollout.analysis"),
        (
            {
                "analysis": ANALYSIS,
                "bake": {
                    **BAKE,
                    "metrics": [
                        {"name": "a", "template": "accuracy", "relativeToStable": {"maxDecrease": 0.1}}
                    ],
                },
            },
            "absolute bounds",
        ),
        ({"analysis": ANALYSIS, "bake": {**BAKE, "duration": "a day"}}, "duration"),
    ],
)
def test_a_bake_that_cannot_work_is_refused_by_schema_and_operator(rollout, fragment):
    body = {"model": {"name": "iris", "version": "1", "image": "x:1"}, "rollout": rollout}
    _, errors = validate(model_deployment(body))
    assert any(fragment in e for e in errors), errors
    with pytest.raises(SpecError):
        parse_spec(body)
