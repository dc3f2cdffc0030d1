"""Cron schedules and time zones as a Kubernetes CronJob accepts them, checked before anything
is applied.

The API server parses a CronJob's schedule with robfig/cron v3 `ParseStandard`: five fields
(minute 0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, day of week 0-6 or sun-sat;
names case-insensitive; `*`, `?`, ranges `a-b`, steps `/n` with n >= 1, lists `a,b`) or a macro
(@yearly, @annually, @monthly, @weekly, @daily, @midnight, @hourly). Note: 7 for Sunday, which
some crons accept, is refused by that parser, so it is refused here too.

`SCHEDULE_PATTERN` (an RE2-compatible regex, so the CRD's schema applies it at `kubectl apply`)
checks each field's shape and the range of every number in it. What a regex cannot see (a range
whose start is past its end, `5-2`) `check_schedule` finds; the operator runs it when it parses
the spec, so a bad schedule is a Degraded condition naming the field before any CronJob is
applied. A time zone must be in the IANA database: the CRD refuses any name not in
`time_zones.txt` (a committed copy of the database's zone names, so the generated CRD does not
change with the installed tzdata); `check_time_zone` applies the same list when the operator
parses a spec (an object from before the rule, or a schema check skipped)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import cache
from importlib import resources
from typing import Annotated

from pydantic import AfterValidator, Field

MACROS = ("annually", "yearly", "monthly", "weekly", "daily", "midnight", "hourly")
MONTHS = ("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec")
DAYS = ("sun", "mon", "tue", "wed", "thu", "fri", "sat")


@dataclass(frozen=True)
class CronField:
    name: str
    low: int
    high: int
    value: str  # a regex of one value in range (a number or a name)
    names: tuple[str, ...] = ()  # names of low, low+1, ...


FIELDS = (
    CronField("minute", 0, 59, r"[0-5]?[0-9]"),
    CronField("hour", 0, 23, r"[01]?[0-9]|2[0-3]"),
    CronField("day of month", 1, 31, r"0?[1-9]|[12][0-9]|3[01]"),
    CronField("month", 1, 12, r"0?[1-9]|1[0-2]|(?i:" + "|".join(MONTHS) + ")", MONTHS),
    CronField("day of week", 0, 6, r"[0-6]|(?i:" + "|".join(DAYS) + ")", DAYS),
)


def _field_pattern(field: CronField) -> str:
    value = f"(?:{field.value})"
    item = rf"(?:\*|\?|{value}(?:-{value})?)(?:/[1-9][0-9]{{0,2}})?"
    return rf"{item}(?:,{item})*"


SCHEDULE_PATTERN = (
    rf"^(@(?:{'|'.join(MACROS)})|\s*" + r"\s+".join(_field_pattern(f) for f in FIELDS) + r"\s*)$"
)
# The API server's rule for a time zone's shape (k8s.io/kubernetes, batch validation): path
# components of 1-14 characters of [A-Za-z0-9._+-], not starting with '-'. The database lookup
# is the operator's (CEL has no time zone database).
TIME_ZONE_PATTERN = r"^[A-Za-z0-9._+][A-Za-z0-9._+-]{0,13}(/[A-Za-z0-9._+][A-Za-z0-9._+-]{0,13})*$"


def _number(text: str, field: CronField) -> int:
    lowered = text.lower()
    if lowered in field.names:
        return field.low + field.names.index(lowered)
    if not text.isdigit():
        raise ValueError(f"{field.name}: {text!r} is not a number or a name")
    return int(text)


def _check_item(item: str, field: CronField) -> None:
    span, _, step = item.partition("/")
    if step and (not step.isdigit() or int(step) < 1):
        raise ValueError(f"{field.name}: step {step!r} in {item!r} must be a positive number")
    if span in ("*", "?"):
        return
    low_text, dash, high_text = span.partition("-")
    low = _number(low_text, field)
    high = _number(high_text, field) if dash else low
    for value in (low, high):
        if not field.low <= value <= field.high:
            raise ValueError(f"{field.name}: {value} in {item!r} is outside {field.low}-{field.high}")
    if low > high:
        raise ValueError(f"{field.name}: the range {span!r} starts after it ends")


def check_schedule(schedule: str) -> str:
    """The schedule if a CronJob accepts it; else ValueError naming the cron field."""
    if schedule.startswith("@"):
        if schedule[1:] not in MACROS:
            raise ValueError(f"unknown macro {schedule!r} (one of {', '.join('@' + m for m in MACROS)})")
        return schedule
    fields = schedule.split()
    if len(fields) != len(FIELDS):
        raise ValueError(
            f"expected 5 fields (minute hour day-of-month month day-of-week), found {len(fields)}"
        )
    for text, field in zip(fields, FIELDS, strict=True):
        for item in text.split(","):
            _check_item(item, field)
    if not re.fullmatch(SCHEDULE_PATTERN, schedule):  # what the CRD checks (e.g. a step over 999)
        raise ValueError(f"{schedule!r} is not a schedule a CronJob accepts ({SCHEDULE_HELP})")
    return schedule


def check_time_zone(name: str) -> str:
    """The name if it is one of the IANA database's zones the CRD accepts (the same list, so the
    operator and the API server never disagree); "Local" is refused, as Kubernetes refuses it."""
    if name.lower() == "local" or not re.fullmatch(TIME_ZONE_PATTERN, name):
        raise ValueError(f"{name!r} is not an IANA time zone (e.g. Europe/Berlin, UTC)")
    if name not in iana_time_zones():
        raise ValueError(f"{name!r} is not in the IANA time zone database (e.g. Europe/Berlin, UTC)")
    return name


SCHEDULE_HELP = (
    "five fields in range: minute 0-59, hour 0-23, day of month 1-31, month 1-12 or jan-dec, "
    "day of week 0-6 or sun-sat; *, ?, a-b, /step, lists; or @yearly, @monthly, @weekly, @daily, "
    "@hourly"
)

# The CRD checks the schedule with a CEL rule rather than a `pattern`: the same regex, but the
# API server's answer then says what is wrong instead of printing a 1,000-character regex.
Schedule = Annotated[
    str,
    Field(
        min_length=1,
        max_length=128,
        json_schema_extra={
            "x-kubernetes-validations": [
                {"rule": f"self.matches(r'{SCHEDULE_PATTERN}')", "message": f"schedule: {SCHEDULE_HELP}"}
            ]
        },
    ),
    AfterValidator(check_schedule),
]


@cache
def iana_time_zones() -> tuple[str, ...]:
    """The zone names the CRD accepts (time_zones.txt beside this module)."""
    text = resources.files(__package__).joinpath("time_zones.txt").read_text(encoding="utf-8")
    return tuple(line for line in text.splitlines() if line and not line.startswith("#"))


def _time_zone_rule(schema: dict) -> None:
    names = ", ".join(f"'{name}'" for name in iana_time_zones())
    schema["x-kubernetes-validations"] = [
        {
            "rule": f"self in [{names}]",
            "message": "timeZone must be an IANA time zone (e.g. Europe/Berlin, UTC)",
        }
    ]


TimeZone = Annotated[
    str,
    Field(min_length=1, max_length=64, json_schema_extra=_time_zone_rule),
    AfterValidator(check_time_zone),
]
