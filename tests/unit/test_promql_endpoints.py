"""The endpoints a rollout judges are in the spec (`analysis.endpoints`), rendered into a regex
matcher from escaped literals; template arguments render into queries like other variables."""

from __future__ import annotations

import re
from datetime import UTC, datetime

import pytest

from modelrollout.api.spec import parse_spec
from modelrollout.rollout import analysis
from modelrollout.rollout.templates import SAMPLES, TEMPLATES, endpoints_regex, regex_literal, render

NOW = datetime(2026, 12, 6, tzinfo=UTC)


def matcher(query: str) -> str:
    """The endpoint matcher's string literal as PromQL reads it (escapes undone)."""
    (literal,) = set(re.findall(r'endpoint=~"((?:[^"\\]|\\.)*)"', query))
    return re.sub(r"\\(.)", r"\1", literal)


@pytest.mark.parametrize(
    ("endpoints", "matches", "misses"),
    [
        (["/predict"], ["/predict"], ["/predictx", "/classify", "x/predict"]),
        (["/classify"], ["/classify"], ["/predict"]),
        (["/v1.predict"], ["/v1.predict"], ["/v1xpredict"]),  # the dot is a dot
        (["/predict", "/classify"], ["/predict", "/classify"], ["/predict|/classify", "/"]),
        (["/a+b", "/c(d)", "/e[f]"], ["/a+b", "/c(d)", "/e[f]"], ["/aab", "/cd"]),
    ],
)
def test_the_endpoint_matcher_matches_exactly_the_listed_paths(endpoints, matches, misses):
    variables = analysis.variables(
        namespace="ml", name="iris", track="canary", version="2", interval="30s", endpoints=endpoints
    )
    for template in (TEMPLATES["latency-p99"], TEMPLATES["error-rate"], SAMPLES["requests"]):
        regex = matcher(render(template, variables))
        assert regex == endpoints_regex(endpoints)
        for path in matches:
            assert re.fullmatch(regex, path), (regex, path)  # Prometheus anchors regex matchers
        for path in misses:
            assert not re.fullmatch(regex, path), (regex, path)


def test_a_regex_literal_escapes_every_metacharacter():
    text = r"/a.b+c*d?e(f)g|h[i]j{k}l^m$n\o"
    assert re.fullmatch(regex_literal(text), text)
    assert not re.fullmatch(regex_literal(text), text.replace(".", "x"))


def test_the_default_endpoint_is_predict():
    spec = parse_spec(
        {
            "model": {"name": "iris", "version": "1", "image": "x:1"},
            "rollout": {
                "analysis": {
                    "prometheus": {"address": "http://p:9090"},
                    "metrics": [{"name": "p99", "template": "latency-p99", "max": 1}],
                }
            },
        }
    )
    assert spec.rollout.analysis.endpoints == ["/predict"]


class Recorder:
    def __init__(self):
        self.queries: list[str] = []

    def query(self, promql: str) -> float:
        self.queries.append(promql)
        return 50.0


def test_a_classify_bento_is_judged_on_classify():
    spec = parse_spec(
        {
            "model": {"name": "iris", "version": "2", "image": "x:2"},
            "rollout": {
                "analysis": {
                    "prometheus": {"address": "http://p:9090"},
                    "endpoints": ["/classify"],
                    "metrics": [
                        {"name": "p99", "template": "latency-p99", "max": 100},
                        {"name": "errors", "template": "error-rate", "max": 100},
                    ],
                }
            },
        }
    )
    provider = Recorder()
    results = analysis.run(
        spec.rollout.analysis,
        provider,
        namespace="ml",
        name="iris",
        canary_version="2",
        stable_version="1",
        now=NOW,
    )
    assert [r.verdict for r in results] == ["pass", "pass"]
    request_queries = [q for q in provider.queries if "bentoml_service_request" in q]
    assert request_queries and all('endpoint=~"/classify"' in q for q in request_queries)
    assert not any("/predict" in q for q in provider.queries)


def test_template_arguments_render_into_queries_escaped():
    check_query = 'sum(my_queue{service="{{args.service}}", track="{{track}}"})'
    variables = analysis.variables(
        namespace="ml", name="iris", track="canary", version="2", interval="30s", args={"service": 'we"ird'}
    )
    assert render(check_query, variables) == 'sum(my_queue{service="we\\"ird", track="canary"})'


def test_a_query_window_is_the_checks_and_interval_stays_an_alias():
    variables = analysis.variables(
        namespace="ml", name="iris", track="canary", version="2", interval="30s", window="5m"
    )
    assert render("rate(x[{{window}}]) / rate(x[{{interval}}])", variables) == "rate(x[5m]) / rate(x[5m])"
