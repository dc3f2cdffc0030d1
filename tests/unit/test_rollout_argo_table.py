"""Argo Rollouts' analysis table, ported where the semantics match.

Source: argoproj/argo-rollouts analysis/analysis_test.go, the TestAssessMetricStatus* cases
(and TestRunMeasurementsResetConsecutiveErrorCounter, TestAssessMetricFailureInconclusiveOrError,
TestAssessRunStatus) against `assessMetricStatus` in analysis/analysis.go. Argo judges one
AnalysisRun from its counters; here the same counters arise from feeding the verdict sequence
through `decide()` (one analysis per 30 s tick, one long step, a long deadline, so only the
limits can end the rollout). Argo's phases map to ours: Failed -> RolledBack (failureLimit),
Error -> Failed (AnalysisErrors), Running/Pending -> still Progressing at the same step.

Deliberate differences (not ported, or ported with our expectation):
- inconclusiveLimit (Argo default 0: the first inconclusive ends the run Inconclusive, which
  pauses the Rollout): we have no inconclusive count limit. `onInconclusive` decides: wait
  (default; bounded by progressDeadline), rollback, or pause (Argo's behaviour, at the first).
- consecutiveErrorLimit: Argo defaults to 4; ours is off unless set, and `errorLimit` (default
  3) is a total over the rollout that never resets, which is stricter.
- consecutiveSuccessLimit and count: no equivalent. A step's length is its pause, and it moves
  on only when the latest analysis passed (Argo's Count-reached case with inconclusive
  measurements maps to "the step does not move on").
- terminating with no measurements is Successful in Argo; here nothing but a person's promote
  request moves a step without a passing analysis.
- consecutiveFailureLimit has no Argo counterpart: a failure streak is ended only by a pass
  (inconclusive or error in between neither end nor extend it).
"""

from __future__ import annotations

import pytest

from modelrollout.rollout.verdict import overall
from tests.unit.test_rollout_machine import ANALYSIS, Sim, spec
from tests.unit.test_rollout_verdict import result


def run(verdicts, **analysis):
    """Feed `verdicts` (one per tick) to a rollout that only its limits can end."""
    steps = [{"setWeight": 10, "pause": "10h"}]
    s = Sim(spec(steps=steps, analysis={**ANALYSIS, **analysis}, progressDeadline="20h"), verdicts=verdicts)
    s.start()
    for _ in verdicts:
        if s.status.rollout.phase != "Progressing":
            break
        s.tick(30)
    return s.status.rollout


RUNNING = "Progressing"

# (Argo test, verdicts, our analysis settings, expected phase)
TABLE = [
    # TestAssessMetricStatusFailureLimit: failed 3 > failureLimit 2 -> Failed; limit 3 -> Running
    ("FailureLimit/over", ["fail"] * 3, {"failureLimit": 2}, "RolledBack"),
    ("FailureLimit/at", ["fail"] * 3, {"failureLimit": 3}, RUNNING),
    # TestAssessMetricFailureInconclusiveOrError: failed 1 > default failureLimit 0 -> Failed
    ("FailureInconclusiveOrError/failed", ["fail"], {}, "RolledBack"),
    # ... inconclusive 1 > default inconclusiveLimit 0 -> Inconclusive (the run ends): ours only
    # with onInconclusive: rollback; by default we wait (difference, see the docstring)
    (
        "FailureInconclusiveOrError/inconclusive-rollback",
        ["inconclusive"],
        {"onInconclusive": "rollback"},
        "Failed",
    ),
    (
        "FailureInconclusiveOrError/inconclusive-pause",
        ["inconclusive"],
        {"onInconclusive": "pause"},
        "Paused",
    ),
    ("FailureInconclusiveOrError/inconclusive-wait", ["inconclusive"], {}, RUNNING),
    # TestAssessMetricStatusInconclusiveLimit: inconclusive 3 > 2 -> Inconclusive; 3 -> Running
    # (ours: no count limit; waiting is bounded by the deadline instead)
    ("InconclusiveLimit/wait", ["inconclusive"] * 3, {}, RUNNING),
    # TestAssessMetricStatusConsecutiveErrors: consecutiveError 5 > limit 4 -> Error; 4 -> Running
    ("ConsecutiveErrors/over", ["error"] * 5, {"consecutiveErrorLimit": 4, "errorLimit": 100}, "Failed"),
    ("ConsecutiveErrors/at", ["error"] * 4, {"consecutiveErrorLimit": 4, "errorLimit": 100}, RUNNING),
    # TestAssessMetricFailureInconclusiveOrError: consecutiveError 5 > default 4 -> Error;
    # ours by default: errorLimit 3 (total) fails at the 4th error already (difference)
    ("FailureInconclusiveOrError/errors-default", ["error"] * 4, {}, "Failed"),
    # TestRunMeasurementsResetConsecutiveErrorCounter: any completed non-error measurement
    # resets the streak; an error extends it
    (
        "ResetConsecutiveErrors/pass",
        ["error"] * 4 + ["pass"] + ["error"] * 4,
        {"consecutiveErrorLimit": 4, "errorLimit": 100},
        RUNNING,
    ),
    (
        "ResetConsecutiveErrors/fail",
        ["error"] * 4 + ["fail"] + ["error"] * 4,
        {"consecutiveErrorLimit": 4, "errorLimit": 100, "failureLimit": 1},
        RUNNING,
    ),
    (
        "ResetConsecutiveErrors/inconclusive",
        ["error"] * 4 + ["inconclusive"] + ["error"] * 4,
        {"consecutiveErrorLimit": 4, "errorLimit": 100},
        RUNNING,
    ),
    (
        "ResetConsecutiveErrors/error",
        ["error"] * 5,
        {"consecutiveErrorLimit": 4, "errorLimit": 100},
        "Failed",
    ),
    # TestAssessMetricStatusFailureLimitAndConsecutiveSuccessLimit, failureLimit half:
    # failed 5 > 4 -> Failed whatever the successes; failed 3 -> not failed
    ("FailureLimitWithSuccesses/over", ["pass", "fail"] * 5, {"failureLimit": 4}, "RolledBack"),
    (
        "FailureLimitWithSuccesses/under",
        ["pass", "fail", "pass", "fail", "pass", "fail", "pass"],
        {"failureLimit": 4},
        RUNNING,
    ),
]


@pytest.mark.parametrize(("verdicts", "analysis", "phase"), [t[1:] for t in TABLE], ids=[t[0] for t in TABLE])
def test_argo_assess_metric_status_table(verdicts, analysis, phase):
    r = run(verdicts, **analysis)
    assert r.phase == phase, (r.message, r.counts)


def test_argo_consecutive_error_counter_is_reset_by_any_non_error():
    """TestRunMeasurementsResetConsecutiveErrorCounter: after 4 errors, an error makes the
    streak 5 (and the total 5); anything else makes it 0 (and the total stays 4)."""
    limits = {"consecutiveErrorLimit": 10, "errorLimit": 100, "failureLimit": 10}
    for verdict in ("pass", "fail", "inconclusive", "error"):
        counts = run(["error"] * 4 + [verdict], **limits).counts
        if verdict == "error":
            assert (counts.consecutive_errors, counts.errors) == (5, 5)
        else:
            assert (counts.consecutive_errors, counts.errors) == (0, 4), verdict


def test_argo_no_measurements_is_pending_not_a_pass():
    """TestAssessMetricStatusNoMeasurements: Pending while not terminating. Ours: before its
    first analysis a step never moves on (and never passes on being stopped)."""
    s = Sim(spec(steps=[{"setWeight": 10, "pause": "10s"}]))
    s.start()
    s.tick(20)  # the 10 s pause is over, but the first analysis is due at 30 s
    assert s.status.rollout.step == 0 and s.analyses == 0 and s.status.rollout.step_verdict is None


def test_argo_count_reached_with_inconclusive_measurements_does_not_succeed():
    """TestAssessMetricStatusCountReached: 10 of 10 successful -> Successful; 5 successful and
    5 inconclusive -> Inconclusive. Ours: a step of 10 analyses moves on only after a pass."""
    steps = [{"setWeight": 10, "pause": "5m"}, {"setWeight": 50, "pause": "1h"}]
    passed = Sim(spec(steps=steps), verdicts=["pass"] * 10)
    passed.start()
    passed.run(300)
    assert passed.status.rollout.step == 1
    mixed = Sim(spec(steps=steps), verdicts=["pass"] * 5 + ["inconclusive"] * 5)
    mixed.start()
    mixed.run(300)
    assert mixed.status.rollout.step == 0 and mixed.status.rollout.step_verdict == "inconclusive"


@pytest.mark.parametrize(
    ("verdicts", "worst"),
    [
        # TestAssessRunStatus: the worst completed metric decides; Argo's order is
        # Successful < Running < Pending < Inconclusive < Error < Failed
        (["pass", "fail"], "fail"),
        (["pass", "inconclusive"], "inconclusive"),
        (["inconclusive", "error"], "error"),
        (["error", "fail"], "fail"),
        (["pass", "pass"], "pass"),
    ],
)
def test_argo_worst_metric_decides_the_run(verdicts, worst):
    assert overall([result(v) for v in verdicts]) == worst
