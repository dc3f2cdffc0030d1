"""A bento with a ``classify`` API and no vendored runtime rolls out and is judged (issue 13).

The churn example bento (``bentos/churn``: named fields in, one customer per request, ``/classify``)
is built as its README says - ``make wheel``, then plain ``bentoml build bentos/churn`` - and the
built bento is served by ``bentoml serve churn:<tag>`` in a virtualenv whose only ``modelrollout``
is the wheel that bento carries. Its service is a plain BentoML service plus the few lines of
``modelrollout.runtime.bento`` (the ``ModelRollout`` mixin and ``@instrument``).

The operator's decision core and analysis (``RolloutLoop``, as in ``test_canary_rollout.py``) judge
it against a real Prometheus with ``analysis.endpoints: ["/classify"]``: latency and error rate from
BentoML's ``/classify`` series, accuracy from ground truth that the load generator sends to
``/feedback`` with the bearer token (the true outcome of each customer from the dataset). Stable
runs ``churn-model:v1``; a healthy canary (``v2``) is promoted through both steps; a canary with
a label-mapping bug (``v3``, accuracy ~0.1) is rolled back by the accuracy gate. The same
Prometheus asked with the default endpoints (``/predict``) has no latency or error data at all:
the reason ``endpoints`` is part of the spec.
"""

from __future__ import annotations

import csv
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from datetime import UTC, datetime

import pytest

from modelrollout.api import conditions as R
from modelrollout.api.spec import parse_spec
from modelrollout.rollout import analysis, ground_truth
from modelrollout.rollout.templates import render
from tests.integration.bentobuild import (
    bento_wheel,
    bentoml_build,
    runtime_wheel,
    site_packages,
    uv_available,
    wheel_python,
)
from tests.integration.bentoproc import (
    FEEDBACK_TOKEN,
    REPO_ROOT,
    BentoServer,
    BentoSpec,
    ModelSpec,
    bento_servers,
    trained_store,
)
from tests.integration.loadgen import LabelledRow, LoadGenerator
from tests.integration.prometheus import ScrapeTarget, running_prometheus
from tests.integration.rollout_loop import NAMESPACE, RolloutLoop, finished, track_labels

pytestmark = pytest.mark.integration

CHURN_DIR = REPO_ROOT / "bentos" / "churn"
NAME = "churn"
ENDPOINTS = ["/classify"]
INTERVAL = "5s"
MIN_SAMPLES = 10
RATE_PER_S = 30.0
SCENARIO_TIMEOUT_S = 90.0
FEATURES = {"tenure_months": int, "monthly_charges": float, "support_calls": int, "contract": str}


def customers() -> list[LabelledRow]:
    """Every customer of the dataset: its named fields (the request body) and its true outcome."""
    with (CHURN_DIR / "data" / "customers.csv").open() as data:
        return [
            LabelledRow({k: cast(row[k]) for k, cast in FEATURES.items()}, row["churned"])
            for row in csv.DictReader(data)
        ]


def rollout_spec(prometheus_url: str, *, version: str, endpoints: list[str] | None = ENDPOINTS):
    analysis_spec = {
        "prometheus": {"address": prometheus_url},
        "interval": INTERVAL,
        "minSamples": MIN_SAMPLES,
        "minLabels": MIN_SAMPLES,
        "failureLimit": 1,  # one hiccup of a loaded 2-core machine is tolerated (see test_canary_rollout)
        "metrics": [
            {"name": "latency-p99", "template": "latency-p99", "max": 0.5, "relativeToStable": {"maxRatio": 50}},
            {"name": "error-rate", "template": "error-rate", "max": 0.05},
            {"name": "accuracy", "template": "accuracy", "min": 0.75, "relativeToStable": {"maxDecrease": 0.15}},
        ],
    }  # fmt: skip
    if endpoints is not None:
        analysis_spec["endpoints"] = endpoints
    return parse_spec(
        {
            "model": {"name": "churn-model", "version": version, "image": f"reg/churn:{version}"},
            "rollout": {
                "steps": [{"setWeight": 20, "pause": "6s"}, {"setWeight": 50, "pause": "6s"}],
                "progressDeadline": "60s",
                "scaleDownDelay": "30s",
                "analysis": analysis_spec,
            },
        }
    )


@pytest.fixture(scope="module")
def servers(tmp_path_factory) -> Iterator[dict[str, BentoServer]]:
    """The built churn bento served three times at once: stable v1, canaries v2 (good) and v3 (bad)."""
    if not uv_available():
        pytest.skip(
            "`uv` is not installed: bentoml build runs `pip install uv` first, which needs the network"
        )
    store = trained_store(
        tmp_path_factory.mktemp("churn-store"),
        [ModelSpec("v1"), ModelSpec("v2"), ModelSpec("v3", quality="degraded")],
        bento_dir=CHURN_DIR,
        model_name="churn-model",
    )
    runtime_wheel()
    tag = bentoml_build(
        CHURN_DIR, home=store.home, version="rollout-itest", MODELROLLOUT_MODEL_TAG=store.tag("v1")
    )
    built = store.home / "bentos" / "churn" / "rollout-itest"
    assert not (built / "src" / "modelrollout").exists()
    python = str(
        wheel_python(bento_wheel(built), tmp_path_factory.mktemp("churn-wheel-env"), site=site_packages())
    )
    shared = {
        "MODELROLLOUT_GROUND_TRUTH_DSN": f"sqlite:///{tmp_path_factory.mktemp('churn-log')}/truth.sqlite",
        "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS": "1",
    }
    specs = {
        "stable": BentoSpec(store, "v1", env=shared, bento=tag, python=python),
        "healthy": BentoSpec(store, "v2", track="canary", env=shared, bento=tag, python=python),
        "mislabelled": BentoSpec(store, "v3", track="canary", env=shared, bento=tag, python=python),
    }
    with bento_servers(list(specs.values()), workdir=tmp_path_factory.mktemp("churn-bentos")) as running:
        yield dict(zip(specs, running, strict=True))


@contextmanager
def stage(stable: BentoServer, canary: BentoServer, tmp_path) -> Iterator[tuple[str, LoadGenerator]]:
    """A fresh Prometheus scraping both tracks, stable-only traffic to /classify with labels sent
    to /feedback, until the stable track has a full window of labelled predictions."""
    with ExitStack() as stack:
        targets = [
            ScrapeTarget(stable.target, track_labels("stable", version=stable.spec.version, name=NAME)),
            ScrapeTarget(canary.target, track_labels("canary", version=canary.spec.version, name=NAME)),
        ]
        prom = stack.enter_context(running_prometheus(targets, workdir=tmp_path))
        load = stack.enter_context(
            LoadGenerator(
                stable_url=stable.url, canary_url=canary.url, rate_per_s=RATE_PER_S,
                max_seconds=SCENARIO_TIMEOUT_S + 60, feedback_token=FEEDBACK_TOKEN,
                rows=customers(), path="/classify", body=lambda row: row.features,
            )
        )  # fmt: skip
        labelled = render(
            ground_truth.SAMPLES["accuracy"],
            analysis.variables(
                namespace=NAMESPACE, name=NAME, track="stable", version="v1", interval=INTERVAL
            ),
        )
        prom.wait_for(labelled, lambda v: v >= 2 * MIN_SAMPLES, timeout_s=30)
        yield prom.url, load


def test_a_classify_canary_is_judged_on_classify_and_promoted(servers, tmp_path):
    with stage(servers["stable"], servers["healthy"], tmp_path) as (prom_url, load):
        loop = RolloutLoop(
            rollout_spec(prom_url, version="v2"), prometheus_url=prom_url, load=load, name=NAME
        )
        d = loop.run_until(lambda lp: lp.phase == "Promoting" or finished(lp))
        assert loop.phase == "Promoting", loop.status.rollout.message
        assert loop.weights() == [20, 50]
        checks = {c.metric: c for c in loop.status.rollout.checks}
        assert {m: c.verdict for m, c in checks.items()} == dict.fromkeys(checks, "pass") and len(checks) == 3
        for c in checks.values():  # measured on /classify traffic and real labels
            assert c.value is not None and c.samples >= MIN_SAMPLES, c
        assert checks["latency-p99"].stable_value is not None and checks["accuracy"].stable_value > 0.8
        assert 'endpoint=~"/classify"' in checks["latency-p99"].query
        assert checks["accuracy"].value >= 0.75 and checks["accuracy"].coverage > 0.5
        assert load.stats().feedback.get("correct", 0) > 0

        # The same Prometheus, judged on the default endpoint: no latency or error data at all.
        default = rollout_spec(prom_url, version="v2", endpoints=None)
        blind = {
            r.metric: r
            for r in analysis.run(
                default.rollout.analysis, loop.provider, namespace=NAMESPACE, name=NAME,
                canary_version="v2", stable_version="v1", now=datetime.now(UTC),
            )
        }  # fmt: skip
        assert (
            blind["latency-p99"].verdict == "inconclusive" and blind["error-rate"].verdict == "inconclusive"
        )
        assert blind["latency-p99"].samples == 0 and 'endpoint=~"/predict"' in blind["latency-p99"].query

        loop.stable_version = "v2"  # the stable Deployment rolled out the candidate
        d = loop.run_until(finished, timeout_s=10)
        assert loop.phase == "Succeeded" and d.promoted and loop.status.stable_version == "v2"
        assert R.PROMOTED in loop.events and not any(x.rolled_back for x in loop.decisions)


def test_a_classify_canary_with_a_label_bug_is_rolled_back_by_the_accuracy_gate(servers, tmp_path):
    with stage(servers["stable"], servers["mislabelled"], tmp_path) as (prom_url, load):
        loop = RolloutLoop(
            rollout_spec(prom_url, version="v3"), prometheus_url=prom_url, load=load, name=NAME
        )
        d = loop.run_until(finished)
        r = loop.status.rollout
        assert r.phase == "RolledBack" and d.rolled_back and d.weight == 0 and load.weight == 0
        assert not any(x.promoted for x in loop.decisions)
        accuracy = next(c for c in r.checks if c.metric == "accuracy")
        assert accuracy.verdict == "fail" and accuracy.samples >= MIN_SAMPLES
        assert accuracy.value < 0.5 and accuracy.stable_value > 0.8
        assert 'model_version="v3"' in r.message and "accuracy" in r.message
        feedback = load.stats().feedback
        assert feedback.get("correct", 0) > 0 and feedback.get("incorrect", 0) > 0
        assert loop.status.rejected_version == "v3@reg/churn:v3"
