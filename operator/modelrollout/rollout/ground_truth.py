"""PromQL of the ground-truth checks: figures the serving pods compute from the shared
prediction log and its labels (runtime/ground_truth/ is the producer side).

Each serving pod exports the figures of its own model version, computed from the shared store,
as gauges without version labels; the PodMonitor's target labels (`namespace`,
`modelrollout_deployment`, `model_version`) say whose they are. Every pod of one version exports
the same numbers, so a query takes `max()`, and the selector names the version, never the track:
a label for a canary prediction may reach a stable pod, and the version is what is judged.

The figures are cumulative over the version's predictions within retention, so a check sees
every label that has arrived so far, however late (which is what a bake needs).
"""

from __future__ import annotations

SELECTOR = 'namespace="{{namespace}}", modelrollout_deployment="{{name}}", model_version="{{version}}"'
PREFIX = "modelrollout_ground_truth_"


def figure(name: str) -> str:
    """One figure of the judged version: `max(modelrollout_ground_truth_<name>{...})`."""
    return f"max({PREFIX}{name}{{{SELECTOR}}})"


LABELLED, NUMERIC, PREDICTIONS = figure("labelled"), figure("numeric"), figure("predictions")
TP, FP, FN, TN = (
    figure(n) for n in ("true_positives", "false_positives", "false_negatives", "true_negatives")
)

TEMPLATES: dict[str, str] = {
    "accuracy": f"{figure('correct')} / {LABELLED}",
    "mae": f"{figure('abs_error_sum')} / {NUMERIC}",
    "rmse": f"sqrt({figure('squared_error_sum')} / {NUMERIC})",
    "precision": f"{TP} / ({TP} + {FP})",
    "recall": f"{TP} / ({TP} + {FN})",
    "false-positive-rate": f"{FP} / ({FP} + {TN})",
}

# The labelled predictions behind a value (compared with analysis.minLabels).
SAMPLES: dict[str, str] = {name: NUMERIC if name in ("mae", "rmse") else LABELLED for name in TEMPLATES}

# Labelled / predicted: how much of the version's traffic the labels cover.
COVERAGE = f"{LABELLED} / {PREDICTIONS}"


def is_ground_truth(template: str) -> bool:
    return template in TEMPLATES
