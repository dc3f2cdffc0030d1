"""Manual requests (promote, abort, retry) against every phase: each acts on the rollout that
exists when it is made, or is consumed and refused with an event; never kept for later."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from modelrollout.api import conditions as R
from modelrollout.api.spec import parse_spec
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.rollout.decision import Cluster, Requests
from modelrollout.rollout.machine import decide
from modelrollout.rollout.requests import parse

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
READY = Cluster(canary_ready=True, stable_ready=True, stable_version="1.0.0", weight_settled=True)


def spec(version="2.0.0", **rollout):
    rollout.setdefault("steps", [{"setWeight": 10, "pause": "10m"}, {"setWeight": 50, "pause": "10m"}])
    rollout.setdefault("scaleDownDelay", "0s")
    return parse_spec(
        {"model": {"name": "iris", "version": version, "image": f"reg/iris:{version}"}, "rollout": rollout}
    )


FAILING_ANALYSIS = {
    "prometheus": {"address": "http://127.0.0.1:9090"},
    "interval": "30s",
    "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
}


class Driver:
    """decide() as the controller calls it: status in, status out, the clock moving forward."""

    def __init__(self, spec, status=None, cluster=READY):
        self.spec, self.cluster, self.now = spec, cluster, T0
        self.status = status if status is not None else serving_v1()
        self.events: list[tuple[str, str]] = []

    def tick(self, seconds=1.0, **requests):
        self.now += timedelta(seconds=seconds)
        failing = [
            CheckResult(metric="p99", query="q", value=9.0, verdict="fail", message="p99 = 9", time="t")
        ]
        d = decide(
            self.spec,
            self.status,
            self.cluster,
            requests=Requests(**requests),
            analyze=lambda: failing,
            now=self.now,
        )
        self.cluster = Cluster(**{**self.cluster.__dict__, "observed_weight": d.weight})
        self.status = self.status.model_copy(update=d.status_fields())
        self.events += [(e.reason, e.message) for e in d.events]
        return d

    def result(self, kind):
        return next(r for r in self.status.handled_requests.results if r.kind == kind)

    @property
    def phase(self):
        return self.status.rollout.phase if self.status.rollout else None


def serving_v1() -> ModelDeploymentStatus:
    return ModelDeploymentStatus(stable_version="1.0.0", stable_image="reg/iris:1.0.0", phase="Ready")


def progressing() -> Driver:
    d = Driver(spec())
    d.tick()
    d.tick()
    assert d.phase == "Progressing"
    return d


def paused() -> Driver:
    d = progressing()
    d.spec = spec(paused=True)
    d.tick()
    assert d.phase == "Paused"
    return d


def promoting() -> Driver:
    d = progressing()
    d.tick(promote="p0")
    d.cluster = Cluster(**{**d.cluster.__dict__, "stable_version": "1.0.0"})
    d.tick()
    assert d.phase == "Promoting"
    return d


def succeeded() -> Driver:
    d = promoting()
    d.cluster = Cluster(**{**d.cluster.__dict__, "stable_version": "2.0.0", "stable_ready": True})
    d.tick()
    assert d.phase == "Succeeded" and d.status.stable_version == "2.0.0"
    return d


def rolled_back() -> Driver:
    d = progressing()
    d.tick(abort="a0")
    assert d.phase == "RolledBack"
    return d


def failed() -> Driver:
    d = Driver(spec(analysis=FAILING_ANALYSIS, progressDeadline="1m"))
    d.tick()
    d.tick()
    d.cluster = Cluster(**{**d.cluster.__dict__, "canary_ready": False})
    d.tick(1)  # the canary pods are gone: a stall opens
    d.tick(120)  # and outlasts the deadline
    assert d.phase == "Failed"
    return d


def ready() -> Driver:
    d = Driver(spec("1.0.0"))
    d.tick()
    assert d.phase is None
    return d


def first_version_starting() -> Driver:
    d = Driver(spec("1.0.0"), status=ModelDeploymentStatus(), cluster=Cluster())
    d.tick()
    return d


PHASES = {
    "first-version-starting": first_version_starting,
    "ready": ready,
    "progressing": progressing,
    "paused": paused,
    "promoting": promoting,
    "succeeded": succeeded,
    "rolled-back": rolled_back,
    "failed": failed,
}

# (phase, request) -> accepted?
ACTS = {
    ("progressing", "promote"): True,
    ("paused", "promote"): True,
    ("progressing", "abort"): True,
    ("paused", "abort"): True,
    ("promoting", "abort"): True,
    ("rolled-back", "retry"): True,
    ("failed", "retry"): True,
}


@pytest.mark.parametrize("kind", ["promote", "abort", "retry"])
@pytest.mark.parametrize("phase", list(PHASES))
def test_every_request_in_every_phase_is_handled_once(phase, kind):
    d = PHASES[phase]()
    before = len(d.events)
    d.tick(**{kind: "req-1"})
    result = d.result(kind)
    accepted = ACTS.get((phase, kind), False)
    assert getattr(d.status.handled_requests, kind) == "req-1"  # consumed either way
    assert result.outcome == ("Accepted" if accepted else "Refused"), result.message
    refused_events = [e for e in d.events[before:] if e[0] == R.REFUSED[kind]]
    assert bool(refused_events) != accepted
    if not accepted:
        assert refused_events[0][1] == result.message and result.message
    # the same value never acts again, whatever happens next
    events = len(d.events)
    d.tick(**{kind: "req-1"})
    assert [e for e in d.events[events:] if e[0] in (R.REFUSED[kind], R.PROMOTE_REQUESTED, R.ABORTED)] == []


def test_stale_promote_does_not_skip_the_next_rollout():
    """The bug found on a real cluster: promote while the first version was starting, then a
    new version -> it went to Succeeded in seconds with every step and analysis skipped."""
    d = first_version_starting()
    d.tick(promote="early")
    assert d.result("promote").outcome == "Refused"
    assert "no rollout" in d.result("promote").message
    d.status = d.status.model_copy(update={"stable_version": "1.0.0", "stable_image": "reg/iris:1.0.0"})
    d.cluster = READY
    d.spec = spec("2.0.0")
    for _ in range(30):  # the annotation is still on the object, as with GitOps
        d.tick(10, promote="early")
    assert d.phase == "Progressing" and d.status.rollout.step == 0


def test_promote_arriving_with_the_new_version_is_not_for_it():
    d = ready()
    d.spec = spec("2.0.0")
    d.tick(promote="gitops-1")
    assert d.phase == "Progressing"
    assert (
        d.result("promote").outcome == "Refused" and "arrived with the start" in d.result("promote").message
    )


def test_promote_targeted_at_the_new_version_acts_even_in_the_same_change():
    d = ready()
    d.spec = spec("2.0.0")
    d.tick(promote="gitops-1@2.0.0")
    assert d.phase == "Promoting" and d.result("promote").outcome == "Accepted"


def test_promote_for_a_superseded_version_is_refused():
    d = progressing()
    d.spec = spec("3.0.0")
    d.tick()
    d.tick(promote="cli-1@2.0.0")
    assert d.phase == "Progressing" and d.status.rollout.canary_version == "3.0.0"
    assert d.result("promote").message == "promote was for 2.0.0; the rollout in progress is 3.0.0"


def test_abort_wins_over_promote_in_the_same_reconcile():
    d = progressing()
    d.tick(promote="p1", abort="a1")
    assert d.phase == "RolledBack"
    assert d.result("abort").outcome == "Accepted" and d.result("promote").outcome == "Refused"


def test_retry_then_the_rollout_starts_again():
    d = rolled_back()
    d.tick(retry="r1@2.0.0")
    assert d.result("retry").outcome == "Accepted"
    assert d.phase == "Progressing" and d.status.rejected_version is None


def test_retry_for_another_version_is_refused():
    d = rolled_back()
    d.tick(retry="r1@9.9.9")
    assert d.result("retry").outcome == "Refused" and d.status.rejected_version is not None


@pytest.mark.parametrize(
    ("value", "target"),
    [("t1", None), ("t1@2.0.0", "2.0.0"), ("@2.0.0", None), ("t1@", None), ("a@b@1.0", "1.0")],
)
def test_request_values_name_their_target_version(value, target):
    assert parse("promote", value).target == target


# --- issue 13: promote advances one step (Argo's promote), --full skips the rest --------------


@pytest.mark.parametrize(
    ("value", "full", "step", "malformed"),
    [
        ("t1@2.0.0", True, None, None),  # written before markers existed: a full promotion, as it was
        ("t1@2.0.0#full", True, None, None),
        ("t1@2.0.0#step=2", False, 2, None),
        ("t1@2.0.0#step", False, None, None),
        ("t1#step=1", False, 1, None),
        ("t1@2.0.0#steps", True, None, "unknown promote marker #steps (use #step=N or #full)"),
        ("t1@2.0.0#step=0", True, None, "unknown promote marker #step=0 (use #step=N or #full)"),
    ],
)
def test_promote_values_say_one_step_or_full(value, full, step, malformed):
    request = parse("promote", value)
    assert (request.full, request.step, request.malformed) == (full, step, malformed)
    assert request.target == (None if value.startswith("t1#") else "2.0.0")


def test_the_cli_writes_markers_the_operator_reads():
    from modelrollout.rollout.requests import value

    assert parse("promote", value("tok", "2.0.0", full=False, step=3)) == parse("promote", "tok@2.0.0#step=3")
    assert value("tok", "2.0.0", full=True) == "tok@2.0.0#full"


def test_promote_advances_exactly_one_step():
    d = progressing()
    assert d.status.rollout.step == 0
    d.tick(promote="c1@2.0.0#step=1")
    assert d.result("promote").outcome == "Accepted" and "from step 1" in d.result("promote").message
    assert d.phase == "Progressing" and d.status.rollout.step == 1
    assert d.status.rollout.desired_weight == 50  # the second step's weight, not a promotion
    assert any(reason == R.PROMOTE_REQUESTED and "one step" in msg for reason, msg in d.events)
    assert d.status.rollout.message == "step 1 promoted by request; moving to 50%"  # not "passed"
    d.tick()
    d.tick(promote="c2@2.0.0#step=2")  # from the last step: promotion
    assert d.phase == "Promoting"
    assert d.status.rollout.message == "step 2 promoted by request; promoting 2.0.0"


def test_a_one_step_promote_made_at_an_earlier_step_is_refused():
    d = progressing()
    d.tick(promote="c1@2.0.0#step=1")
    d.tick(promote="c2@2.0.0#step=1")  # someone else's promote, made while it was at step 1
    assert d.result("promote").outcome == "Refused"
    assert d.result("promote").message == "promote was for step 1; the rollout is at step 2 now"
    assert d.status.rollout.step == 1 and d.phase == "Progressing"


def test_promote_full_skips_every_remaining_step():
    d = progressing()
    d.tick(promote="c1@2.0.0#full")
    assert d.phase == "Promoting" and d.result("promote").outcome == "Accepted"
    assert d.result("promote").message == "promote of 2.0.0, every remaining step skipped (full)"


def test_a_value_from_before_markers_still_promotes_fully():
    """Values kept in Git, or written by hand with the old instructions, meant a full promotion;
    they keep meaning it (the README documents the choice)."""
    d = progressing()
    d.tick(promote="from-git@2.0.0")
    assert d.phase == "Promoting"


def test_an_unknown_marker_is_refused_not_guessed():
    d = progressing()
    d.tick(promote="c1@2.0.0#next")
    assert (
        d.result("promote").outcome == "Refused" and "unknown promote marker" in d.result("promote").message
    )
    d.tick(abort="a1@2.0.0#full")
    assert d.result("abort").outcome == "Refused" and d.result("abort").message == "abort takes no '#' marker"
    assert d.phase == "Progressing" and d.status.rollout.step == 0


def test_promoting_a_paused_rollout_one_step_keeps_it_paused_at_the_next_step():
    d = paused()
    d.tick(promote="c1@2.0.0#step=1")
    assert d.result("promote").outcome == "Accepted"
    assert d.status.rollout.step == 1
    d.tick()
    assert d.phase == "Paused"  # spec.rollout.paused still holds it


@pytest.mark.parametrize("phase", ["rolled-back", "succeeded", "failed"])
def test_a_finished_rollout_reports_no_traffic_on_the_canary(phase):
    d = PHASES[phase]()
    assert d.status.rollout.desired_weight == 0 and d.status.rollout.observed_weight == 0
