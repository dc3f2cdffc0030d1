"""Post-verification of a batch run: pure math and the verdict, no I/O.

Three checks, each reported with its value, threshold and verdict:

``row_ratio``   rows stored / rows read (for this run, all shards). ``minRowRatio`` 1.0 means every
                input row must have produced exactly one stored prediction.
``null_share``  share of stored predictions that are null or were invalid (NaN/inf become null).
``psi``         population stability index of this run's predictions against the last published
                run: categorical over the prediction values, or over the reference run's quantile
                bins for numeric predictions. ``sum((a - e) * ln(a / e))`` over bins, with
                proportions floored at ``psiEpsilon`` so an empty bin does not make it infinite.
                Skipped (and reported so) when nothing was published before.

A check whose value is NaN or missing fails: no data is never a pass.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel, ConfigDict, Field

Verdict = Literal["pass", "fail", "skipped"]


class Thresholds(BaseModel):
    """Verification thresholds, spelled as in the ModelDeployment spec (camelCase)."""

    model_config = ConfigDict(populate_by_name=True, extra="forbid", frozen=True)

    min_row_ratio: float = Field(default=1.0, alias="minRowRatio", ge=0.0, le=1.0)
    max_null_share: float = Field(default=0.0, alias="maxNullShare", ge=0.0, le=1.0)
    max_psi: float | None = Field(default=0.25, alias="maxPsi", ge=0.0, description="None disables the check")
    psi_bins: int = Field(default=10, alias="psiBins", ge=2, le=100)
    psi_epsilon: float = Field(default=1e-4, alias="psiEpsilon", gt=0.0, lt=0.1)


@dataclass(frozen=True)
class Check:
    name: str
    value: float | None
    threshold: float | None
    verdict: Verdict
    detail: str = ""


@dataclass(frozen=True)
class Verification:
    checks: tuple[Check, ...]

    @property
    def passed(self) -> bool:
        return all(c.verdict != "fail" for c in self.checks)

    def to_dict(self) -> dict[str, Any]:
        return {"passed": self.passed, "checks": [_rounded(asdict(c)) for c in self.checks]}


def _rounded(check: dict[str, Any]) -> dict[str, Any]:
    for key in ("value", "threshold"):
        if isinstance(check[key], float) and math.isfinite(check[key]):
            check[key] = round(check[key], 6)
        elif isinstance(check[key], float):
            check[key] = None
    return check


def psi(expected: Sequence[float], actual: Sequence[float], *, epsilon: float = 1e-4) -> float:
    """PSI of two count (or proportion) vectors over the same bins; NaN if either side is empty."""
    e = np.asarray(expected, dtype=float)
    a = np.asarray(actual, dtype=float)
    if e.shape != a.shape:
        raise ValueError(f"bins differ: {e.shape} vs {a.shape}")
    if e.sum() <= 0 or a.sum() <= 0:
        return math.nan
    e = np.maximum(e / e.sum(), epsilon)
    a = np.maximum(a / a.sum(), epsilon)
    return float(np.sum((a - e) * np.log(a / e)))


def categorical_psi(
    expected: Mapping[str, float], actual: Mapping[str, float], *, epsilon: float = 1e-4
) -> float:
    """PSI over the union of categories; a category one side lacks counts as zero there."""
    categories = sorted(set(expected) | set(actual))
    return psi(
        [expected.get(c, 0) for c in categories], [actual.get(c, 0) for c in categories], epsilon=epsilon
    )


def quantile_edges(values: Sequence[float] | np.ndarray, *, bins: int) -> list[float]:
    """Interior bin edges at the quantiles of ``values`` (finite only), duplicates removed."""
    v = np.asarray(values, dtype=float)
    v = v[np.isfinite(v)]
    if v.size == 0:
        return []
    edges = np.quantile(v, np.arange(1, bins) / bins)
    return [float(x) for x in np.unique(edges)]


def bin_counts(values: Sequence[float] | np.ndarray, edges: Sequence[float]) -> list[int]:
    """Counts per bin: bin i holds values with ``edges[i-1] <= v < edges[i]`` (NaN ignored)."""
    v = np.asarray(values, dtype=float)
    v = v[~np.isnan(v)]
    index = np.searchsorted(np.asarray(edges, dtype=float), v, side="right")
    return [int(x) for x in np.bincount(index, minlength=len(edges) + 1)]


def check_row_ratio(*, rows_in: int, rows_stored: int, thresholds: Thresholds) -> Check:
    if rows_in <= 0:
        return Check("row_ratio", None, thresholds.min_row_ratio, "fail", "the input had no rows")
    ratio = rows_stored / rows_in
    verdict: Verdict = "pass" if thresholds.min_row_ratio <= ratio <= 1.0 else "fail"
    return Check(
        "row_ratio", ratio, thresholds.min_row_ratio, verdict, f"{rows_stored} of {rows_in} rows stored"
    )


def check_null_share(*, nulls: int, rows: int, thresholds: Thresholds) -> Check:
    if rows <= 0:
        return Check("null_share", None, thresholds.max_null_share, "fail", "no predictions stored")
    share = nulls / rows
    verdict: Verdict = "pass" if share <= thresholds.max_null_share else "fail"
    return Check(
        "null_share", share, thresholds.max_null_share, verdict, f"{nulls} null or invalid of {rows}"
    )


def check_psi(
    *, current: Mapping[str, Any], reference: Mapping[str, Any] | None, thresholds: Thresholds
) -> Check:
    """``current`` is this run's merged statistics; ``reference`` the last published distribution.

    Numeric runs arrive with ``ref_counts``: counts of this run's predictions in the reference's
    bins, counted exactly while writing (the reference is fixed when the run begins).
    """
    limit = thresholds.max_psi
    if limit is None:
        return Check("psi", None, None, "skipped", "disabled (maxPsi unset)")
    if reference is None:
        return Check("psi", None, limit, "skipped", "no published version to compare with")
    if reference.get("kind") != current.get("kind"):
        return Check(
            "psi", None, limit, "fail",
            f"prediction kind changed ({reference.get('kind')} -> {current.get('kind')}); unset maxPsi for this run to accept",
        )  # fmt: skip
    if current["kind"] == "categorical":
        value = categorical_psi(
            reference.get("counts", {}), current.get("counts", {}), epsilon=thresholds.psi_epsilon
        )
        detail = f"{len(current.get('counts', {}))} categories"
    else:
        expected = reference.get("proportions", [])
        actual = current.get("ref_counts") or []
        if len(actual) != len(expected):
            return Check("psi", None, limit, "fail", "reference bins do not match this run's counts")
        value = psi(expected, actual, epsilon=thresholds.psi_epsilon)
        detail = f"{len(expected)} bins from the reference run"
    if math.isnan(value):
        return Check("psi", None, limit, "fail", "no predictions to compare")
    return Check("psi", value, limit, "pass" if value <= limit else "fail", detail)


def evaluate(
    *, thresholds: Thresholds, rows_in: int, rows_stored: int, current: Mapping[str, Any],
    reference: Mapping[str, Any] | None,
) -> Verification:  # fmt: skip
    """All checks of one run; ``current`` carries ``nulls`` and the distribution statistics."""
    return Verification(
        checks=(
            check_row_ratio(rows_in=rows_in, rows_stored=rows_stored, thresholds=thresholds),
            check_null_share(nulls=int(current.get("nulls", 0)), rows=rows_stored, thresholds=thresholds),
            check_psi(current=current, reference=reference, thresholds=thresholds),
        )
    )
