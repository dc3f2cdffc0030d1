"""Prediction statistics gathered while a run streams, so verification needs no extra table scan.

Each shard accumulates its own and stores them (JSON) with its shard report; the publisher merges
them. Everything here merges exactly across chunks and shards:

- rows and nulls: sums;
- categorical predictions (text, integer, boolean): counts per value (beyond ``MAX_TRACKED``
  distinct values the tail is folded into ``__other__``, which keeps memory bounded);
- numeric predictions: exact counts in the *reference* run's bins (the reference is fixed when
  the run begins, so every shard bins alike), plus a uniform bottom-k sample (each value gets a
  random priority; the k smallest priorities of a union are a uniform sample of the union). The
  sample gives this run's own quantile bins and their proportions, stored for the next run.
  With k = 2048 a bin proportion is off by about 0.7 percentage points, well below what a PSI
  threshold (typically 0.1-0.25) reacts to.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Mapping
from typing import Any, Literal

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc

from .verify import bin_counts, quantile_edges

SAMPLE_SIZE = 2048
MAX_TRACKED = 10_000
KEEP_TRACKED = 1_000
OTHER = "__other__"
StatsKind = Literal["numeric", "categorical"]


def stats_kind(prediction_kind: str) -> StatsKind:
    return "numeric" if prediction_kind == "float" else "categorical"


def seed_for(run_id: str, shard_index: int) -> int:
    """A stable seed: rerunning a run samples the same rows, so its verdict is reproducible."""
    return int.from_bytes(hashlib.sha256(f"{run_id}/{shard_index}".encode()).digest()[:8], "little")


def reference_edges(reference_distribution: Mapping[str, Any] | None) -> list[float] | None:
    if not reference_distribution or reference_distribution.get("kind") != "numeric":
        return None
    return [float(x) for x in reference_distribution.get("edges", [])]


class PredictionStats:
    def __init__(self, *, kind: StatsKind, edges: list[float] | None = None, seed: int = 0) -> None:
        self.kind = kind
        self.rows = 0
        self.nulls = 0
        self.counts: dict[str, int] = {}
        self.edges = edges
        self.ref_counts = np.zeros(len(edges) + 1, dtype=np.int64) if edges is not None else None
        self.sample = np.empty(0)
        self.priority = np.empty(0)
        self._rng = np.random.default_rng(seed)

    def add(self, predictions: pa.Array | pa.ChunkedArray) -> None:
        self.rows += len(predictions)
        self.nulls += predictions.null_count
        valid = pc.drop_null(predictions)
        if len(valid) == 0:
            return
        if self.kind == "categorical":
            for item in pc.value_counts(valid).to_pylist():
                key = str(item["values"])
                self.counts[key] = self.counts.get(key, 0) + int(item["counts"])
            self.counts = _fold(self.counts)
            return
        values = np.asarray(valid.to_numpy(zero_copy_only=False), dtype=float)
        if self.ref_counts is not None:
            self.ref_counts += np.asarray(bin_counts(values, self.edges or []), dtype=np.int64)
        self.sample, self.priority = _bottom_k(
            np.concatenate([self.sample, values]),
            np.concatenate([self.priority, self._rng.random(values.size)]),
        )

    def to_dict(self) -> dict[str, Any]:
        out: dict[str, Any] = {"kind": self.kind, "rows": self.rows, "nulls": self.nulls}
        if self.kind == "categorical":
            out["counts"] = dict(self.counts)
        else:
            out["ref_counts"] = None if self.ref_counts is None else [int(x) for x in self.ref_counts]
            out["sample"] = [float(x) for x in self.sample]
            out["priority"] = [float(x) for x in self.priority]
        return out


def _fold(counts: dict[str, int]) -> dict[str, int]:
    if len(counts) <= MAX_TRACKED:
        return counts
    ranked = sorted(counts.items(), key=lambda kv: (kv[0] == OTHER, -kv[1]))
    kept = dict(ranked[:KEEP_TRACKED])
    kept[OTHER] = counts.get(OTHER, 0) + sum(v for _, v in ranked[KEEP_TRACKED:])
    return kept


def _bottom_k(
    values: np.ndarray, priority: np.ndarray, k: int = SAMPLE_SIZE
) -> tuple[np.ndarray, np.ndarray]:
    if values.size <= k:
        return values, priority
    keep = np.argpartition(priority, k)[:k]
    return values[keep], priority[keep]


def merge(shards: Iterable[Mapping[str, Any]]) -> dict[str, Any]:
    """One run's statistics from its shards' (same kind, same reference bins by construction)."""
    shards = list(shards)
    if not shards:
        return {"kind": "categorical", "rows": 0, "nulls": 0, "counts": {}}
    kinds = {s["kind"] for s in shards}
    if len(kinds) != 1:
        raise ValueError(f"shards disagree on the prediction kind: {sorted(kinds)}")
    kind = kinds.pop()
    out: dict[str, Any] = {
        "kind": kind,
        "rows": sum(s["rows"] for s in shards),
        "nulls": sum(s["nulls"] for s in shards),
    }
    if kind == "categorical":
        counts: dict[str, int] = {}
        for s in shards:
            for key, value in s.get("counts", {}).items():
                counts[key] = counts.get(key, 0) + int(value)
        out["counts"] = _fold(counts)
        return out
    refs = [s.get("ref_counts") for s in shards]
    out["ref_counts"] = (
        None if any(r is None for r in refs) else [int(x) for x in np.sum(np.asarray(refs), axis=0)]
    )
    sample, priority = _bottom_k(
        np.asarray([x for s in shards for x in s.get("sample", [])], dtype=float),
        np.asarray([x for s in shards for x in s.get("priority", [])], dtype=float),
    )
    out["sample"] = sample.tolist()
    return out


def distribution(merged: Mapping[str, Any], *, bins: int) -> dict[str, Any]:
    """What is stored with a published version as the next run's PSI reference."""
    if merged["kind"] == "categorical":
        return {"kind": "categorical", "counts": dict(merged.get("counts", {}))}
    sample = np.asarray(merged.get("sample", []), dtype=float)
    edges = quantile_edges(sample, bins=bins)
    counts = bin_counts(sample, edges) if sample.size else []
    total = sum(counts)
    return {
        "kind": "numeric",
        "edges": edges,
        "proportions": [c / total for c in counts] if total else [],
        "sample_size": int(sample.size),
    }
