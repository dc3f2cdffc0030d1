"""Measuring a predictor: latency quantiles, CPU per prediction and stored size."""

from __future__ import annotations

import time

import numpy as np
import pytest

from modelrollout.advisor.errors import AdvisorError
from modelrollout.advisor.model_facts import MIN_SAMPLE, ModelFacts, load_predictor, measure_predictor


def sleeping(row):
    time.sleep(0.003)
    return {"score": 0.5, "label": "yes"}


def spinning(row):
    end = time.process_time() + 0.003
    while time.process_time() < end:
        pass
    return np.array([1, 2, 3])


def test_waiting_model_has_latency_but_little_cpu():
    facts = measure_predictor(sleeping, [{"x": i} for i in range(30)])
    assert facts.latency_p50_ms >= 3.0 and facts.latency_p99_ms >= facts.latency_p50_ms
    assert facts.cpu_ms < 1.0
    assert facts.prediction_bytes == len('{"score": 0.5, "label": "yes"}')
    assert facts.source == "measured on 30 samples"


def test_busy_model_is_charged_its_cpu_and_keeps_the_base_lookup_figures():
    base = ModelFacts(lookup_p50_ms=2.5, batch_cpu_ms=1.0)
    facts = measure_predictor(spinning, range(30), base=base)
    assert facts.cpu_ms == pytest.approx(3.0, rel=0.3)
    assert facts.latency_p50_ms >= 0.9 * facts.cpu_ms  # wall time includes the CPU time
    assert facts.prediction_bytes == len("[1, 2, 3]")
    assert facts.lookup_p50_ms == 2.5 and facts.batch_cpu_seconds == 0.001


def test_too_small_a_sample_or_a_failing_model_is_bad_input():
    with pytest.raises(AdvisorError, match=f"at least {MIN_SAMPLE} sample inputs"):
        measure_predictor(sleeping, range(5))
    with pytest.raises(AdvisorError, match="the model failed on a sample input: ZeroDivisionError"):
        measure_predictor(lambda row: 1 / 0, range(30))


def test_predictor_is_loaded_from_module_and_attribute():
    assert load_predictor("json:dumps")({"a": 1}) == '{"a": 1}'
    for spec, message in [
        ("json", "expected module:callable"),
        ("no_such_module_here:f", "cannot load it"),
        ("json:missing", "cannot load it"),
        ("math:pi", "is not callable"),
    ]:
        with pytest.raises(AdvisorError, match=message):
            load_predictor(spec)
