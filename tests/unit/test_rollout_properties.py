"""Properties of the rollout core over thousands of random sequences (hypothesis).

A pure driver plays the controller: random analysis answers (good values, breaches, NaN,
+/-Inf, no data, too few samples, provider errors) go through the operator's own analysis
(`analysis.run` -> `assess`) into `decide()`, with an injected clock that moves by random
gaps, and a person who pauses, resumes, retries and loses canary pods at random. An oracle
written apart from the code says which answers are good evidence. Asserted on every sequence:

- current evidence: a step moves on (and the last one promotes) only when the latest analysis
  at that step (since it was entered or resumed) was good evidence by the oracle;
- the deadline: no analysis is taken (so nothing passes or promotes) once the evidence has
  been bad for longer than progressDeadline without a pause in between;
- every sequence ends: promoted, rolled back or failed within a bound of active (unpaused)
  time derived from the spec, or held for a person by onInconclusive: pause;
- the verdict of a run is pass exactly when the oracle says the answers are good evidence.

Deterministic in CI (derandomize, no example database); MODELROLLOUT_PROPERTY_EXAMPLES scales it.
"""

from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta

from hypothesis import HealthCheck, given, settings
from hypothesis import event as note
from hypothesis import strategies as st
from pydantic import ValidationError

from modelrollout.api.spec import ModelDeploymentSpec, parse_spec
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.metrics.provider import ProviderError
from modelrollout.rollout import analysis, templates
from modelrollout.rollout.machine import Cluster, Requests, decide
from modelrollout.rollout.steps import effective_steps
from modelrollout.rollout.verdict import overall

EXAMPLES = int(os.environ.get("MODELROLLOUT_PROPERTY_EXAMPLES", "2000"))
T0 = datetime(2026, 11, 21, 12, 0, tzinfo=UTC)
INTERVAL_S = 10.0
MAX_GAP_S = 30.0
NAN, INF = math.nan, math.inf
ENDED = {"Promoting", "Succeeded", "RolledBack", "Failed"}

# The checks: a relative latency bound (with an absolute one), accuracy with its feedback
# samples, and a custom query with its own samples query and minimum.
METRICS = [
    {"name": "p99", "template": "latency-p99", "max": 0.5, "relativeToStable": {"maxRatio": 1.5}},
    {"name": "acc", "template": "accuracy", "min": 0.8},
    {
        "name": "custom",
        "template": "custom",
        "query": 'sum(rate(x_total{track="{{track}}"}[{{interval}}]))',
        "samplesQuery": 'sum(increase(x_count{track="{{track}}"}[{{interval}}]))',
        "minSamples": 10,
        "max": 100,
    },
]
MIN_SAMPLES = {"p99": 20, "acc": 20, "custom": 10}


# --- the oracle: good evidence, stated apart from the code ----------------------------------------


@dataclass(frozen=True)
class Answer:
    """What the provider says for one check in one analysis."""

    value: float | None
    stable: float | None
    samples: float | None
    error: bool = False


def finite(x: float | None) -> bool:
    return x is not None and math.isfinite(x)


def good(name: str, a: Answer) -> bool:
    """Good evidence: reachable, enough finite samples, finite values within every bound."""
    if a.error or not finite(a.value) or not finite(a.samples) or a.samples < MIN_SAMPLES[name]:
        return False
    if name == "p99":
        return a.value <= 0.5 and finite(a.stable) and a.value <= 1.5 * a.stable
    if name == "acc":
        return a.value >= 0.8
    return a.value <= 100


# --- strategies ------------------------------------------------------------------------------------

VALUES = [0.1, 0.4, 0.6, 0.85, 0.95, 50.0, 150.0, NAN, INF, -INF, None]
STABLES = [0.1, 0.3, 1.0, NAN, INF, -INF, None]
SAMPLES = [None, 0.0, 5.0, 9.5, 10.0, 19.5, 19.9999999, 20.0, 100.0, NAN, INF]
GOOD = {
    "p99": st.builds(Answer, st.sampled_from([0.1, 0.4]), st.sampled_from([0.3, 1.0]), st.just(100.0)),
    "acc": st.builds(Answer, st.sampled_from([0.85, 0.95]), st.none(), st.sampled_from([20.0, 100.0])),
    "custom": st.builds(Answer, st.sampled_from([0.1, 50.0]), st.none(), st.sampled_from([10.0, 100.0])),
}
ANY = st.builds(
    Answer,
    st.sampled_from(VALUES),
    st.sampled_from(STABLES),
    st.sampled_from(SAMPLES),
    st.sampled_from([False] * 5 + [True]),
)
RUN = st.one_of(
    st.fixed_dictionaries(GOOD),  # good evidence, so that rollouts get somewhere
    st.fixed_dictionaries({m["name"]: ANY for m in METRICS}),
)
TICK = st.tuples(
    st.sampled_from([1.0, 3.0, 5.0, 10.0, 20.0, MAX_GAP_S]),
    st.sampled_from([None] * 12 + ["pause", "resume", "retry", "unready"]),
)


@st.composite
def specs(draw) -> tuple[ModelDeploymentSpec, ModelDeploymentSpec]:
    """(spec, the same spec with paused: true)."""
    pauses = draw(st.lists(st.sampled_from([None, "5s", "20s", "45s"]), min_size=1, max_size=3))
    steps = [{"setWeight": 10 + 20 * i} | ({"pause": p} if p else {}) for i, p in enumerate(pauses)]
    analysis_spec = {
        "prometheus": {"address": "http://127.0.0.1:9090"},
        "interval": f"{INTERVAL_S:g}s",
        "minSamples": 20,
        "minLabels": 20,  # the gate of the ground-truth check (acc): MIN_SAMPLES["acc"]
        "failureLimit": draw(st.integers(0, 2)),
        "errorLimit": draw(st.integers(0, 3)),
        "onInconclusive": draw(st.sampled_from(["wait", "rollback", "pause"])),
        "metrics": METRICS,
    }
    for key, options in (("consecutiveFailureLimit", [1, 2]), ("consecutiveErrorLimit", [0, 1, 2])):
        if (limit := draw(st.sampled_from([None, *options]))) is not None:
            analysis_spec[key] = limit
    rollout = {
        "steps": steps,
        "analysis": analysis_spec,
        "progressDeadline": draw(st.sampled_from(["30s", "1m", "2m"])),
        "scaleDownDelay": "0s",
    }
    model = {"name": "iris", "version": "2.0.0", "image": "reg/iris:2.0.0"}
    return (
        parse_spec({"model": model, "rollout": rollout}),
        parse_spec({"model": model, "rollout": {**rollout, "paused": True}}),
    )


# --- the driver ------------------------------------------------------------------------------------


def _queries() -> dict[str, tuple[str, str]]:
    """Rendered query -> (check, role), as `analysis.run` will send them."""
    common = {"namespace": "default", "name": "iris", "interval": f"{INTERVAL_S:g}s"}
    canary = analysis.variables(track="canary", version="2.0.0", **common)
    stable = analysis.variables(track="stable", version="1.0.0", **common)
    out = {}
    for m in METRICS:
        query = templates.query_for(m["template"], m.get("query"))
        samples = m.get("samplesQuery") or templates.samples_query_for(m["template"])
        out[templates.render(query, canary)] = (m["name"], "value")
        out[templates.render(query, stable)] = (m["name"], "stable")
        out[templates.render(samples, canary)] = (m["name"], "samples")
    assert len(out) == 3 * len(METRICS), "every query must be told apart"
    return out


QUERIES = _queries()


class Provider:
    def __init__(self, run: dict[str, Answer]) -> None:
        self.run = run

    def query(self, promql: str) -> float | None:
        if promql not in QUERIES and "modelrollout_ground_truth_predictions" in promql:
            return None  # label coverage: reported beside a verdict, never judged
        name, role = QUERIES[promql]
        answer = self.run[name]
        if answer.error:
            raise ProviderError("connection refused")
        return getattr(answer, role)


@dataclass
class World:
    """The controller, the cluster and a person, around `decide()`; and what the oracle saw."""

    spec: ModelDeploymentSpec
    paused_spec: ModelDeploymentSpec
    runs: list[dict[str, Answer]]
    now: datetime = T0
    status: ModelDeploymentStatus = field(
        default_factory=lambda: ModelDeploymentStatus(stable_version="1.0.0", stable_image="reg/iris:1.0.0")
    )
    paused: bool = False
    weight: int = 0
    taken: list[tuple[datetime, bool, list[CheckResult]]] = field(default_factory=list)
    analyses: int = 0
    requeue: float | None = None

    def analyze(self) -> list[CheckResult]:
        run = self.runs[self.analyses % len(self.runs)]
        self.analyses += 1
        results = analysis.run(
            self.spec.rollout.analysis,
            Provider(run),
            namespace="default",
            name="iris",
            canary_version="2.0.0",
            stable_version="1.0.0",
            now=self.now,
        )
        self.taken.append((self.now, all(good(n, a) for n, a in run.items()), results))
        return results

    def tick(self, gap: float, event: str | None, retry_token: str | None) -> None:
        self.now += timedelta(seconds=gap)
        if event in ("pause", "resume"):
            self.paused = event == "pause"
        spec = self.paused_spec if self.paused else self.spec
        cluster = Cluster(
            canary_ready=event != "unready",
            stable_ready=True,
            stable_version="1.0.0",
            weight_settled=True,
            observed_weight=self.weight,
        )
        d = decide(
            spec,
            self.status,
            cluster,
            requests=Requests(retry=retry_token),
            analyze=self.analyze,
            now=self.now,
        )
        self.weight, self.requeue = d.weight, d.requeue_after
        self.status = self.status.model_copy(update=d.status_fields())


def active_bound(spec: ModelDeploymentSpec) -> float:
    """Unpaused time within which any rollout of `spec` ends, whatever the evidence: per step
    its hold (at least one interval), one deadline of bad evidence, and a few late ticks."""
    deadline = analysis_deadline(spec)
    return sum(
        max(s.pause_seconds, INTERVAL_S) + deadline + 6 * MAX_GAP_S for s in effective_steps(spec.rollout)
    )


def analysis_deadline(spec: ModelDeploymentSpec) -> float:
    from modelrollout.api.base import parse_duration

    return parse_duration(spec.rollout.progress_deadline)


@dataclass
class Oracle:
    """Per step, the latest analysis since the step was entered or resumed; and since when the
    evidence has been bad (None while it is good or not yet taken)."""

    latest: tuple[datetime, bool] | None = None
    bad_since: datetime | None = None

    def restart(self) -> None:
        self.latest, self.bad_since = None, None


def check_tick(world: World, oracle: Oracle, before, taken_before: int, deadline: float) -> None:
    after = world.status.rollout
    if before is not None and before.phase == "Paused" and after.phase != "Paused":
        oracle.restart()  # a resume: the step's hold and its evidence start afresh
    for at, was_good, results in world.taken[taken_before:]:
        assert (overall(results) == "pass") == was_good, results
        assert oracle.bad_since is None or (at - oracle.bad_since).total_seconds() <= deadline, (
            f"an analysis at {at} after {oracle.bad_since} of bad evidence (deadline {deadline}s)"
        )
        oracle.latest = (at, was_good)
        oracle.bad_since = None if was_good else (oracle.bad_since or at)
    moved = before is not None and (after.step > before.step or (after.phase == "Promoting" != before.phase))
    if moved:
        assert oracle.latest is not None and oracle.latest[1], (
            f"step {before.step + 1} moved on without a good latest analysis: {oracle.latest}"
        )
        oracle.restart()


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    derandomize=True,
    database=None,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
@given(specs(), st.lists(RUN, min_size=1, max_size=12), st.lists(TICK, min_size=1, max_size=40))
def test_no_promotion_without_current_evidence_and_every_rollout_ends(spec_pair, runs, ticks):
    spec, paused_spec = spec_pair
    world = World(spec=spec, paused_spec=paused_spec, runs=runs)
    oracle = Oracle()
    deadline, bound = analysis_deadline(spec), active_bound(spec)
    active = 0.0
    for index in range(2000):
        scripted = index < len(ticks)
        gap, event = (
            ticks[index] if scripted else (_tail_gap(world), "resume" if index == len(ticks) else None)
        )
        before = world.status.rollout
        if before is not None and before.phase != "Paused":
            active += gap
        token = f"r{index}" if event == "retry" else None
        taken = len(world.taken)
        world.tick(gap, event, token)
        check_tick(world, oracle, before, taken, deadline)
        r = world.status.rollout
        if before is not None and before.phase == "Paused" and r.phase != "Paused":
            active = 0.0
        if r.phase in ENDED or (not scripted and r.phase == "Paused" and r.analysis_hold):
            break
        assert active <= bound, f"still {r.phase} at step {r.step} after {active}s active (bound {bound}s)"
    else:
        raise AssertionError("the driver ran out of ticks")
    note(f"ended {r.phase} at step {r.step + 1}/{len(effective_steps(spec.rollout))}")
    counts = r.counts
    assert counts.passes + counts.failures + counts.errors + counts.inconclusives == world.analyses
    if r.phase in ("RolledBack", "Failed"):
        assert world.weight == 0


def _tail_gap(world: World) -> float:
    """After the script the controller ticks when the machine asks (at least every resync)."""
    return min(max(world.requeue or MAX_GAP_S, 1.0), MAX_GAP_S)


# --- one check, directly ---------------------------------------------------------------------------

ANY_FLOAT = st.one_of(
    st.none(), st.floats(allow_nan=True, allow_infinity=True), st.sampled_from([NAN, INF, -INF])
)


@settings(max_examples=EXAMPLES, deadline=None, derandomize=True, database=None)
@given(
    value=ANY_FLOAT,
    stable=ANY_FLOAT,
    samples=ANY_FLOAT,
    min_samples=st.integers(0, 50),
    bounds=st.fixed_dictionaries(
        {},
        optional={
            "min": st.floats(-10, 10),
            "max": st.floats(-10, 10),
            "relativeToStable": st.fixed_dictionaries(
                {},
                optional={
                    "maxRatio": st.floats(0.01, 10),
                    "maxIncrease": st.floats(0, 10),
                    "maxDecrease": st.floats(0, 10),
                },
            ),
        },
    ),
)
def test_a_check_passes_only_on_finite_values_within_known_bounds(
    value, stable, samples, min_samples, bounds
):
    from modelrollout.api.checks import MetricCheck
    from modelrollout.rollout.verdict import assess

    try:
        check = MetricCheck.model_validate({"name": "m", "template": "latency-p99", **bounds})
    except ValidationError:
        return  # a check the API refuses (no bound, min above max, an empty relativeToStable)
    verdict, _, message = assess(
        check, value=value, stable_value=stable, samples=samples, min_samples=min_samples
    )
    gate_ok = min_samples == 0 or (finite(samples) and samples >= min_samples)
    absolute_ok = (
        finite(value)
        and (check.min is None or value >= check.min)
        and (check.max is None or value <= check.max)
    )
    rel = check.relative_to_stable
    relative = []
    if rel is not None and finite(stable):
        for op, bound in (
            ("<=", None if rel.max_ratio is None else stable * rel.max_ratio),
            ("<=", None if rel.max_increase is None else stable + rel.max_increase),
            (">=", None if rel.max_decrease is None else stable - rel.max_decrease),
        ):
            if bound is not None:
                relative.append((op, bound))
    relative_known = rel is None or (finite(stable) and all(math.isfinite(b) for _, b in relative))
    relative_ok = relative_known and all(
        (value >= b if op == ">=" else value <= b) for op, b in relative if finite(value)
    )
    if verdict == "pass":
        assert gate_ok and absolute_ok and relative_ok, message
    if verdict == "fail":
        assert gate_ok and finite(value), message
        assert not absolute_ok or (relative_known and not relative_ok), message
    if gate_ok and finite(value) and absolute_ok and relative_ok:
        assert verdict == "pass", message
