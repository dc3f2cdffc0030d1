"""The operator's rollout loop without Kubernetes, for integration tests, benchmarks and the demo.

:class:`RolloutLoop` is what the controller does for one ``ModelDeployment`` on every tick -
observe, ``rollout.machine.decide``, apply the weight, store the status - with the cluster replaced:
both tracks are reported ready, the stable track on ``stable_version``, and the weight the load
generator applies as settled. The analyses are the operator's own (``rollout.analysis.run`` for the
canary, ``rollout.analysis.run_bake`` for the bake after a promotion, both through
``PrometheusProvider``), so the verdicts come from real Prometheus queries against real servers.
Every wait is bounded.

What the stable track runs: set ``stable_version`` once the stable "Deployment" really runs the
candidate, or give ``stable_pods`` (version -> the URLs of ready servers of that version on the
stable track): then each decision's stable model is rolled out at once - the load generator's stable
share goes to those servers and the stable track is reported on that version - as on promotion
(the candidate) and on a bake's rollback (the previous version, kept ready to come back).

Moved here from ``test_canary_rollout.py`` so ``tests/bench/bench_canary.py`` and ``bentos/demo.py``
drive the same loop.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Collection, Mapping, Sequence
from datetime import UTC, datetime

from modelrollout.api.events import Event
from modelrollout.api.spec import ModelDeploymentSpec
from modelrollout.api.status import CheckResult, ModelDeploymentStatus
from modelrollout.metrics.prometheus import PrometheusProvider
from modelrollout.rollout import analysis
from modelrollout.rollout.machine import ACTIVE, Cluster, Decision, Requests, decide
from tests.integration.loadgen import LoadGenerator

NAMESPACE, NAME = "default", "iris"
DEFAULT_TIMEOUT_S = 90.0


def track_labels(track: str, *, version: str, name: str = NAME) -> dict[str, str]:
    """The target labels a PodMonitor gives a pod's series (the ground-truth checks select the version)."""
    return {"namespace": NAMESPACE, "modelrollout_deployment": name, "track": track, "model_version": version}


class RolloutLoop:
    """The controller's loop without Kubernetes: observe, decide, apply the weight, store the status."""

    def __init__(
        self,
        spec: ModelDeploymentSpec,
        *,
        prometheus_url: str,
        load: LoadGenerator,
        stable_version: str = "v1",
        stable_image: str = "reg/iris:v1",
        name: str = NAME,
        stable_pods: Mapping[str, Sequence[str]] | None = None,
    ) -> None:
        self.spec = spec
        self.name = name  # the ModelDeployment's name: its series' modelrollout_deployment label
        self.load = load
        self.provider = PrometheusProvider(prometheus_url, timeout=3.0)
        self.status = ModelDeploymentStatus(
            stable_version=stable_version, stable_image=stable_image, phase="Ready"
        )
        # What the stable process runs (a cluster would show it in the pods' labels).
        self.stable_version = stable_version
        self.stable_pods = dict(stable_pods or {})
        self.decisions: list[Decision] = []
        self.analyses: list[list[CheckResult]] = []
        self.bake_analyses: list[list[CheckResult]] = []
        self.events: list[str] = []  # reasons, in order
        self.event_log: list[Event] = []  # the events themselves (type, reason, message)
        self.stable_changes: list[tuple[str, str]] = []  # (from, to) versions of the stable track

    def analyze(self, only: Collection[str] | None = None) -> list[CheckResult]:
        results = analysis.run(
            self.spec.rollout.analysis,
            self.provider,
            namespace=NAMESPACE,
            name=self.name,
            canary_version=self.spec.model.version,
            stable_version=self.status.stable_version,
            now=datetime.now(UTC),
            only=only,
        )
        self.analyses.append(results)
        return results

    def analyze_bake(self, **_: object) -> list[CheckResult]:
        """The bake's checks against the promoted version (the spec's), as the operator runs them."""
        results = analysis.run_bake(
            self.spec.rollout.bake,
            self.provider,
            analysis=self.spec.rollout.analysis,
            namespace=NAMESPACE,
            name=self.name,
            version=self.spec.model.version,
            now=datetime.now(UTC),
        )
        self.bake_analyses.append(results)
        return results

    def tick(self) -> Decision:
        cluster = Cluster(
            canary_ready=True,
            stable_ready=True,
            stable_version=self.stable_version,
            weight_settled=True,
            observed_weight=self.load.weight,
        )
        d = decide(
            self.spec,
            self.status,
            cluster,
            requests=Requests(),
            analyze=self.analyze,
            analyze_bake=self.analyze_bake,
            now=datetime.now(UTC),
        )
        self.load.set_weight(d.weight)
        self._roll_out_stable(d.stable_model.version)
        self.status = self.status.model_copy(update=d.status_fields())
        self.decisions.append(d)
        self.events += [e.reason for e in d.events]
        self.event_log += d.events
        return d

    def _roll_out_stable(self, version: str) -> None:
        """With ``stable_pods``: the stable track runs what the decision says, at once."""
        if version == self.stable_version or version not in self.stable_pods:
            return
        self.load.set_stable_urls(self.stable_pods[version])
        self.stable_changes.append((self.stable_version, version))
        self.stable_version = version

    def run_until(
        self, done: Callable[[RolloutLoop], bool], *, timeout_s: float = DEFAULT_TIMEOUT_S
    ) -> Decision:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            d = self.tick()
            if done(self):
                return d
            time.sleep(min(1.0 if d.requeue_after is None else d.requeue_after, 1.0))
        r = self.status.rollout
        raise AssertionError(
            f"not done after {timeout_s:.0f}s: phase={r and r.phase} step={r and r.step} "
            f"message={r and r.message!r} counts={r and r.counts} events={self.events}"
        )

    @property
    def phase(self) -> str | None:
        return None if self.status.rollout is None else self.status.rollout.phase

    def weights(self) -> list[int]:
        """Distinct weights asked for, in order."""
        out: list[int] = []
        for d in self.decisions:
            if not out or out[-1] != d.weight:
                out.append(d.weight)
        return out


def finished(loop: RolloutLoop) -> bool:
    return loop.phase is not None and loop.phase not in ACTIVE


def ended(loop: RolloutLoop) -> bool:
    """Nothing in progress any more: neither the canary nor the bake after its promotion."""
    return finished(loop) and loop.phase != "Baking"
