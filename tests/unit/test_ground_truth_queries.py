"""The ground-truth checks' PromQL: one figure per version, max() across the pods that export
it, the version in the selector (never the track), and a labelled-count sample gate."""

from __future__ import annotations

import pytest

from modelrollout.rollout import ground_truth as G
from modelrollout.rollout.templates import render

VARS = {"namespace": "ml", "name": "iris", "version": "2.0.0", "track": "canary", "interval": "1m"}


@pytest.mark.parametrize("template", sorted(G.TEMPLATES))
def test_every_ground_truth_query_selects_the_version_not_the_track(template):
    query = render(G.TEMPLATES[template], VARS)
    assert 'model_version="2.0.0"' in query and "track=" not in query
    assert 'modelrollout_deployment="iris"' in query and 'namespace="ml"' in query
    assert query.count("max(") >= 2  # every figure aggregated across the version's pods


def test_mae_and_rmse_gate_on_numeric_labels_the_rest_on_labelled():
    assert "numeric" in G.SAMPLES["mae"] and "numeric" in G.SAMPLES["rmse"]
    assert all("labelled" in G.SAMPLES[t] for t in ("accuracy", "precision", "recall", "false-positive-rate"))
    assert "labelled" in G.COVERAGE and "predictions" in G.COVERAGE


def test_every_figure_is_one_the_runtime_exports():
    exported = {
        "predictions", "labelled", "correct", "abs_error_sum", "squared_error_sum", "numeric",
        "true_positives", "false_positives", "false_negatives", "true_negatives",
    }  # fmt: skip
    import re

    queries = " ".join([*G.TEMPLATES.values(), *G.SAMPLES.values(), G.COVERAGE])
    used = set(re.findall(r"modelrollout_ground_truth_([a-z_]+)\{", queries))
    assert used <= exported and used


class Figures:
    """A provider answering from the figures of one version."""

    def __init__(self, **figures: float) -> None:
        self.figures = figures

    def query(self, promql: str) -> float | None:
        import re

        names = re.findall(r"modelrollout_ground_truth_([a-z_]+)\{", promql)
        values = [self.figures.get(n) for n in names]
        if any(v is None for v in values):
            return None
        if promql.startswith("sqrt("):
            return (values[0] / values[1]) ** 0.5
        if "+" in promql:  # tp / (tp + x)
            return values[0] / (values[1] + values[2])
        return values[0] / values[1] if len(values) == 2 else values[0]


def check(template, **bounds):
    from modelrollout.api.rollout import MetricCheck

    return MetricCheck(name=template, template=template, **(bounds or {"min": 0.5}))


def run(chk, figures, *, min_labels=50):
    from datetime import UTC, datetime

    from modelrollout.rollout.analysis import run_check, variables

    judged = variables(namespace="ml", name="iris", track="canary", version="2.0.0", interval="1m")
    return run_check(
        chk,
        figures,
        canary=judged,
        stable=judged,
        min_samples=20,
        min_labels=min_labels,
        now=datetime.now(UTC),
    )


def test_a_ground_truth_check_reports_labelled_count_and_coverage():
    figures = Figures(predictions=1000, labelled=200, true_positives=95, false_positives=5)
    result = run(check("precision", min=0.9), figures)
    assert result.verdict == "pass" and result.value == 0.95
    assert result.samples == 200 and result.coverage == 0.2


def test_fewer_labels_than_min_labels_is_inconclusive_not_a_pass():
    figures = Figures(predictions=1000, labelled=12, true_positives=12, false_positives=0)
    result = run(check("precision", min=0.9), figures)
    assert result.verdict == "inconclusive" and "50" in result.message
    assert result.coverage == 0.012


def test_regression_and_class_metrics_from_the_figures():
    figures = Figures(
        predictions=100, labelled=100, numeric=100, abs_error_sum=30.0, squared_error_sum=16.0,
        true_positives=40, false_positives=10, false_negatives=20, true_negatives=30,
    )  # fmt: skip
    assert run(check("mae", max=0.5), figures).value == 0.3
    assert run(check("rmse", max=0.5), figures).value == 0.4
    assert run(check("precision"), figures).value == 0.8
    assert run(check("recall"), figures).value == 40 / 60
    assert run(check("false-positive-rate", max=0.5), figures).value == 0.25


def test_a_request_check_has_no_coverage():
    class Requests:
        def query(self, promql):
            return 100.0 if "increase" in promql else 0.1

    result = run(check("latency-p99", max=0.5), Requests())
    assert result.coverage is None and result.verdict == "pass"


def test_the_built_in_accuracy_check_reads_the_ground_truth_figures_not_a_feedback_counter():
    from modelrollout.rollout.templates import SAMPLES, query_for, samples_query_for

    assert query_for("accuracy", None) == G.TEMPLATES["accuracy"]
    assert samples_query_for("accuracy") == G.SAMPLES["accuracy"]
    assert "feedback" not in SAMPLES and "modelrollout_feedback_total" not in query_for("accuracy", None)
    assert samples_query_for("latency-p99") == SAMPLES["requests"]


def test_accuracy_is_a_ground_truth_check_with_labelled_count_and_coverage():
    result = run(check("accuracy", min=0.9), Figures(predictions=1000, labelled=200, correct=190))
    assert result.verdict == "pass" and result.value == 0.95
    assert result.samples == 200 and result.coverage == 0.2
    waiting = run(check("accuracy", min=0.9), Figures(predictions=1000, labelled=12, correct=12))
    assert waiting.verdict == "inconclusive" and "12 labelled predictions < minLabels 50" in waiting.message
