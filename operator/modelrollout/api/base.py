"""Shared pydantic base and constrained types of the ModelDeployment API.

The pydantic models are the single source of truth: the CRD's openAPIV3Schema is generated
from them (`modelrollout.api.crd`), and the operator parses every object through them, so the
API server and the operator agree on what a valid spec is.
"""

from __future__ import annotations

import re
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, WithJsonSchema
from pydantic.alias_generators import to_camel


class ApiModel(BaseModel):
    """Base of every API object: camelCase on the wire, unknown fields rejected.

    The API server prunes unknown fields before the operator sees the object, so
    `extra="forbid"` only fires for objects that did not come through a structural schema
    (tests, `modelrollout render` of a local file): there it catches typos early.
    """

    model_config = ConfigDict(
        alias_generator=to_camel,
        populate_by_name=True,
        extra="forbid",
        frozen=True,
    )

    def to_wire(self) -> dict[str, Any]:
        """The object as it appears in Kubernetes (camelCase, unset optionals left out)."""
        return self.model_dump(by_alias=True, exclude_none=True, mode="json")


# --- quantities ------------------------------------------------------------------------------

# The Kubernetes quantity grammar (k8s.io/apimachinery/pkg/api/resource), anchored, without
# the minus sign: no resource amount in this API may be negative.
QUANTITY_PATTERN = (
    r"^\+?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))"
    r"(([KMGTPE]i)|[numkMGTPE]|([eE](\+|-)?(([0-9]+(\.[0-9]*)?)|(\.[0-9]+))))?$"
)
_QUANTITY_RE = re.compile(QUANTITY_PATTERN)
_BINARY = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "Ti": 2**40, "Pi": 2**50, "Ei": 2**60}
_DECIMAL = {
    "n": Decimal("1e-9"),
    "u": Decimal("1e-6"),
    "m": Decimal("1e-3"),
    "": Decimal(1),
    "k": Decimal("1e3"),
    "M": Decimal("1e6"),
    "G": Decimal("1e9"),
    "T": Decimal("1e12"),
    "P": Decimal("1e15"),
    "E": Decimal("1e18"),
}


def parse_quantity(value: str | int | float) -> Decimal:
    """A Kubernetes quantity as a Decimal in base units (cores, bytes)."""
    text = str(value).strip()
    if not _QUANTITY_RE.match(text):
        raise ValueError(f"{value!r} is not a Kubernetes quantity (e.g. 500m, 1, 256Mi, 1Gi)")
    for suffix, factor in _BINARY.items():
        if text.endswith(suffix):
            return Decimal(text[: -len(suffix)]) * factor
    if text[-1] in _DECIMAL and text[-1] not in "eE":
        return Decimal(text[:-1]) * _DECIMAL[text[-1]]
    try:
        return Decimal(text)
    except InvalidOperation as exc:  # pragma: no cover - the regex admits only decimals
        raise ValueError(f"{value!r} is not a Kubernetes quantity") from exc


def _check_quantity(value: str | int) -> str:
    parse_quantity(value)
    return str(value)


Quantity = Annotated[
    str | int,
    AfterValidator(_check_quantity),
    # The only anyOf a structural schema admits is exactly [integer, string]; the pattern
    # (applied to strings) and the minimum (applied to integers) sit beside it.
    WithJsonSchema(
        {
            "x-kubernetes-int-or-string": True,
            "anyOf": [{"type": "integer"}, {"type": "string"}],
            "pattern": QUANTITY_PATTERN,
            "minimum": 0,
        }
    ),
]

# --- durations -------------------------------------------------------------------------------

DURATION_PATTERN = r"^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$"
_DURATION_PART = re.compile(r"([0-9]+(?:\.[0-9]+)?)(ms|s|m|h)")
_UNIT_SECONDS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0}
# Go's time.Duration (and so CEL's duration() in the API server) ends at 2^63-1 ns, ~2562047h.
MAX_DURATION_SECONDS = (2**63 - 1) / 1e9


def parse_duration(text: str) -> float:
    """A Go-style duration ("30s", "2m", "1h30m", "250ms", "1.5m") in seconds.

    The grammar is a subset of Go's time.ParseDuration, which the API server's CEL duration()
    uses, so a rule comparing durations in the CRD reads them as the operator does."""
    if not re.fullmatch(DURATION_PATTERN, text):
        raise ValueError(f"{text!r} is not a duration (e.g. 30s, 2m, 1h30m, 250ms)")
    seconds = sum(float(n) * _UNIT_SECONDS[unit] for n, unit in _DURATION_PART.findall(text))
    if seconds > MAX_DURATION_SECONDS:
        raise ValueError(f"{text!r} is longer than the longest duration (2562047h)")
    return seconds


Duration = Annotated[
    str,
    Field(pattern=DURATION_PATTERN, max_length=32),
    AfterValidator(lambda v: (parse_duration(v), v)[1]),
]

# A duration that ends up in PromQL (a range selector) or sets how often a query runs. It must
# parse in both grammars that read it: Prometheus' model.ParseDuration (integers only, units in
# the order y w d h m s ms, each at most once; a range must be > 0) and Go's time.ParseDuration
# (the API server's CEL duration(), which knows no d, w or y). The intersection: integers with
# h, m, s, ms in that order. "1.5m" and "0s" pass Go but Prometheus refuses them as ranges.
PROM_DURATION_PATTERN = r"^([0-9]+h)?([0-9]+m)?([0-9]+s)?([0-9]+ms)?$"
# The shortest window or interval accepted. Documented against a 1 s scrape interval (the test
# suite's): a rate() needs two samples in its range, so in production make windows at least
# four scrape intervals (e.g. >= 1m at Prometheus' common 15 s); the operator cannot see your
# scrape interval, so that part is advice, not a rule.
MIN_PROM_DURATION_SECONDS = 1.0
PROM_DURATION_MESSAGE = (
    "must be a Prometheus duration of at least 1s: integers with units h, m, s, ms in that order "
    "(e.g. 30s, 1m30s, 2h); no fractions, no 0s, no d/w/y"
)


def parse_prom_duration(text: str) -> float:
    """A Prometheus range duration ("30s", "1m30s", "250ms" is too short) in seconds."""
    if not text or not re.fullmatch(PROM_DURATION_PATTERN, text):
        raise ValueError(f"{text!r} {PROM_DURATION_MESSAGE}")
    seconds = parse_duration(text)
    if seconds < MIN_PROM_DURATION_SECONDS:
        raise ValueError(f"{text!r} {PROM_DURATION_MESSAGE}")
    return seconds


PromDuration = Annotated[
    str,
    Field(
        pattern=PROM_DURATION_PATTERN,
        min_length=2,
        max_length=32,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": "duration(self) >= duration('1s')", "message": PROM_DURATION_MESSAGE}
            ]
        },
    ),
    AfterValidator(lambda v: (parse_prom_duration(v), v)[1]),
]

# --- names -----------------------------------------------------------------------------------

DNS_LABEL_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$"
DNS_SUBDOMAIN_PATTERN = r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$"
LABEL_VALUE_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"

DnsLabel = Annotated[str, Field(min_length=1, max_length=63, pattern=DNS_LABEL_PATTERN)]
ObjectName = Annotated[str, Field(min_length=1, max_length=253, pattern=DNS_SUBDOMAIN_PATTERN)]
LabelValue = Annotated[str, Field(min_length=1, max_length=63, pattern=LABEL_VALUE_PATTERN)]
