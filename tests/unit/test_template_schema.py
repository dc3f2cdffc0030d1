"""ModelAnalysisTemplate and ClusterModelAnalysisTemplate: what their CRDs accept and refuse at
apply time, and the operator's parse agrees (tests/cluster/test_templates.py runs the same
lists against a real API server)."""

from __future__ import annotations

import copy

import pytest
from pydantic import ValidationError

from modelrollout.api.analysis_template import ClusterModelAnalysisTemplateSpec, ModelAnalysisTemplateSpec
from tests.support.crdschema import analysis_template, validate_template

PROMETHEUS = {
    "address": "http://prometheus.monitoring:9090",
    "authSecretRef": {"name": "prom", "key": "token"},
}
QUEUE = {
    "name": "queue",
    "template": "custom",
    "query": 'sum(my_queue_depth{service="{{args.service}}", track="{{track}}"})',
    "samplesQuery": 'sum(increase(my_requests_total{service="{{args.service}}", track="{{track}}"}[{{window}}]))',
    "max": 100,
}
SLO = {
    "prometheus": PROMETHEUS,
    "args": [{"name": "service"}, {"name": "quantile", "value": "0.99"}],
    "metrics": [
        {"name": "p99", "template": "latency-p99", "max": 0.5, "window": "2m"},
        {"name": "errors", "template": "error-rate", "max": 0.01, "interval": "1m"},
        QUEUE,
    ],
}

GOOD = {
    "full": ("ModelAnalysisTemplate", SLO),
    "provider-only": ("ModelAnalysisTemplate", {"prometheus": PROMETHEUS}),
    "checks-only": ("ModelAnalysisTemplate", {"metrics": SLO["metrics"][:2]}),
    "cluster": ("ClusterModelAnalysisTemplate", SLO),
    "cluster-secret-in-a-namespace": (
        "ClusterModelAnalysisTemplate",
        {
            "prometheus": {
                **PROMETHEUS,
                "authSecretRef": {"name": "prom", "key": "token", "namespace": "monitoring"},
            }
        },
    ),
}


def _with(spec: dict, **changes) -> dict:
    return {**copy.deepcopy(spec), **changes}


# (id, kind, spec, fragment the schema's message contains)
BAD = [
    ("empty", "ModelAnalysisTemplate", {}, "a template needs prometheus or at least one metric"),
    ("bad-address", "ModelAnalysisTemplate", {"prometheus": {"address": "prometheus:9090"}}, "address"),
    (
        "window-zero",
        "ModelAnalysisTemplate",
        _with(SLO, metrics=[{"name": "p99", "template": "latency-p99", "max": 0.5, "window": "0s"}]),
        "window",
    ),
    (
        "interval-fraction",
        "ClusterModelAnalysisTemplate",
        _with(SLO, metrics=[{"name": "p99", "template": "latency-p99", "max": 0.5, "interval": "0.5m"}]),
        "interval",
    ),
    (
        "duplicate-checks",
        "ModelAnalysisTemplate",
        _with(SLO, metrics=[SLO["metrics"][0], SLO["metrics"][0]]),
        "metrics",
    ),
    ("duplicate-args", "ModelAnalysisTemplate", _with(SLO, args=[{"name": "a"}, {"name": "a"}]), "args"),
    ("arg-name-with-dash", "ModelAnalysisTemplate", _with(SLO, args=[{"name": "my-service"}]), "args"),
    (
        "check-without-threshold",
        "ModelAnalysisTemplate",
        _with(SLO, metrics=[{"name": "p99", "template": "latency-p99"}]),
        "at least one of min, max",
    ),
    (
        "namespaced-secret-elsewhere",
        "ModelAnalysisTemplate",
        {"prometheus": {**PROMETHEUS, "authSecretRef": {"name": "prom", "namespace": "monitoring"}}},
        "namespace",
    ),
]


@pytest.mark.parametrize(("kind", "spec"), GOOD.values(), ids=list(GOOD))
def test_good_templates_are_accepted_by_schema_and_operator(kind, spec):
    _, errors = validate_template(analysis_template(spec, kind=kind))
    assert errors == []
    model = ClusterModelAnalysisTemplateSpec if kind.startswith("Cluster") else ModelAnalysisTemplateSpec
    model.model_validate(spec)


@pytest.mark.parametrize(("kind", "spec", "fragment"), [b[1:] for b in BAD], ids=[b[0] for b in BAD])
def test_bad_templates_are_refused_by_schema_and_operator(kind, spec, fragment):
    _, errors = validate_template(analysis_template(spec, kind=kind))
    assert errors and any(fragment in e for e in errors), errors
    model = ClusterModelAnalysisTemplateSpec if kind.startswith("Cluster") else ModelAnalysisTemplateSpec
    with pytest.raises(ValidationError):
        model.model_validate(spec)


def test_a_query_using_an_undeclared_argument_is_refused_by_the_operator():
    """A regex cannot match a query's variables against the declared arguments; the operator
    refuses such a template when a ModelDeployment references it (AnalysisTemplateInvalid)."""
    spec = _with(SLO, args=[{"name": "quantile", "value": "0.99"}])  # QUEUE uses args.service
    _, errors = validate_template(analysis_template(spec))
    assert errors == []
    with pytest.raises(ValidationError, match=r"metric queue: undeclared variable\(s\) args\.service"):
        ModelAnalysisTemplateSpec.model_validate(spec)


def test_an_inline_check_cannot_use_template_arguments():
    from modelrollout.api.spec import SpecError, parse_spec

    spec = {
        "model": {"name": "iris", "version": "1", "image": "x:1"},
        "rollout": {"analysis": {"prometheus": {"address": "http://p:9090"}, "metrics": [QUEUE]}},
    }
    with pytest.raises(SpecError, match=r"unknown variable\(s\) args\.service"):
        parse_spec(spec)
