"""The figures of one model version from its labelled predictions (pure).

Input: how many predictions the version logged, and (prediction, label, count) for the labelled
ones, as the store groups them. Output: what the operator's ground-truth checks divide:

- accuracy = correct / labelled (string equality: ``"setosa" == "setosa"``, ``"1" != "1.0"``);
- MAE = abs_error_sum / numeric, RMSE = sqrt(squared_error_sum / numeric), over the labelled
  predictions where both prediction and label are decimal numbers (finite, JSON-like syntax:
  ``-1.5e3`` yes; ``nan``, ``inf``, ``1_000``, ``0x1f`` no);
- with a positive class, the confusion counts (over the labelled predictions).
"""

from __future__ import annotations

import math
import re
from collections.abc import Iterable
from dataclasses import dataclass

_NUMBER = re.compile(r"-?(?:\d+\.?\d*|\.\d+)(?:[eE][+-]?\d+)?", re.ASCII)


def parse_number(text: str) -> float | None:
    """The finite number ``text`` spells (surrounding spaces allowed), else None."""
    stripped = text.strip()
    if not _NUMBER.fullmatch(stripped):
        return None
    value = float(stripped)
    return value if math.isfinite(value) else None


@dataclass(frozen=True)
class Confusion:
    true_positives: int = 0
    false_positives: int = 0
    false_negatives: int = 0
    true_negatives: int = 0


@dataclass(frozen=True)
class Figures:
    predictions: int
    labelled: int = 0
    correct: int = 0
    numeric: int = 0
    abs_error_sum: float = 0.0
    squared_error_sum: float = 0.0
    confusion: Confusion | None = None  # None without a positive class

    def as_gauges(self) -> dict[str, float]:
        """Gauge name (after the ``modelrollout_ground_truth_`` prefix) -> value."""
        out = {
            "predictions": float(self.predictions), "labelled": float(self.labelled),
            "correct": float(self.correct), "numeric": float(self.numeric),
            "abs_error_sum": self.abs_error_sum, "squared_error_sum": self.squared_error_sum,
        }  # fmt: skip
        if self.confusion is not None:
            out.update({name: float(value) for name, value in vars(self.confusion).items()})
        return out


def compute(
    predictions: int, pairs: Iterable[tuple[str, str, int]], *, positive_class: str | None = None
) -> Figures:
    """The figures of ``predictions`` logged predictions whose labelled ones group into ``pairs``."""
    labelled = correct = numeric = 0
    abs_sum = sq_sum = 0.0
    tp = fp = fn = tn = 0
    for predicted, label, count in pairs:
        labelled += count
        if predicted == label:
            correct += count
        x, y = parse_number(predicted), parse_number(label)
        if x is not None and y is not None:
            numeric += count
            abs_sum += abs(y - x) * count
            sq_sum += (y - x) ** 2 * count
        if positive_class is not None:
            said, was = predicted == positive_class, label == positive_class
            tp += count if said and was else 0
            fp += count if said and not was else 0
            fn += count if was and not said else 0
            tn += count if not said and not was else 0
    confusion = None if positive_class is None else Confusion(tp, fp, fn, tn)
    return Figures(predictions, labelled, correct, numeric, abs_sum, sq_sum, confusion)
