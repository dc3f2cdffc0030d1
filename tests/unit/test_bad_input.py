"""Malformed specs are rejected at apply time by the generated schema (OpenAPI + CEL), and
the operator's own parse agrees, with a message that names the field."""

from __future__ import annotations

import copy

import pytest

from modelrollout.api.spec import SpecError, parse_spec
from tests.support.crdschema import load_schema, model_deployment, validate

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
CUSTOM = {"name": "x", "template": "custom", "query": "sum(rate(x[{{interval}}])) or vector(0)", "max": 0.1}
P99 = {"name": "p99", "template": "latency-p99", "max": 0.5}


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
    # --- issue 12: every check has a sample gate; the interval fits the deadline -------------------
    (
        "custom-metric-without-samples-query",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [CUSTOM]}}),
        "a custom metric needs samplesQuery",
    ),
    (
        "custom-metric-opting-out-without-reason",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{**CUSTOM, "minSamples": 0}]}}),
        "minSamples: 0 needs minSamplesReason",
    ),
    (
        "builtin-metric-opting-out-without-reason",
        with_(
            "rollout",
            {
                "analysis": {
                    **ROLLOUT_ANALYSIS,
                    "metrics": [{**ROLLOUT_ANALYSIS["metrics"][0], "minSamples": 0}],
                }
            },
        ),
        "minSamples: 0 needs minSamplesReason",
    ),
    (
        "analysis-min-samples-zero",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "minSamples": 0}}),
        "minSamples",
    ),
    (
        "interval-longer-than-deadline",
        with_("rollout", {"progressDeadline": "10m", "analysis": {**ROLLOUT_ANALYSIS, "interval": "15m"}}),
        "analysis.interval must be shorter than progressDeadline",
    ),
    (
        "interval-equal-to-default-deadline",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "10m"}}),
        "analysis.interval must be shorter than progressDeadline",
    ),
    (
        "interval-equal-to-deadline-in-other-units",
        with_("rollout", {"progressDeadline": "1.5m", "analysis": {**ROLLOUT_ANALYSIS, "interval": "1m30s"}}),
        "analysis.interval must be shorter than progressDeadline",
    ),
    (
        "deadline-shorter-than-default-interval",
        with_("rollout", {"progressDeadline": "250ms", "analysis": ROLLOUT_ANALYSIS}),
        "analysis.interval must be shorter than progressDeadline",
    ),
    (
        "empty-relative-threshold",
        with_(
            "rollout",
            {
                "analysis": {
                    **ROLLOUT_ANALYSIS,
                    "metrics": [{"name": "p99", "template": "latency-p99", "relativeToStable": {}}],
                }
            },
        ),
        "relativeToStable needs at least one of",
    ),
    (
        "unknown-inconclusive-policy",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "onInconclusive": "hope"}}),
        "onInconclusive",
    ),
    (
        "negative-consecutive-error-limit",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "consecutiveErrorLimit": -1}}),
        "consecutiveErrorLimit",
    ),
    # --- issue 13: durations Prometheus reads, schedules a CronJob takes, template references ---
    (
        "fractional-interval",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "1.5m"}}),
        "interval",
    ),
    ("zero-interval", with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "0s"}}), "interval"),
    (
        "interval-below-1s",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "500ms"}}),
        "interval",
    ),
    ("interval-in-days", with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "1d"}}), "interval"),
    (
        "check-window-zero",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{**P99, "window": "0s"}]}}),
        "window",
    ),
    (
        "check-window-fraction",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{**P99, "window": "2.5m"}]}}),
        "window",
    ),
    (
        "check-interval-units-out-of-order",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{**P99, "interval": "30s1m"}]}}),
        "interval",
    ),
    (
        "check-interval-beyond-deadline",
        with_(
            "rollout",
            {
                "progressDeadline": "5m",
                "analysis": {**ROLLOUT_ANALYSIS, "metrics": [{**P99, "interval": "5m"}]},
            },
        ),
        "every check's interval must be shorter than progressDeadline",
    ),
    (
        "schedule-out-of-range",
        with_("batch", {**BATCH, "schedule": "61 25 * * *"}, with_("mode", "batch")),
        "schedule",
    ),
    (
        "schedule-sunday-as-7",
        with_("batch", {**BATCH, "schedule": "0 0 * * 7"}, with_("mode", "batch")),
        "schedule",
    ),
    (
        "schedule-step-zero",
        with_("batch", {**BATCH, "schedule": "*/0 2 * * *"}, with_("mode", "batch")),
        "schedule",
    ),
    (
        "schedule-six-fields",
        with_("batch", {**BATCH, "schedule": "0 0 2 * * *"}, with_("mode", "batch")),
        "schedule",
    ),
    (
        "schedule-bad-month",
        with_("batch", {**BATCH, "schedule": "0 2 1 foo *"}, with_("mode", "batch")),
        "schedule",
    ),
    ("time-zone-local", with_("batch", {**BATCH, "timeZone": "Local"}, with_("mode", "batch")), "timeZone"),
    (
        "time-zone-shape",
        with_("batch", {**BATCH, "timeZone": "Europe/ Berlin"}, with_("mode", "batch")),
        "timeZone",
    ),
    (
        "time-zone-unknown",
        with_("batch", {**BATCH, "timeZone": "Mars/Olympus"}, with_("mode", "batch")),
        "timeZone must be an IANA time zone",
    ),
    (
        "time-zone-typo",
        with_("batch", {**BATCH, "timeZone": "Europe/Berlinn"}, with_("mode", "batch")),
        "timeZone must be an IANA time zone",
    ),
    (
        "analysis-without-provider-or-templates",
        with_("rollout", {"analysis": {"metrics": ROLLOUT_ANALYSIS["metrics"]}}),
        "analysis needs prometheus, or templates",
    ),
    (
        "analysis-without-checks-or-templates",
        with_("rollout", {"analysis": {"prometheus": ROLLOUT_ANALYSIS["prometheus"]}}),
        "analysis needs metrics, or templates",
    ),
    (
        "endpoint-not-a-path",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "endpoints": ["predict"]}}),
        "endpoints",
    ),
    ("endpoints-empty", with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "endpoints": []}}), "endpoints"),
    (
        "endpoint-with-quote",
        with_("rollout", {"analysis": {**ROLLOUT_ANALYSIS, "endpoints": ['/predict"} or vector(1) #']}}),
        "endpoints",
    ),
    (
        "template-kind-unknown",
        with_("rollout", {"analysis": {"templates": [{"name": "slo", "kind": "AnalysisTemplate"}]}}),
        "kind",
    ),
    (
        "template-referenced-twice",
        with_("rollout", {"analysis": {"templates": [{"name": "slo"}, {"name": "slo"}]}}),
        "templates",
    ),
    (
        "override-changing-nothing",
        with_("rollout", {"analysis": {"templates": [{"name": "slo", "overrides": [{"name": "p99"}]}]}}),
        "an override needs at least one of",
    ),
    (
        "override-window-zero",
        with_(
            "rollout",
            {"analysis": {"templates": [{"name": "slo", "overrides": [{"name": "p99", "window": "0s"}]}]}},
        ),
        "window",
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


# Specs using what issue 12 added, which both the schema and the operator must accept.
GOOD_ROLLOUTS = [
    (
        "custom-metric-with-samples-query",
        {
            "analysis": {
                **ROLLOUT_ANALYSIS,
                "metrics": [{**CUSTOM, "samplesQuery": "sum(increase(n[{{interval}}]))"}],
            }
        },
    ),
    (
        "custom-metric-opting-out-with-reason",
        {
            "analysis": {
                **ROLLOUT_ANALYSIS,
                "metrics": [
                    {**CUSTOM, "minSamples": 0, "minSamplesReason": "a probe: one sample is the signal"}
                ],
            }
        },
    ),
    (
        "per-check-min-samples-and-policies",
        {
            "progressDeadline": "2m",
            "analysis": {
                **ROLLOUT_ANALYSIS,
                "interval": "90s",
                "onInconclusive": "pause",
                "consecutiveErrorLimit": 0,
                "metrics": [{**ROLLOUT_ANALYSIS["metrics"][0], "minSamples": 100}],
            },
        },
    ),
    (
        "long-pause-beyond-the-deadline",
        {"progressDeadline": "1m", "steps": [{"setWeight": 10, "pause": "1h"}]},
    ),
    (
        "interval-just-below-deadline",
        {"progressDeadline": "1h30m", "analysis": {**ROLLOUT_ANALYSIS, "interval": "89m"}},
    ),
    # issue 13
    ("templates-only", {"analysis": {"templates": [{"name": "slo", "args": {"service": "iris"}}]}}),
    (
        "templates-with-overrides-and-inline",
        {
            "analysis": {
                **ROLLOUT_ANALYSIS,
                "templates": [
                    {"name": "slo", "overrides": [{"name": "errors", "max": 0.02, "window": "2m"}]},
                    {"name": "org-wide", "kind": "ClusterModelAnalysisTemplate"},
                ],
            }
        },
    ),
    (
        "endpoints-of-a-classify-bento",
        {"analysis": {**ROLLOUT_ANALYSIS, "endpoints": ["/classify", "/v1.predict"]}},
    ),
    (
        "per-check-interval-and-window",
        {"analysis": {**ROLLOUT_ANALYSIS, "metrics": [{**P99, "interval": "1m", "window": "5m"}]}},
    ),
    ("milliseconds-above-a-second", {"analysis": {**ROLLOUT_ANALYSIS, "interval": "1500ms"}}),
]
GOOD_BATCH = [
    (
        "schedule-with-names-and-steps",
        {"schedule": "0,30 9-17/2 * jan-mar MON-FRI", "timeZone": "Europe/Berlin"},
    ),
    ("schedule-macro", {"schedule": "@daily", "timeZone": "UTC"}),
    ("schedule-question-mark", {"schedule": "0 0 ? * sun"}),
]


@pytest.mark.parametrize("rollout", [r for _, r in GOOD_ROLLOUTS], ids=[i for i, _ in GOOD_ROLLOUTS])
def test_rollout_safety_fields_are_accepted_by_schema_and_operator(rollout):
    spec = with_("rollout", rollout)
    _, errors = validate(model_deployment(spec))
    assert errors == []
    parse_spec(spec)


@pytest.mark.parametrize("batch", [b for _, b in GOOD_BATCH], ids=[i for i, _ in GOOD_BATCH])
def test_schedules_and_time_zones_a_cronjob_takes_are_accepted(batch):
    spec = with_("batch", {**BATCH, **batch}, with_("mode", "batch"))
    _, errors = validate(model_deployment(spec))
    assert errors == []
    parse_spec(spec)


def test_the_operator_also_looks_an_unknown_time_zone_up():
    """Refused at apply time by the CRD's list of IANA names, and by the operator's own parse
    (the same list) should an object get past an older CRD: a Degraded condition, nothing applied."""
    spec = with_("batch", {**BATCH, "timeZone": "Mars/Olympus"}, with_("mode", "batch"))
    with pytest.raises(SpecError, match=r"spec\.batch\.timeZone: .*not in the IANA time zone database"):
        parse_spec(spec)


def test_operator_only_check_backwards_cron_range():
    spec = with_("batch", {**BATCH, "schedule": "0 5-2 * * *"}, with_("mode", "batch"))
    _, errors = validate(model_deployment(spec))
    assert errors == []
    with pytest.raises(
        SpecError, match=r"spec\.batch\.schedule: .*hour: the range '5-2' starts after it ends"
    ):
        parse_spec(spec)


def test_new_rollout_rules_hold_on_the_rollout_default():
    """The API server runs every rule against the schema's default of spec.rollout (not
    defaulted further); the rules added for issue 12 must hold even on a bare `{}`, and on a
    bare check. (The generated default is the whole object: test_crd checks every rule on it.)"""
    import celpy

    from modelrollout.api import checks
    from modelrollout.api import rollout as api

    ours = {api.INTERVAL_BEYOND_DEADLINE, checks.CUSTOM_NEEDS_SAMPLES, checks.ZERO_SAMPLES_NEEDS_REASON}
    spec_schema = load_schema()["properties"]["spec"]
    rollout = spec_schema["properties"]["rollout"]
    check = rollout["properties"]["analysis"]["properties"]["metrics"]["items"]
    env = celpy.Environment()
    checked = 0
    for node, value in ((rollout, {}), (check, {"name": "m", "template": "latency-p99", "max": 1})):
        for rule in node["x-kubernetes-validations"]:
            if rule["message"] in ours:
                assert env.program(env.compile(rule["rule"])).evaluate({"self": celpy.json_to_cel(value)})
                checked += 1
    assert checked == 3


def test_durations_beyond_gos_range_are_refused_by_the_operator():
    """Go's time.Duration, and so the API server's CEL duration(), ends at ~2562047h: the
    operator refuses longer. (The API server's rule evaluation errors on such a value, which
    rejects it; cel-python's durations reach 10000 years, so the local schema check cannot.)"""
    with pytest.raises(SpecError, match="longer than the longest duration"):
        parse_spec(with_("rollout", {"progressDeadline": "9999999h", "analysis": ROLLOUT_ANALYSIS}))
