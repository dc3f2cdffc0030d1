"""PromQL templates for the built-in checks, rendered strictly.

BentoML's metrics (`bentoml_service_request_*`, labels `endpoint`, `http_response_code`) are
selected by the target labels a PodMonitor (or the scrape config) adds: `namespace`,
`modelrollout_deployment`, `track`. The ground-truth checks (accuracy, mae, rmse, precision,
recall, false-positive-rate) read the figures the serving pods export, by `model_version`:
`rollout/ground_truth.py`. A missing variable is an error, never an empty string: an empty
selector would silently measure every model in the cluster.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from modelrollout.rollout import ground_truth as G

VARIABLE = re.compile(r"\{\{\s*([A-Za-z_][A-Za-z0-9_]*)\s*\}\}")
SELECTOR = 'namespace="{{namespace}}", modelrollout_deployment="{{name}}", track="{{track}}"'
REQUESTS = f'bentoml_service_request_total{{{SELECTOR}, endpoint="{{{{endpoint}}}}"}}'
DURATION_BUCKETS = (
    f'bentoml_service_request_duration_seconds_bucket{{{SELECTOR}, endpoint="{{{{endpoint}}}}"}}'
)

TEMPLATES: dict[str, str] = {
    "latency-p50": f"histogram_quantile(0.5, sum by (le) (rate({DURATION_BUCKETS}[{{{{interval}}}}])))",
    "latency-p95": f"histogram_quantile(0.95, sum by (le) (rate({DURATION_BUCKETS}[{{{{interval}}}}])))",
    "latency-p99": f"histogram_quantile(0.99, sum by (le) (rate({DURATION_BUCKETS}[{{{{interval}}}}])))",
    # `or vector(0)`: no 5xx series at all means zero errors, not "no data"; an empty
    # denominator (no requests) still yields no data, which is inconclusive.
    "error-rate": (
        f'(sum(rate({REQUESTS[:-1]}, http_response_code=~"5.."}}[{{{{interval}}}}])) or vector(0))'
        f" / sum(rate({REQUESTS}[{{{{interval}}}}]))"
    ),
}

# How many observations stand behind a value (compared with minSamples). A custom check names
# its own (`samplesQuery`), or opts out explicitly with minSamples: 0 and a reason.
SAMPLES: dict[str, str] = {
    "requests": f"sum(increase({REQUESTS}[{{{{interval}}}}]))",
}


def samples_query_for(template: str) -> str | None:
    if G.is_ground_truth(template):
        return G.SAMPLES[template]
    if template == "custom":
        return None
    return SAMPLES["requests"]


class TemplateError(ValueError):
    """A query refers to a variable nobody provides."""


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"')


def render(template: str, variables: Mapping[str, str]) -> str:
    missing = sorted({m.group(1) for m in VARIABLE.finditer(template)} - set(variables))
    if missing:
        raise TemplateError(f"query uses undefined variable(s) {', '.join(missing)}: {template}")
    return VARIABLE.sub(lambda m: _escape(str(variables[m.group(1)])), template)


def query_for(template: str, custom_query: str | None) -> str:
    if template == "custom":
        return custom_query or ""
    return TEMPLATES.get(template) or G.TEMPLATES[template]
