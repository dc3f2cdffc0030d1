"""The bake after a promotion, end to end: labels that arrive late decide whether a promoted model stays.

Real processes, only Kubernetes replaced (``rollout_loop.py``): two stable pods of v1, two canary
pods of the candidate, and two stable pods of the candidate - the stable Deployment after the
promotion, started beforehand and idle until the loop rolls the stable track onto them (and back
onto v1 on a bake's rollback). Every pod logs to one shared store (PostgreSQL for the rollback,
SQLite for the success: one scenario each keeps the file under 90 s) and recomputes its
version's figures every 0.5 s; a real Prometheus scrapes them every second with a PodMonitor's
target labels. The load generator splits traffic by the decided weight over each track's pods and
keeps every label back: ground truth arrives late, so the canary is judged on latency and errors
only (as for fraud or churn labels) and the bake judges the promoted version's accuracy.

Once the bake has started, the labels of the candidate's predictions arrive in two parts: a few
through ``/feedback`` on another pod than the one that predicted - fewer than ``minLabels``, so the
bake waits (inconclusive, never a pass) - then the rest from a CSV with ``modelrollout-batch labels
import``, six hours "later" (``--now``). The degraded v3 (trained on shuffled labels) is then rolled
back to v1; the healthy v2 keeps passing until the bake ends Succeeded.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Iterator
from dataclasses import dataclass

import pytest

from modelrollout.api import conditions as R
from modelrollout.api.spec import parse_spec
from modelrollout.api.status import CheckResult
from modelrollout.runtime.store.factory import open_log_store
from tests.integration import late_labels
from tests.integration.bentoproc import (
    FEEDBACK_TOKEN,
    BentoServer,
    BentoSpec,
    ModelStore,
    start_bento,
    trained_store,
)
from tests.integration.bentoproc import ModelSpec as Trained
from tests.integration.loadgen import LoadGenerator
from tests.integration.postgres import PostgresUnavailable, find_bindir, running_postgres
from tests.integration.prometheus import PrometheusServer, ScrapeTarget, running_prometheus
from tests.integration.rollout_loop import RolloutLoop, ended, finished, track_labels
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

MIN_LABELS = 25
BY_FEEDBACK = 10  # < MIN_LABELS: the bake must wait for more
BY_IMPORT = 30
HOURS_LATER = 6
ACCURACY_MIN = 0.8
RATE_PER_S = 20.0
DEGRADED = Trained("v3", quality="degraded")  # trained on shuffled labels: accuracy ~0.3


def spec(prometheus_url: str, *, version: str, bake_duration: str):
    return parse_spec({
        "model": {"name": "iris-classifier", "version": version, "image": f"reg/iris:{version}"},
        "rollout": {
            "steps": [{"setWeight": 50, "pause": "3s"}],
            "progressDeadline": "30s",
            "analysis": {  # no labels yet: the canary is judged on what it shows at once
                "prometheus": {"address": prometheus_url},
                "interval": "3s",
                "minSamples": 5,
                "failureLimit": 1,  # one hiccup of a loaded 2-core machine is tolerated
                "metrics": [{"name": "latency-p99", "template": "latency-p99", "max": 1.0},
                            {"name": "error-rate", "template": "error-rate", "max": 0.05}],
            },
            "bake": {
                "duration": bake_duration,
                "interval": "2s",
                "minLabels": MIN_LABELS,
                "metrics": [{"name": "accuracy", "template": "accuracy", "min": ACCURACY_MIN}],
            },
        },
    })  # fmt: skip


@dataclass
class Deployment:
    store_url: str
    stable: list[BentoServer]  # v1
    canary: list[BentoServer]  # the candidate
    promoted: list[BentoServer]  # the candidate on the stable track
    prometheus: PrometheusServer

    @property
    def pods(self) -> list[BentoServer]:
        return [*self.stable, *self.canary, *self.promoted]

    def urls(self, servers: list[BentoServer]) -> list[str]:
        return [s.url for s in servers]


@pytest.fixture(scope="module")
def models(tmp_path_factory) -> ModelStore:
    return trained_store(tmp_path_factory.mktemp("bake-models"), [Trained("v1"), Trained("v2"), DEGRADED])


@contextlib.contextmanager
def deployment(kind: str, models: ModelStore, version: str, tmp_path) -> Iterator[Deployment]:
    """Two pods per track and version on one shared store of ``kind``, and Prometheus scraping
    them (started while they boot: its first targets take up to 5 s to appear)."""
    with contextlib.ExitStack() as stack:
        if kind == "postgres":
            try:
                find_bindir()
            except PostgresUnavailable as exc:
                pytest.skip(str(exc))
            url = stack.enter_context(running_postgres()).dsn
        else:
            url = f"sqlite:///{tmp_path}/truth.sqlite"
        env = {"MODELROLLOUT_GROUND_TRUTH_DSN": url, "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "0.5"}
        specs = [BentoSpec(models, "v1", env=env)] * 2 + [
            BentoSpec(models, version, track="canary", env=env)
        ] * 2
        specs += [BentoSpec(models, version, env=env)] * 2
        pods: list[BentoServer] = []
        stack.callback(lambda: [pod.stop() for pod in pods])
        for spec in specs:
            pods.append(start_bento(spec, workdir=tmp_path))
        targets = [ScrapeTarget(p.target, track_labels(p.spec.track, version=p.spec.version)) for p in pods]
        prom = stack.enter_context(running_prometheus(targets, workdir=tmp_path))
        for pod in pods:
            pod.wait_ready()
        prom.wait_targets_up()
        yield Deployment(url, pods[:2], pods[2:4], pods[4:], prom)


@dataclass
class Bake:
    loop: RolloutLoop
    load: LoadGenerator
    delivered: list[late_labels.Delivered]
    imported: dict
    waited: CheckResult  # the bake's check while only the feedback labels had arrived


def promote_then_bake(dep: Deployment, *, version: str, bake_duration: str, tmp_path) -> Bake:
    """Canary -> promotion -> bake, with the late labels delivered in the bake; returns once it ends."""
    prom = dep.prometheus
    with contextlib.ExitStack() as stack:
        load = stack.enter_context(
            LoadGenerator(stable_url=dep.urls(dep.stable), canary_url=dep.urls(dep.canary),
                          rate_per_s=RATE_PER_S, max_seconds=120, feedback_token=FEEDBACK_TOKEN)
        )  # fmt: skip
        load.hold_labels()
        stable_pods = {"v1": dep.urls(dep.stable), version: dep.urls(dep.promoted)}
        loop = RolloutLoop(spec(prom.url, version=version, bake_duration=bake_duration),
                           prometheus_url=prom.url, load=load, stable_pods=stable_pods)  # fmt: skip
        loop.run_until(lambda lp: lp.phase == "Baking" or finished(lp), timeout_s=40)
        assert loop.phase == "Baking", loop.status.rollout.message

        candidate_pods = dep.urls(dep.canary) + dep.urls(dep.promoted)
        held = wait_until(
            lambda: len(h := late_labels.predicted_by(load.held_labels(), candidate_pods)) >= BY_FEEDBACK + BY_IMPORT
            and h, timeout=20, interval=0.5, what="predictions of the candidate to label",
        )  # fmt: skip
        delivered = late_labels.send_feedback(
            held[:BY_FEEDBACK], pods=dep.urls(dep.pods), token=FEEDBACK_TOKEN
        )
        waited = _bake_check_with(loop, samples=BY_FEEDBACK)
        csv = late_labels.write_csv(held[BY_FEEDBACK : BY_FEEDBACK + BY_IMPORT], tmp_path / "labels.csv")
        imported = late_labels.import_labels(
            csv, store_url=dep.store_url, now=time.time() + HOURS_LATER * 3600
        )
        loop.run_until(ended, timeout_s=60)
        return Bake(loop, load, delivered, imported, waited)


def _bake_check_with(loop: RolloutLoop, *, samples: int) -> CheckResult:
    """Tick until a bake analysis counts ``samples`` labelled predictions; that check."""

    def counted() -> CheckResult | None:
        loop.tick()
        if loop.phase != "Baking":  # not an AssertionError: wait_until would take it for "not yet"
            raise RuntimeError(f"the bake ended early: {loop.status.rollout.message}")
        return next((c for c in loop.status.rollout.bake.checks if c.samples == samples), None)

    return wait_until(counted, timeout=20, interval=0.5, what=f"a bake analysis over {samples} labels")


def logged_predictions(store_url: str, version: str) -> int:
    with open_log_store(store_url, wait_timeout_s=5.0) as store:
        return store.count_predictions(model="iris-classifier", version=version, since=0.0)


def check_the_late_labels(bake: Bake, dep: Deployment, *, version: str) -> CheckResult:
    """Both ways of delivering counted, and the bake's check says how many labels and what coverage."""
    for d in bake.delivered:  # labels reached another pod than the one that predicted, and counted
        assert d.to != d.label.url and d.status == 200, d
        assert d.body["outcome"] == "accepted" and d.body["version"] == version, d
    assert (bake.imported["accepted"], bake.imported["unknown"]) == (BY_IMPORT, 0), bake.imported
    assert bake.waited.verdict == "inconclusive" and "minLabels" in bake.waited.message, bake.waited
    final = bake.loop.status.rollout.bake.checks[0]
    assert final.metric == "accuracy" and final.samples == BY_FEEDBACK + BY_IMPORT, final
    logged = logged_predictions(dep.store_url, version)
    # labelled / logged predictions of the version; predictions kept coming after the analysis
    assert final.coverage is not None and final.samples / logged <= final.coverage < 1, (final, logged)
    assert 'model_version="' + version + '"' in final.query
    return final


def test_late_labels_that_turn_bad_roll_the_promoted_version_back(models, tmp_path):
    with deployment("postgres", models, "v3", tmp_path) as dep:
        bake = promote_then_bake(dep, version="v3", bake_duration="60s", tmp_path=tmp_path)
        loop = bake.loop
        d = loop.decisions[-1]
        r = loop.status.rollout
        assert r.phase == "RolledBack" and d.rolled_back and d.weight == 0
        assert d.stable_model.version == "v1" and d.stable_model.image == "reg/iris:v1"
        assert loop.status.stable_version == "v1" and loop.status.rejected_version == "v3@reg/iris:v3"
        # the stable track went to v3 on promotion and came back to v1's pods
        assert loop.stable_changes == [("v1", "v3"), ("v3", "v1")]
        assert loop.load.stable_urls == tuple(dep.urls(dep.stable))
        failed = [e for e in loop.event_log if e.reason == R.BAKE_FAILED]
        assert (
            len(failed) == 1 and failed[0].type == "Warning" and "rolled back v3 to v1" in failed[0].message
        )
        assert [e for e in loop.events if e in (R.PROMOTED, R.BAKE_STARTED)] == [R.PROMOTED, R.BAKE_STARTED]

        accuracy = check_the_late_labels(bake, dep, version="v3")
        assert accuracy.verdict == "fail" and accuracy.value < ACCURACY_MIN
        assert r.bake.verdict == "fail" and r.bake.counts.failures == 1 and r.bake.counts.inconclusives >= 1
        assert "accuracy" in r.message and "modelrollout_ground_truth_correct" in r.message
        # the canary could not see it: it passed on latency and errors, with no accuracy check
        assert r.counts.passes >= 1 and {c.metric for c in r.checks} == {"latency-p99", "error-rate"}


def test_good_late_labels_end_the_bake_succeeded(models, tmp_path):
    with deployment("sqlite", models, "v2", tmp_path) as dep:
        bake = promote_then_bake(dep, version="v2", bake_duration="25s", tmp_path=tmp_path)
        loop = bake.loop
        r = loop.status.rollout
        assert r.phase == "Succeeded" and not any(d.rolled_back for d in loop.decisions)
        assert loop.status.stable_version == "v2" and loop.decisions[-1].stable_model.version == "v2"
        assert loop.stable_changes == [("v1", "v2")] and loop.status.rejected_version is None
        baked = [e for e in loop.event_log if e.reason == R.BAKED]
        assert len(baked) == 1 and baked[0].type == "Normal"
        assert not {R.BAKE_FAILED, R.BAKE_INCONCLUSIVE} & set(loop.events)
        assert not [e for e in loop.event_log if e.reason == R.CHECK_FAILED and e.message.startswith("bake")]

        accuracy = check_the_late_labels(bake, dep, version="v2")
        assert accuracy.verdict == "pass" and accuracy.value >= ACCURACY_MIN
        assert r.bake.verdict == "pass" and r.bake.counts.failures == 0 and r.bake.counts.passes >= 1
