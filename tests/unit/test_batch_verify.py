"""Verification math of batch runs: PSI, bins, and the verdict of every check."""

from __future__ import annotations

import math

import numpy as np
import pytest
from pydantic import ValidationError

from modelrollout.runtime.batch.verify import (
    Thresholds,
    bin_counts,
    categorical_psi,
    check_null_share,
    check_psi,
    check_row_ratio,
    evaluate,
    psi,
    quantile_edges,
)


def test_psi_of_identical_distributions_is_zero():
    assert psi([10, 20, 30], [1, 2, 3]) == pytest.approx(0.0)


def test_psi_matches_the_textbook_formula():
    expected, actual = [0.5, 0.5], [0.8, 0.2]
    by_hand = (0.8 - 0.5) * math.log(0.8 / 0.5) + (0.2 - 0.5) * math.log(0.2 / 0.5)
    assert psi(expected, actual) == pytest.approx(by_hand)
    assert psi(actual, expected) == pytest.approx(by_hand)  # symmetric


def test_psi_floors_empty_bins_at_epsilon_instead_of_going_infinite():
    value = psi([50, 50, 0], [50, 0, 50], epsilon=1e-4)
    assert math.isfinite(value)
    p = 1e-4
    by_hand = 2 * (0.5 - p) * math.log(0.5 / p)
    assert value == pytest.approx(by_hand, rel=1e-3)


def test_psi_is_nan_when_a_side_has_no_data():
    assert math.isnan(psi([0, 0], [1, 2]))
    assert math.isnan(psi([1, 2], [0, 0]))


def test_psi_refuses_different_bins():
    with pytest.raises(ValueError, match="bins differ"):
        psi([1, 2], [1, 2, 3])


def test_categorical_psi_counts_missing_categories_as_zero():
    value = categorical_psi({"a": 50, "b": 50}, {"a": 50, "c": 50})
    assert value == pytest.approx(psi([50, 50, 0], [50, 0, 50]))
    assert categorical_psi({"a": 1, "b": 3}, {"b": 30, "a": 10}) == pytest.approx(0.0)


def test_quantile_edges_split_a_sample_into_equal_bins():
    values = np.arange(1000, dtype=float)
    edges = quantile_edges(values, bins=4)
    assert edges == pytest.approx([249.75, 499.5, 749.25])
    assert bin_counts(values, edges) == [250, 250, 250, 250]


def test_quantile_edges_drop_duplicates_and_non_finite_values():
    assert quantile_edges([1.0, 1.0, 1.0, np.nan, np.inf], bins=10) == [1.0]
    assert quantile_edges([np.nan], bins=10) == []


def test_bin_counts_put_a_value_on_an_edge_into_the_upper_bin_and_ignore_nan():
    assert bin_counts([0.0, 1.0, 1.5, 2.0, 3.0, np.nan], [1.0, 2.0]) == [1, 2, 2]


def test_thresholds_read_the_spec_spelling_and_reject_unknown_fields():
    t = Thresholds.model_validate({"minRowRatio": 0.99, "maxNullShare": 0.01, "maxPsi": None})
    assert (t.min_row_ratio, t.max_null_share, t.max_psi) == (0.99, 0.01, None)
    assert Thresholds().min_row_ratio == 1.0
    with pytest.raises(ValidationError):
        Thresholds.model_validate({"minRowRatio": 1.5})
    with pytest.raises(ValidationError):
        Thresholds.model_validate({"maxPSI": 0.1})


def test_row_ratio_passes_only_when_every_row_was_stored_by_default():
    t = Thresholds()
    assert check_row_ratio(rows_in=100, rows_stored=100, thresholds=t).verdict == "pass"
    short = check_row_ratio(rows_in=100, rows_stored=99, thresholds=t)
    assert (short.verdict, short.value, short.threshold) == ("fail", 0.99, 1.0)
    assert (
        check_row_ratio(rows_in=100, rows_stored=99, thresholds=Thresholds(minRowRatio=0.99)).verdict
        == "pass"
    )


def test_row_ratio_fails_on_more_rows_than_input_and_on_empty_input():
    assert (
        check_row_ratio(rows_in=100, rows_stored=101, thresholds=Thresholds(minRowRatio=0.5)).verdict
        == "fail"
    )
    empty = check_row_ratio(rows_in=0, rows_stored=0, thresholds=Thresholds())
    assert empty.verdict == "fail" and empty.value is None


def test_null_share_compares_the_share_with_its_maximum():
    t = Thresholds(maxNullShare=0.05)
    ok = check_null_share(nulls=5, rows=100, thresholds=t)
    assert (ok.verdict, ok.value) == ("pass", 0.05)
    assert check_null_share(nulls=6, rows=100, thresholds=t).verdict == "fail"
    assert check_null_share(nulls=0, rows=0, thresholds=t).verdict == "fail"


def test_psi_is_skipped_without_a_reference_or_when_disabled():
    current = {"kind": "categorical", "counts": {"a": 1}}
    assert check_psi(current=current, reference=None, thresholds=Thresholds()).verdict == "skipped"
    disabled = check_psi(current=current, reference=current, thresholds=Thresholds(maxPsi=None))
    assert disabled.verdict == "skipped" and disabled.threshold is None


def test_categorical_drift_above_the_threshold_fails():
    reference = {"kind": "categorical", "counts": {"0": 500, "1": 500}}
    same = check_psi(current={"kind": "categorical", "counts": {"0": 49, "1": 51}}, reference=reference,
                     thresholds=Thresholds(maxPsi=0.1))  # fmt: skip
    drifted = check_psi(current={"kind": "categorical", "counts": {"0": 90, "1": 10}}, reference=reference,
                        thresholds=Thresholds(maxPsi=0.1))  # fmt: skip
    assert same.verdict == "pass" and same.value < 0.01
    assert drifted.verdict == "fail" and drifted.value == pytest.approx(psi([0.5, 0.5], [0.9, 0.1]))


def test_numeric_psi_uses_this_runs_counts_in_the_reference_bins():
    reference = {"kind": "numeric", "edges": [0.5], "proportions": [0.5, 0.5]}
    near = check_psi(
        current={"kind": "numeric", "ref_counts": [60, 40]}, reference=reference, thresholds=Thresholds()
    )
    far = check_psi(
        current={"kind": "numeric", "ref_counts": [80, 20]}, reference=reference, thresholds=Thresholds()
    )
    assert near.value == pytest.approx(0.1 * math.log(1.2) - 0.1 * math.log(0.8))
    assert near.verdict == "pass"  # 0.04 <= 0.25
    assert far.value == pytest.approx(psi([0.5, 0.5], [0.8, 0.2]))
    assert far.verdict == "fail"  # 0.42 > 0.25


def test_a_changed_prediction_kind_or_mismatched_bins_fail_rather_than_pass():
    reference = {"kind": "numeric", "edges": [0.5], "proportions": [0.5, 0.5]}
    changed = check_psi(
        current={"kind": "categorical", "counts": {"a": 1}}, reference=reference, thresholds=Thresholds()
    )
    mismatched = check_psi(current={"kind": "numeric", "ref_counts": [1, 2, 3]}, reference=reference,
                           thresholds=Thresholds())  # fmt: skip
    no_data = check_psi(
        current={"kind": "numeric", "ref_counts": [0, 0]}, reference=reference, thresholds=Thresholds()
    )
    assert changed.verdict == mismatched.verdict == no_data.verdict == "fail"
    assert "kind changed" in changed.detail


def test_evaluate_passes_only_if_no_check_fails_and_reports_every_check():
    current = {"kind": "categorical", "nulls": 0, "counts": {"a": 10}}
    good = evaluate(thresholds=Thresholds(), rows_in=10, rows_stored=10, current=current, reference=None)
    assert good.passed
    report = good.to_dict()
    assert [c["name"] for c in report["checks"]] == ["row_ratio", "null_share", "psi"]
    assert [c["verdict"] for c in report["checks"]] == ["pass", "pass", "skipped"]
    bad = evaluate(
        thresholds=Thresholds(), rows_in=10, rows_stored=10, current={**current, "nulls": 1}, reference=None
    )
    assert not bad.passed and bad.to_dict()["checks"][1]["verdict"] == "fail"
