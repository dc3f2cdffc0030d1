"""The figures of one version from (prediction, label, count) pairs: what the ground-truth checks divide."""

from __future__ import annotations

import math

import pytest

from modelrollout.runtime.ground_truth.figures import Confusion, compute, parse_number


def test_accuracy_counts_are_string_equality_of_prediction_and_label():
    figures = compute(10, [("setosa", "setosa", 5), ("setosa", "virginica", 2), ("1", "1.0", 1)])
    assert (figures.predictions, figures.labelled, figures.correct) == (10, 8, 5)
    assert figures.confusion is None


def test_errors_are_summed_over_rows_where_both_sides_are_numbers():
    figures = compute(6, [("1.5", "2.5", 2), ("3", "1", 1), ("high", "3", 1), ("4", "n/a", 1)])
    assert figures.numeric == 3
    assert figures.abs_error_sum == pytest.approx(1.0 * 2 + 2.0)
    assert figures.squared_error_sum == pytest.approx(1.0 * 2 + 4.0)
    mae = figures.abs_error_sum / figures.numeric
    rmse = math.sqrt(figures.squared_error_sum / figures.numeric)
    assert (mae, rmse) == (pytest.approx(4 / 3), pytest.approx(math.sqrt(2)))


def test_confusion_counts_need_a_positive_class():
    pairs = [("fraud", "fraud", 3), ("fraud", "ok", 2), ("ok", "fraud", 4), ("ok", "ok", 10)]
    figures = compute(100, pairs, positive_class="fraud")
    assert figures.confusion == Confusion(
        true_positives=3, false_positives=2, false_negatives=4, true_negatives=10
    )
    gauges = figures.as_gauges()
    assert gauges["true_positives"] == 3 and gauges["true_negatives"] == 10 and gauges["labelled"] == 19
    assert "true_positives" not in compute(100, pairs).as_gauges()


def test_no_labels_is_all_zeros_not_an_error():
    figures = compute(5, [])
    assert (figures.labelled, figures.correct, figures.numeric, figures.abs_error_sum) == (0, 0, 0, 0.0)


@pytest.mark.parametrize(
    ("text", "value"),
    [("1", 1.0), ("-1.5e3", -1500.0), (" 2.5 ", 2.5), (".5", 0.5), ("7.", 7.0), ("0", 0.0)],
)
def test_numbers_are_decimal_literals(text, value):
    assert parse_number(text) == value


@pytest.mark.parametrize("text", ["nan", "inf", "-inf", "1_000", "0x1f", "", "1e999", "True", "1,5", "+-1"])
def test_anything_else_is_not_a_number(text):
    assert parse_number(text) is None
