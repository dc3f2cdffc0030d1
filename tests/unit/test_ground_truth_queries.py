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
