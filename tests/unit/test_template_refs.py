"""How an analysis is merged from its template references (rollout/template_refs.py): arguments,
overrides, duplicate names, inline checks winning, one provider, where a token is read, and the
template each check came from."""

from __future__ import annotations

import copy

import pytest

from modelrollout.api.spec import parse_spec
from modelrollout.rollout.template_refs import TemplateRefError, resolve

NS = "ml"
PROM = {"address": "http://prometheus.monitoring:9090", "authSecretRef": {"name": "prom", "key": "token"}}
QUEUE = {
    "name": "queue",
    "template": "custom",
    "query": 'sum(my_queue{service="{{args.service}}", track="{{track}}"})',
    "samplesQuery": 'sum(increase(my_requests_total{service="{{args.service}}"}[{{window}}]))',
    "max": 100,
}


def template(spec: dict, *, name="slo", kind="ModelAnalysisTemplate", generation=3) -> dict:
    meta = {"name": name, "generation": generation} | (
        {"namespace": NS} if kind == "ModelAnalysisTemplate" else {}
    )
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": kind,
        "metadata": meta,
        "spec": copy.deepcopy(spec),
    }


SLO = template(
    {
        "prometheus": PROM,
        "args": [{"name": "service"}, {"name": "tier", "value": "gold"}],
        "metrics": [
            {"name": "p99", "template": "latency-p99", "max": 0.5, "window": "2m"},
            {"name": "errors", "template": "error-rate", "max": 0.01},
            QUEUE,
        ],
    }
)


def rollout(analysis: dict, **rollout_fields):
    return parse_spec(
        {
            "model": {"name": "iris", "version": "2", "image": "x:2"},
            "rollout": {"analysis": analysis, **rollout_fields},
        }
    ).rollout


def run(analysis: dict, templates: dict, operator_namespace: str | None = "modelrollout-system", **fields):
    return resolve(
        rollout(analysis, **fields), namespace=NS, templates=templates, operator_namespace=operator_namespace
    )


def ref(name="slo", kind="ModelAnalysisTemplate", **more) -> dict:
    return {"name": name, "kind": kind, **more}


TEMPLATES = {("ModelAnalysisTemplate", "slo"): SLO}


def test_a_template_brings_its_provider_checks_and_argument_values():
    r = run({"templates": [ref(args={"service": "iris"})]}, TEMPLATES)
    assert [c.name for c in r.analysis.metrics] == ["p99", "errors", "queue"]
    assert r.analysis.prometheus.address == PROM["address"] and r.analysis.templates == []
    assert r.secret_namespace is None  # a namespaced template's Secret: the ModelDeployment's namespace
    assert {n: (s.kind, s.name, s.generation) for n, s in r.sources.items()} == {
        n: ("ModelAnalysisTemplate", "slo", 3) for n in ("p99", "errors", "queue")
    }
    assert r.args["queue"] == {"service": "iris", "tier": "gold"}  # the default fills tier


def test_policy_stays_the_model_deployments():
    r = run({"templates": [ref(args={"service": "a"})], "interval": "10s", "minSamples": 50}, TEMPLATES)
    assert (
        r.analysis.interval == "10s" and r.analysis.min_samples == 50 and r.analysis.endpoints == ["/predict"]
    )


def test_a_missing_template_is_an_error_naming_it():
    with pytest.raises(TemplateRefError, match=f"ModelAnalysisTemplate slo not found in namespace {NS}"):
        run({"templates": [ref(args={"service": "a"})]}, {("ModelAnalysisTemplate", "slo"): None})
    with pytest.raises(TemplateRefError, match="ClusterModelAnalysisTemplate org not found"):
        run({"templates": [ref("org", "ClusterModelAnalysisTemplate")]}, {})


def test_a_missing_argument_is_an_error():
    with pytest.raises(TemplateRefError, match=r"needs argument\(s\) service"):
        run({"templates": [ref()]}, TEMPLATES)


def test_an_undeclared_argument_is_an_error():
    with pytest.raises(TemplateRefError, match="declares no argument servce .*declares: service, tier"):
        run({"templates": [ref(args={"servce": "iris", "service": "iris"})]}, TEMPLATES)


def test_an_invalid_template_is_an_error_naming_it():
    broken = template({"metrics": [{"name": "p99", "template": "latency-p99"}]}, name="broken")
    with pytest.raises(
        TemplateRefError, match="ModelAnalysisTemplate broken is invalid: .*at least one of min"
    ):
        run({"prometheus": PROM, "templates": [ref("broken")]}, {("ModelAnalysisTemplate", "broken"): broken})


def test_overrides_replace_only_the_fields_they_set():
    overrides = [
        {"name": "p99", "max": 0.3, "relativeToStable": {"maxRatio": 1.5}},
        {"name": "errors", "window": "5m"},
    ]
    r = run({"templates": [ref(args={"service": "a"}, overrides=overrides)]}, TEMPLATES)
    p99, errors = r.analysis.metrics[0], r.analysis.metrics[1]
    assert p99.max == 0.3 and p99.relative_to_stable.max_ratio == 1.5 and p99.window == "2m"
    assert errors.max == 0.01 and errors.window == "5m"
    assert r.sources["p99"].name == "slo"  # still the template's check


def test_an_override_of_a_check_the_template_lacks_is_an_error():
    with pytest.raises(
        TemplateRefError, match="override of latency: ModelAnalysisTemplate slo has no such check"
    ):
        run({"templates": [ref(args={"service": "a"}, overrides=[{"name": "latency", "max": 1}])]}, TEMPLATES)


def test_an_override_that_breaks_the_check_is_an_error():
    with pytest.raises(TemplateRefError, match=r"override of errors .*min 0.5 is above max 0.01"):
        run(
            {"templates": [ref(args={"service": "a"}, overrides=[{"name": "errors", "min": 0.5}])]}, TEMPLATES
        )


def test_duplicate_check_names_across_templates_are_an_error():
    other = template({"metrics": [{"name": "errors", "template": "error-rate", "max": 0.05}]}, name="other")
    templates = {**TEMPLATES, ("ModelAnalysisTemplate", "other"): other}
    with pytest.raises(
        TemplateRefError, match="check errors is defined by both ModelAnalysisTemplate slo and"
    ):
        run({"templates": [ref(args={"service": "a"}), ref("other")]}, templates)


def test_an_inline_check_with_a_template_checks_name_replaces_it():
    inline = [
        {"name": "errors", "template": "error-rate", "max": 0.001},
        {"name": "p50", "template": "latency-p50", "max": 0.1},
    ]
    r = run({"templates": [ref(args={"service": "a"})], "metrics": inline}, TEMPLATES)
    assert [c.name for c in r.analysis.metrics] == ["p99", "errors", "queue", "p50"]
    assert r.analysis.metrics[1].max == 0.001
    assert "errors" not in r.sources and "p50" not in r.sources  # inline: no template recorded


def test_inline_prometheus_wins_and_keeps_its_token_in_the_model_deployments_namespace():
    inline = {"address": "http://other:9090", "authSecretRef": {"name": "mine"}}
    cluster = template(
        {"prometheus": {**PROM, "authSecretRef": {"name": "central"}}, "metrics": SLO["spec"]["metrics"][:2]},
        name="org",
        kind="ClusterModelAnalysisTemplate",
    )
    r = run(
        {"prometheus": inline, "templates": [ref("org", "ClusterModelAnalysisTemplate")]},
        {("ClusterModelAnalysisTemplate", "org"): cluster},
    )
    assert r.analysis.prometheus.address == "http://other:9090"
    assert r.analysis.prometheus.auth_secret_ref.name == "mine" and r.secret_namespace is None


def test_a_cluster_templates_token_is_read_in_the_operators_namespace_unless_it_names_one():
    def cluster(auth):
        return template(
            {"prometheus": {**PROM, "authSecretRef": auth}, "metrics": SLO["spec"]["metrics"][:2]},
            name="org",
            kind="ClusterModelAnalysisTemplate",
        )

    refs = {"templates": [ref("org", "ClusterModelAnalysisTemplate")]}
    key = ("ClusterModelAnalysisTemplate", "org")
    r = run(refs, {key: cluster({"name": "central"})})
    assert r.secret_namespace == "modelrollout-system"
    assert r.analysis.prometheus.auth_secret_ref.name == "central"
    r = run(refs, {key: cluster({"name": "central", "namespace": "monitoring"})})
    assert r.secret_namespace == "monitoring"
    with pytest.raises(TemplateRefError, match="operator's own is unknown"):
        run(refs, {key: cluster({"name": "central"})}, operator_namespace=None)


def test_templates_naming_different_prometheus_servers_are_an_error():
    other = template(
        {
            "prometheus": {"address": "http://elsewhere:9090"},
            "metrics": [{"name": "p50", "template": "latency-p50", "max": 1}],
        },
        name="other",
    )
    templates = {**TEMPLATES, ("ModelAnalysisTemplate", "other"): other}
    with pytest.raises(TemplateRefError, match="name different Prometheus servers; set analysis.prometheus"):
        run({"templates": [ref(args={"service": "a"}), ref("other")]}, templates)
    # ... which analysis.prometheus settles
    r = run(
        {
            "prometheus": {"address": "http://chosen:9090"},
            "templates": [ref(args={"service": "a"}), ref("other")],
        },
        templates,
    )
    assert r.analysis.prometheus.address == "http://chosen:9090"


def test_a_provider_only_template_with_inline_checks():
    provider = template({"prometheus": PROM}, name="prom")
    r = run(
        {"templates": [ref("prom")], "metrics": [{"name": "p50", "template": "latency-p50", "max": 1}]},
        {("ModelAnalysisTemplate", "prom"): provider},
    )
    assert r.analysis.prometheus.address == PROM["address"] and [c.name for c in r.analysis.metrics] == [
        "p50"
    ]


def test_no_provider_anywhere_is_an_error():
    checks = template({"metrics": [{"name": "p50", "template": "latency-p50", "max": 1}]}, name="checks")
    with pytest.raises(TemplateRefError, match="no Prometheus"):
        run({"templates": [ref("checks")]}, {("ModelAnalysisTemplate", "checks"): checks})


def test_a_template_check_interval_not_shorter_than_the_deadline_is_an_error():
    slow = template(
        {
            "prometheus": PROM,
            "metrics": [{"name": "p50", "template": "latency-p50", "max": 1, "interval": "15m"}],
        },
        name="slow",
    )
    with pytest.raises(
        TemplateRefError, match="check p50: interval 15m must be shorter than progressDeadline 10m"
    ):
        run({"templates": [ref("slow")]}, {("ModelAnalysisTemplate", "slow"): slow})
    r = run({"templates": [ref("slow")]}, {("ModelAnalysisTemplate", "slow"): slow}, progressDeadline="20m")
    assert r.analysis.metrics[0].interval == "15m"


def test_an_analysis_without_references_is_itself():
    analysis = {"prometheus": PROM, "metrics": [{"name": "p50", "template": "latency-p50", "max": 1}]}
    r = run(analysis, {})
    assert r.analysis == rollout(analysis).analysis and r.sources == {} and r.secret_namespace is None
