"""Facts about the model and the prediction store: latency, CPU per prediction, sizes.

They are either given as numbers (defaults below are a typical small tabular model behind HTTP)
or measured by `measure_predictor`, which calls a predictor on sample inputs one at a time, as
online serving does: wall-clock latency quantiles, process CPU time (all threads, so a model
that parallelises one prediction is charged for every core it uses) and the size of the
prediction as stored (JSON, the format of the prediction table's value column).
"""

from __future__ import annotations

import importlib
import json
import math
import pickle
import time
from collections.abc import Callable, Iterable
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, model_validator

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.latency import Latency

_POSITIVE = {"gt": 0, "allow_inf_nan": False}
MIN_SAMPLE = 20


class ModelFacts(BaseModel):
    """Per-prediction costs of the model online and in batch, and of a table lookup."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    latency_p50_ms: float = Field(20.0, **_POSITIVE, description="online model latency, median")
    latency_p99_ms: float = Field(60.0, **_POSITIVE, description="online model latency, 99th percentile")
    cpu_ms: float = Field(20.0, **_POSITIVE, description="CPU time per online prediction")
    batch_cpu_ms: float | None = Field(
        None, **_POSITIVE, description="CPU time per prediction in a batch run; default: same as online"
    )
    prediction_bytes: float = Field(64.0, **_POSITIVE, description="stored size of one prediction")
    lookup_p50_ms: float = Field(1.0, **_POSITIVE, description="prediction table lookup latency, median")
    lookup_p99_ms: float | None = Field(
        None, **_POSITIVE, description="lookup latency, 99th percentile; default: 3 x median"
    )
    source: str = "given"

    @model_validator(mode="after")
    def _quantiles_ordered(self) -> ModelFacts:
        if self.latency_p99_ms < self.latency_p50_ms:
            raise ValueError(
                f"model latency p99 ({self.latency_p99_ms} ms) is below its p50 ({self.latency_p50_ms} ms)"
            )
        if self.lookup_p99_ms is not None and self.lookup_p99_ms < self.lookup_p50_ms:
            raise ValueError(
                f"lookup latency p99 ({self.lookup_p99_ms} ms) is below its p50 ({self.lookup_p50_ms} ms)"
            )
        return self

    @property
    def batch_cpu_seconds(self) -> float:
        return (self.batch_cpu_ms if self.batch_cpu_ms is not None else self.cpu_ms) / 1000.0

    @property
    def model_latency(self) -> Latency:
        return Latency(p50_ms=self.latency_p50_ms, p99_ms=self.latency_p99_ms)

    @property
    def lookup_latency(self) -> Latency:
        p99 = self.lookup_p99_ms if self.lookup_p99_ms is not None else 3.0 * self.lookup_p50_ms
        return Latency(p50_ms=self.lookup_p50_ms, p99_ms=p99)


def measure_predictor(
    predict: Callable[[Any], Any], samples: Iterable[Any], *, warmup: int = 3, base: ModelFacts | None = None
) -> ModelFacts:
    """Facts of `predict` measured on `samples` (one call each, after `warmup` unmeasured calls).

    Lookup latency and batch CPU are not properties of the predictor: they come from `base`.
    At least MIN_SAMPLE samples are needed for a p99 worth printing (it is then an upper
    order statistic, so more samples give a steadier figure).
    """
    inputs = list(samples)
    if len(inputs) < MIN_SAMPLE:
        raise AdvisorError(
            f"need at least {MIN_SAMPLE} sample inputs to measure the model, got {len(inputs)}"
        )
    for value in inputs[: max(0, warmup)]:
        _call(predict, value)
    walls, cpus, sizes = [], [], []
    for value in inputs:
        wall0, cpu0 = time.perf_counter_ns(), time.process_time_ns()
        output = _call(predict, value)
        cpus.append((time.process_time_ns() - cpu0) / 1e6)
        walls.append((time.perf_counter_ns() - wall0) / 1e6)
        sizes.append(_stored_size(output))
    walls.sort()
    base = base or ModelFacts()
    return base.model_copy(
        update={
            "latency_p50_ms": max(_quantile(walls, 0.5), 1e-3),
            "latency_p99_ms": max(_quantile(walls, 0.99), _quantile(walls, 0.5), 1e-3),
            # process CPU clocks tick coarsely; the mean over the sample is what costs add up
            "cpu_ms": max(sum(cpus) / len(cpus), 1e-3),
            "prediction_bytes": max(sum(sizes) / len(sizes), 1.0),
            "source": f"measured on {len(inputs)} samples",
        }
    )


def load_predictor(spec: str) -> Callable[[Any], Any]:
    """`package.module:attribute` -> the callable it names (a function or an object's method)."""
    module_name, sep, attribute = spec.partition(":")
    if not sep or not module_name or not attribute:
        raise AdvisorError(f"model {spec!r}: expected module:callable, e.g. mypkg.model:predict")
    try:
        target: Any = importlib.import_module(module_name)
        for part in attribute.split("."):
            target = getattr(target, part)
    except (ImportError, AttributeError) as err:
        raise AdvisorError(f"model {spec!r}: cannot load it: {err}") from err
    if not callable(target):
        raise AdvisorError(f"model {spec!r} is not callable")
    return target


def _call(predict: Callable[[Any], Any], value: Any) -> Any:
    try:
        return predict(value)
    except Exception as err:  # the predictor is user code: any failure is bad input to the advisor
        raise AdvisorError(f"the model failed on a sample input: {type(err).__name__}: {err}") from err


def _stored_size(output: Any) -> int:
    try:
        return len(json.dumps(output, default=_jsonable).encode())
    except (TypeError, ValueError):
        return len(pickle.dumps(output))


def _jsonable(value: Any) -> Any:
    if hasattr(value, "tolist"):  # numpy arrays and scalars
        return value.tolist()
    raise TypeError(type(value).__name__)


def _quantile(ordered: list[float], q: float) -> float:
    """Linear-interpolated quantile of an already sorted list."""
    position = q * (len(ordered) - 1)
    low = math.floor(position)
    high = min(low + 1, len(ordered) - 1)
    return ordered[low] + (ordered[high] - ordered[low]) * (position - low)
