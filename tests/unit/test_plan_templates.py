"""A rollout whose analysis comes from templates, through the pure plan: a bad reference is a
Degraded condition (AnalysisTemplateInvalid) and a Warning event, and the rollout waits (never
a silent pass, never a deadline failure) until the reference is fixed; which reconciles read
the templates at all."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

from modelrollout.api import conditions as C
from modelrollout.api.status import CheckResult
from modelrollout.reconcile.evidence import resolve_analysis
from modelrollout.reconcile.observe import templates_needed
from modelrollout.reconcile.observed import Observed
from modelrollout.reconcile.plan import plan
from tests.support.samples import md
from tests.unit.test_plan_rollout import NOW, ready_canary, v1_serving

KEY = ("ModelAnalysisTemplate", "slo")
SLO = {
    "apiVersion": "modelrollout.io/v1alpha1",
    "kind": "ModelAnalysisTemplate",
    "metadata": {"name": "slo", "namespace": "default", "generation": 2},
    "spec": {
        "prometheus": {"address": "http://prometheus:9090"},
        "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
    },
}


def v2(**analysis):
    return md(
        {
            "model": {"name": "iris", "version": "2.0.0", "image": "example.com/iris:2.0.0"},
            "rollout": {
                "steps": [{"setWeight": 25, "pause": "30s"}, {"setWeight": 50, "pause": "30s"}],
                "progressDeadline": "2m",
                "analysis": {"interval": "10s", "templates": [{"name": "slo"}], **analysis},
            },
        }
    )


def never(**_):
    raise AssertionError("no analysis may run without a valid analysis")


def step(m, observed, status, now, analyze=never):
    resolved, problem = resolve_analysis(m, observed)
    return plan(m, observed, status, now, analyze=analyze, resolved=resolved, analysis_problem=problem)


def test_a_missing_template_degrades_and_the_rollout_waits_outside_the_deadline():
    observed, status = v1_serving()
    m = v2()
    observed = replace(
        Observed.of(stable=observed["stable"], service=observed["service"], canary=ready_canary(m, 1)),
        templates={KEY: None},
    )
    warnings = []
    for i in range(0, 600, 5):  # ten minutes: five times the progress deadline
        p = step(m, observed, status, NOW + timedelta(seconds=i))
        status = p.status
        warnings += [e for e in p.events if e.reason == C.ANALYSIS_TEMPLATE_INVALID]
    degraded = C.get_condition(status.conditions, C.DEGRADED)
    assert degraded.status == "True" and degraded.reason == C.ANALYSIS_TEMPLATE_INVALID
    assert "ModelAnalysisTemplate slo not found in namespace default" in degraded.message
    assert status.phase == "Degraded" and "slo not found" in status.message
    assert len(warnings) == 1 and warnings[0].type == "Warning"  # once, not every reconcile
    r = status.rollout
    assert r.phase == "Progressing" and r.step == 0 and r.analysis_blocked is not None
    assert r.counts.passes == 0 and status.stable_version == "1.0.0"  # no pass, no promotion, no failure
    assert p.requeue_after == 2.0  # it looks for the fix as often as a rollout polls

    # the template appears: the step starts afresh and is judged on the template's checks
    observed = replace(observed, templates={KEY: SLO})
    ran = []

    def analyze(only=None):
        ran.append(only)
        return [CheckResult(metric="p99", query="q", value=0.1, verdict="pass", time="t")]

    fixed_at = NOW + timedelta(seconds=600)
    p = step(m, observed, status, fixed_at, analyze)
    assert p.status.rollout.analysis_blocked is None and p.status.phase == "Progressing"
    assert C.get_condition(p.status.conditions, C.DEGRADED).status == "False"
    assert p.status.rollout.desired_weight == 25  # only now does the canary get traffic
    for i in range(1, 8):  # the weight settles, the step's hold starts, one interval later it is judged
        p = step(m, observed, p.status, fixed_at + timedelta(seconds=2 * i), analyze)
    assert p.status.rollout.step_started_at is not None and ran == [None]
    assert p.status.rollout.step_verdict == "pass"


def test_checks_record_the_template_they_came_from():
    observed, status = v1_serving()
    m = v2()
    observed = replace(
        Observed.of(stable=observed["stable"], service=observed["service"], canary=ready_canary(m, 1)),
        templates={KEY: SLO},
    )
    resolved, problem = resolve_analysis(m, observed)
    assert problem is None and resolved.sources["p99"].generation == 2


def test_a_template_read_error_is_reported_as_such():
    m = v2()
    observed = replace(Observed.of(), templates={}, template_errors={KEY: "403: forbidden"})
    assert resolve_analysis(m, observed) == (None, "cannot read ModelAnalysisTemplate slo: 403: forbidden")


def test_steady_objects_do_not_read_their_templates():
    observed, status = v1_serving()
    steady = md({"rollout": {"analysis": {"templates": [{"name": "slo"}]}}})  # version 1.0.0: no rollout
    seen = status.model_copy(update={"observed_generation": steady.generation})
    assert not templates_needed(steady, seen)
    assert templates_needed(steady, status.model_copy(update={"observed_generation": None}))  # a new spec
    invalid = C.set_condition(
        [],
        type=C.DEGRADED,
        status="True",
        reason=C.ANALYSIS_TEMPLATE_INVALID,
        message="m",
        generation=1,
        now=NOW,
    )
    assert templates_needed(steady, seen.model_copy(update={"conditions": invalid}))  # to see it fixed
    rolling = v2()
    assert templates_needed(rolling, status.model_copy(update={"observed_generation": rolling.generation}))
    inline = md(
        {
            "rollout": {
                "analysis": {"prometheus": {"address": "http://p:9090"}, "metrics": SLO["spec"]["metrics"]}
            }
        }
    )
    assert not templates_needed(inline, status)


def test_a_reference_broken_mid_step_holds_the_weight_and_restarts_the_step_when_fixed():
    from modelrollout.rollout.decision import Cluster, Requests
    from modelrollout.rollout.machine import decide
    from tests.unit.test_rollout_machine import Sim, spec

    sim = Sim(spec())
    sim.start()
    sim.tick(35)  # step 1 (10%) analysed once and passed
    assert sim.status.rollout.step_verdict == "pass" and sim.status.rollout.desired_weight == 10
    now = sim.now
    for minutes in range(1, 30):  # broken for half an hour (the deadline is 10m)
        d = decide(
            sim.spec,
            sim.status,
            sim.cluster,
            requests=Requests(),
            analyze=never,
            now=now + timedelta(minutes=minutes),
            analysis_blocked="ModelAnalysisTemplate slo not found",
        )
        sim.status = sim.status.model_copy(update=d.status_fields())
        assert d.weight == 10 and d.rollout.phase == "Progressing"  # held as it is
    assert d.rollout.analysis_blocked == "ModelAnalysisTemplate slo not found"
    fixed = now + timedelta(minutes=30)
    d = decide(
        sim.spec,
        sim.status,
        Cluster(**sim.cluster.__dict__),
        requests=Requests(),
        analyze=sim.analyze,
        now=fixed,
    )
    assert (
        d.rollout.analysis_blocked is None and d.rollout.step_verdict is None
    )  # earlier evidence is not current
    assert d.rollout.step_started_at == C.rfc3339(fixed) and d.rollout.step == 0
