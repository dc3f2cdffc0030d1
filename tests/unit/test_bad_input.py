"""Malformed specs are rejected at apply time by the generated schema (OpenAPI + CEL), and
the operator's own parse agrees, with a message that names the field."""

from __future__ import annotations

import copy

import pytest

from modelrollout.api.spec import SpecError, parse_spec
from tests.support.crdschema import model_deployment, validate

VALID = {
    "model": {"name": "iris", "version": "1.0.0", "image": "example.com/iris:1.0.0"},
    "serving": {"replicas": 2},
}
BATCH = {
    "schedule": "0 2 * * *",
    "input": {"format": "parquet", "path": "/data/in.parquet", "keyColumns": ["id"]},
}
ROLLOUT_ANALYSIS = {
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
}


def with_(path: str, value, base=None):
    spec = copy.deepcopy(base or VALID)
    node = spec
    *parents, last = path.split(".")
    for key in parents:
        node = node.setdefault(key, {})
    node[last] = value
    return spec


# (id, spec, fragment the schema's message contains)
BAD = [
    ("replicas-wrong-type", with_("serving.replicas", "two"), "serving.replicas"),
    ("replicas-negative", with_("serving.replicas", -1), "serving.replicas"),
    ("replicas-too-many", with_("serving.replicas", 100000), "serving.replicas"),
    ("unknown-mode", with_("mode", "streaming"), "mode"),
    ("empty-image", with_("model.image", ""), "model.image"),
    ("image-with-space", with_("model.image", "iris 1.0"), "model.image"),
    ("missing-model", {"serving": {"replicas": 1}}, "model"),
    ("missing-version", {"model": {"name": "iris", "image": "x:1"}}, "version"),
    ("version-with-slash", with_("model.version", "1/0"), "model.version"),
    ("model-name-uppercase", with_("model.name", "Iris"), "model.name"),
    ("bad-cpu-quantity", with_("serving.resources", {"requests": {"cpu": "two cores"}}), "requests.cpu"),
    ("negative-memory", with_("serving.resources", {"limits": {"memory": "-1Gi"}}), "limits.memory"),
    ("port-zero", with_("serving.port", 0), "serving.port"),
    ("port-too-high", with_("serving.port", 70000), "serving.port"),
    (
        "min-above-max",
        with_("serving.autoscaling", {"minReplicas": 5, "maxReplicas": 2}),
        "minReplicas must be less",
    ),
    (
        "cpu-target-above-100",
        with_("serving.autoscaling", {"targetCPUUtilizationPercentage": 150}),
        "targetCPU",
    ),
    ("unknown-field", with_("serving.replcias", 3), "replcias"),
    ("batch-without-schedule-block", with_("mode", "batch"), "need spec.batch"),
    ("bad-schedule", with_("batch", {**BATCH, "schedule": "every day"}, with_("mode", "batch")), "schedule"),
    (
        "no-key-columns",
        with_("batch", {**BATCH, "input": {"path": "/x", "keyColumns": []}}, with_("mode", "hybrid")),
        "keyColumns",
    ),
    (
        "sql-without-query",
        with_("batch", {**BATCH, "input": {"format": "sql", "keyColumns": ["id"]}}, with_("mode", "batch")),
        "format sql needs query",
    ),
    ("shards-zero", with_("batch", {**BATCH, "shards": 0}, with_("mode", "batch")), "shards"),
    (
        "postgres-without-secret",
        with_("batch", {**BATCH, "store": {"type": "postgres"}}, with_("mode", "batch")),
        "postgres store needs dsnSecretRef",
    ),
    (
        "env-value-and-from",
        with_(
            "serving.env",
            [{"name": "A", "value": "1", "valueFrom": {"secretKeyRef": {"name": "s", "key": "k"}}}],
        ),
        "either value or valueFrom",
    ),
    ("bad-toleration-effect", with_("serving.tolerations", [{"key": "k", "effect": "Sometimes"}]), "effect"),
    ("step-weight-over-100", with_("rollout", {"steps": [{"setWeight": 150}]}), "setWeight"),
    ("bad-pause-duration", with_("rollout", {"steps": [{"setWeight": 10, "pause": "two minutes"}]}), "pause"),
    (
        "steps-and-stepweight",
        with_("rollout", {"steps": [{"setWeight": 10}], "stepWeight": 10}),
        "either steps or stepWeight",
    ),
    ("gateway-router-without-gateway", with_("rollout", {"router": "gatewayAPI"}), "needs rollout.gateway"),
    (
        "custom-metric-without-query",
        with_(
            "rollout",
            {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{"name": "x", "template": "custom", "max": 1}]}},
        ),
        "custom metric needs a query",
    ),
    (
        "metric-without-threshold",
        with_(
            "rollout",
            {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{"name": "x", "template": "error-rate"}]}},
        ),
        "at least one of min, max",
    ),
    (
        "prometheus-not-a-url",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "prometheus": {"address": "prometheus:9090"}}}),
        "address",
    ),
    (
        "bad-interval",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "5 minutes"}}),
        "interval",
    ),
    ("mode-wrong-type", with_("mode", 3), "mode"),
    (
        "duplicate-metric-names",
        with_(
            "rollout",
            {
                "analysis": {
                    **ROLLOUT_ANALYSIS,
                    "metrics": [
                        {"name": "p99", "template": "latency-p99", "max": 0.5},
                        {"name": "p99", "template": "error-rate", "max": 0.01},
                    ],
                }
            },
        ),
        "metrics",
    ),
]


def test_the_valid_spec_is_accepted_and_defaulted():
    obj, errors = validate(model_deployment(VALID))
    assert errors == []
    spec = obj["spec"]
    assert spec["mode"] == "online"
    assert spec["serving"]["port"] == 3000
    assert spec["serving"]["resources"]["requests"] == {"cpu": "100m", "memory": "256Mi"}
    assert spec["rollout"]["router"] == "replicas" and spec["rollout"]["progressDeadline"] == "10m"
    # the operator's parse of the defaulted object gives the same defaults
    parsed = parse_spec(spec)
    assert parsed.to_wire()["serving"]["resources"] == spec["serving"]["resources"]
    assert parsed.rollout.max_weight == spec["rollout"]["maxWeight"]


@pytest.mark.parametrize(("spec", "fragment"), [(s, f) for _, s, f in BAD], ids=[i for i, _, _ in BAD])
def test_schema_rejects_malformed_spec(spec, fragment):
    _, errors = validate(model_deployment(spec))
    assert errors, "the schema accepted a malformed spec"
    assert any(fragment in e for e in errors), errors


@pytest.mark.parametrize(("spec", "fragment"), [(s, f) for _, s, f in BAD], ids=[i for i, _, _ in BAD])
def test_operator_parse_rejects_malformed_spec_readably(spec, fragment):
    with pytest.raises(SpecError) as info:
        parse_spec(spec)
    message = str(info.value)
    assert message.startswith("spec.") or "spec." in message
    assert len(message) < 2000


def test_name_longer_than_45_is_rejected():
    _, errors = validate(model_deployment(VALID, name="a" * 46))
    assert any("at most 45 characters" in e for e in errors)
    _, errors = validate(model_deployment(VALID, name="a" * 45))
    assert errors == []


@pytest.mark.parametrize("name", ["1iris", "iris.v2", "iris-"])
def test_name_that_is_no_service_name_is_rejected(name):
    _, errors = validate(model_deployment(VALID, name=name))
    assert any("DNS-1035" in e for e in errors)


def test_operator_only_check_request_above_limit():
    """The schema cannot compare quantities; the operator reports it (Degraded + event)."""
    spec = with_("serving.resources", {"requests": {"cpu": "2"}, "limits": {"cpu": "1"}})
    _, errors = validate(model_deployment(spec))
    assert errors == []
    with pytest.raises(SpecError, match="cpu request 2 exceeds its limit 1"):
        parse_spec(spec)
