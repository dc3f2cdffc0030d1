"""PromQL templates for the built-in checks, rendered strictly.

BentoML's metrics (`bentoml_service_request_*`, labels `endpoint`, `http_response_code`) are
selected by the target labels a PodMonitor (or the scrape config) adds: `namespace`,
`modelrollout_deployment`, `track`; requests also by the bento's API paths (`analysis.endpoints`,
a regex matcher built from escaped literals). Ranges are the check's `{{window}}`. The
ground-truth checks (accuracy, mae, rmse, precision, recall, false-positive-rate) read the
figures the serving pods export, by `model_version`: `rollout/ground_truth.py`. A missing
variable is an error, never an empty string: an empty selector would silently measure every
model in the cluster.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

from modelrollout.api.checks import VARIABLE
from modelrollout.rollout import ground_truth as G

SELECTOR = 'namespace="{{namespace}}", modelrollout_deployment="{{name}}", track="{{track}}"'
REQUESTS = f'bentoml_service_request_total{{{SELECTOR}, endpoint=~"{{{{endpoints}}}}"}}'
DURATION_BUCKETS = (
    f'bentoml_service_request_duration_seconds_bucket{{{SELECTOR}, endpoint=~"{{{{endpoints}}}}"}}'
)
WINDOW = "[{{window}}]"

TEMPLATES: dict[str, str] = {
    "latency-p50": f"histogram_quantile(0.5, sum by (le) (rate({DURATION_BUCKETS}{WINDOW})))",
    "latency-p95": f"histogram_quantile(0.95, sum by (le) (rate({DURATION_BUCKETS}{WINDOW})))",
    "latency-p99": f"histogram_quantile(0.99, sum by (le) (rate({DURATION_BUCKETS}{WINDOW})))",
    # `or vector(0)`: no 5xx series at all means zero errors, not "no data"; an empty
    # denominator (no requests) still yields no data, which is inconclusive.
    "error-rate": (
        f'(sum(rate({REQUESTS[:-1]}, http_response_code=~"5.."}}{WINDOW})) or vector(0))'
        f" / sum(rate({REQUESTS}{WINDOW}))"
    ),
}

# How many observations stand behind a value (compared with minSamples). A custom check names
# its own (`samplesQuery`), or opts out explicitly with minSamples: 0 and a reason.
SAMPLES: dict[str, str] = {
    "requests": f"sum(increase({REQUESTS}{WINDOW}))",
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
    """A value inside a PromQL double-quoted string."""
    return value.replace("\\", "\\\\").replace('"', '\\"')


# RE2's metacharacters (Prometheus' regex matchers are RE2, fully anchored).
_REGEX_META = frozenset("\\.+*?()|[]{}^$")


def regex_literal(text: str) -> str:
    """`text` as an RE2 regex matching exactly it."""
    return "".join("\\" + c if c in _REGEX_META else c for c in text)


def endpoints_regex(endpoints: Iterable[str]) -> str:
    """`/predict|/v1\\.classify`: matches exactly these paths (rendered into `endpoint=~"..."`,
    where `render` escapes it once more for the PromQL string)."""
    return "|".join(regex_literal(e) for e in endpoints)


def render(template: str, variables: Mapping[str, str]) -> str:
    missing = sorted({m.group(1) for m in VARIABLE.finditer(template)} - set(variables))
    if missing:
        raise TemplateError(f"query uses undefined variable(s) {', '.join(missing)}: {template}")
    return VARIABLE.sub(lambda m: _escape(str(variables[m.group(1)])), template)


def query_for(template: str, custom_query: str | None) -> str:
    if template == "custom":
        return custom_query or ""
    return TEMPLATES.get(template) or G.TEMPLATES[template]
