"""Streaming prediction statistics: exact merges across chunks and shards, bounded memory."""

from __future__ import annotations

import numpy as np
import pyarrow as pa
import pytest

from modelrollout.runtime.batch import stats
from modelrollout.runtime.batch.verify import bin_counts


def _feed(values: list, *, kind: str, chunks: int, edges=None, seed=1) -> stats.PredictionStats:
    acc = stats.PredictionStats(kind=kind, edges=edges, seed=seed)
    for part in np.array_split(np.arange(len(values)), chunks):
        acc.add(pa.array([values[i] for i in part]))
    return acc


def test_categorical_counts_and_nulls_do_not_depend_on_chunking():
    values = ["a", "b", None, "a", "c", "a", None, "b"] * 50
    one = _feed(values, kind="categorical", chunks=1).to_dict()
    many = _feed(values, kind="categorical", chunks=7).to_dict()
    assert one == many
    assert one["counts"] == {"a": 150, "b": 100, "c": 50}
    assert (one["rows"], one["nulls"]) == (400, 100)


def test_shard_statistics_merge_to_the_statistics_of_the_whole():
    values = [float(x) for x in np.random.default_rng(3).normal(size=3000)]
    edges = [-1.0, 0.0, 1.0]
    whole = _feed(values, kind="numeric", chunks=3, edges=edges).to_dict()
    shards = [_feed(values[i::3], kind="numeric", chunks=2, edges=edges, seed=i).to_dict() for i in range(3)]
    merged = stats.merge(shards)
    assert merged["rows"] == whole["rows"] == 3000
    assert merged["ref_counts"] == whole["ref_counts"] == bin_counts(values, edges)
    assert len(merged["sample"]) == stats.SAMPLE_SIZE
    assert set(merged["sample"]) <= set(values)


def test_the_numeric_sample_is_bounded_uniform_and_reproducible():
    values = list(np.arange(20_000, dtype=float))
    a = _feed(values, kind="numeric", chunks=10, seed=42)
    b = _feed(values, kind="numeric", chunks=10, seed=42)
    assert len(a.sample) == stats.SAMPLE_SIZE
    assert np.array_equal(np.sort(a.sample), np.sort(b.sample))
    # a uniform sample of 0..19999 has its median near 10000 (sd of the median ~ 220)
    assert abs(np.median(a.sample) - 10_000) < 1_000


def test_nan_predictions_arrive_as_nulls_and_stay_out_of_the_bins():
    acc = stats.PredictionStats(kind="numeric", edges=[0.5])
    acc.add(pa.array([0.1, None, 0.9, 0.7]))
    out = acc.to_dict()
    assert (out["rows"], out["nulls"], out["ref_counts"]) == (4, 1, [1, 2])


def test_too_many_categories_are_folded_into_other_keeping_the_total(monkeypatch):
    monkeypatch.setattr(stats, "MAX_TRACKED", 20)
    monkeypatch.setattr(stats, "KEEP_TRACKED", 5)
    values = [f"v{i}" for i in range(30)] + ["v0"] * 10
    acc = _feed(values, kind="categorical", chunks=1)
    assert len(acc.counts) == 6 and acc.counts["v0"] == 11
    assert sum(acc.counts.values()) == 40 and acc.counts[stats.OTHER] == 40 - sum(
        v for k, v in acc.counts.items() if k != stats.OTHER
    )


def test_distribution_for_the_next_run_has_quantile_bins_with_their_proportions():
    acc = _feed(list(np.linspace(0, 1, 5000)), kind="numeric", chunks=4)
    dist = stats.distribution(stats.merge([acc.to_dict()]), bins=4)
    assert dist["kind"] == "numeric" and len(dist["edges"]) == 3
    assert sum(dist["proportions"]) == pytest.approx(1.0)
    assert all(p == pytest.approx(0.25, abs=0.01) for p in dist["proportions"])
    categorical = stats.distribution({"kind": "categorical", "counts": {"x": 3}}, bins=10)
    assert categorical == {"kind": "categorical", "counts": {"x": 3}}


def test_merge_refuses_shards_that_disagree_on_the_kind():
    with pytest.raises(ValueError, match="disagree"):
        stats.merge(
            [{"kind": "numeric", "rows": 1, "nulls": 0}, {"kind": "categorical", "rows": 1, "nulls": 0}]
        )


def test_reference_edges_come_only_from_a_numeric_reference():
    assert stats.reference_edges({"kind": "numeric", "edges": [1, 2]}) == [1.0, 2.0]
    assert stats.reference_edges({"kind": "categorical", "counts": {}}) is None
    assert stats.reference_edges(None) is None
