"""Durations that reach PromQL use the grammar both Prometheus and the API server's CEL read;
cron schedules are range-checked field by field; time zones are looked up in the IANA database.
The CRD (pattern or CEL) and the operator's parse agree on every case here."""

from __future__ import annotations

import re
import zoneinfo

import celpy
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from modelrollout.api.base import PROM_DURATION_PATTERN, parse_prom_duration
from modelrollout.api.cron import (
    SCHEDULE_PATTERN,
    TIME_ZONE_PATTERN,
    check_schedule,
    check_time_zone,
    iana_time_zones,
)

GOOD_DURATIONS = {"1s": 1, "30s": 30, "1m30s": 90, "2h": 7200, "1h2m3s": 3723, "1500ms": 1.5, "90s": 90}
# "1.5m", "0s": Go accepts them, Prometheus does not (not a valid duration / must be > 0);
# "1d": Prometheus accepts it, CEL's duration() does not; "500ms": below the 1 s minimum;
# "30s1m": Prometheus wants units in order.
BAD_DURATIONS = ["1.5m", "0s", "0m", "1d", "1w", "500ms", "30s1m", "1m1m", "", "s", "-5s", "5", " 5s"]


@pytest.mark.parametrize(("text", "seconds"), GOOD_DURATIONS.items())
def test_prometheus_durations_are_accepted(text, seconds):
    assert parse_prom_duration(text) == seconds
    assert re.fullmatch(PROM_DURATION_PATTERN, text)


@pytest.mark.parametrize("text", BAD_DURATIONS)
def test_durations_prometheus_or_cel_cannot_read_are_refused(text):
    with pytest.raises(ValueError, match="Prometheus duration of at least 1s"):
        parse_prom_duration(text)


def _cel(rule: str, value: str) -> bool:
    env = celpy.Environment()
    try:
        return bool(env.program(env.compile(rule)).evaluate({"self": celpy.json_to_cel(value)}))
    except celpy.CELEvalError:
        return False


@pytest.mark.parametrize("text", [*GOOD_DURATIONS, *BAD_DURATIONS])
def test_the_crd_judges_a_duration_as_the_operator_does(text):
    from modelrollout.api.base import PROM_DURATION_MESSAGE

    schema_ok = len(text) >= 2 and bool(re.fullmatch(PROM_DURATION_PATTERN, text))
    schema_ok = schema_ok and _cel("duration(self) >= duration('1s')", text)
    try:
        parse_prom_duration(text)
        operator_ok = True
    except ValueError as exc:
        assert PROM_DURATION_MESSAGE in str(exc)
        operator_ok = False
    assert schema_ok == operator_ok


GOOD_SCHEDULES = [
    "0 2 * * *",
    "*/5 * * * *",
    "0,30 9-17 * * MON-FRI",
    "15 3 1 jan,Jul *",
    "0 0 1-31/2 * ?",
    "59 23 31 12 6",
    "0 0 * * sun",
    "  0 2 * * *  ",
    "@daily",
    "@hourly",
    "@annually",
]
# (schedule, the field the error names)
BAD_SCHEDULES = [
    ("61 25 * * *", "minute"),
    ("0 24 * * *", "hour"),
    ("0 0 0 * *", "day of month"),
    ("0 0 32 * *", "day of month"),
    ("0 0 * 13 *", "month"),
    ("0 0 * * 7", "day of week"),  # robfig/cron, which the API server uses, stops at 6
    ("0 0 * foo *", "month"),
    ("*/0 * * * *", "minute"),
    ("0 0 * * mon-xyz", "day of week"),
    ("0 2 * * * *", "5 fields"),
    ("0 2 * *", "5 fields"),
    ("@every 5m", "macro"),
    ("@fortnightly", "macro"),
    ("every day", "5 fields"),
]
# A regex cannot see these; the operator does (before any CronJob is applied).
OPERATOR_ONLY_SCHEDULES = [("5-2 * * * *", "minute"), ("0 0 * * fri-mon", "day of week")]


@pytest.mark.parametrize("schedule", GOOD_SCHEDULES)
def test_schedules_a_cronjob_accepts_pass_both_checks(schedule):
    assert check_schedule(schedule) == schedule
    assert re.fullmatch(SCHEDULE_PATTERN, schedule)
    assert _cel(f"self.matches(r'{SCHEDULE_PATTERN}')", schedule)


@pytest.mark.parametrize(("schedule", "field"), BAD_SCHEDULES)
def test_schedules_out_of_range_are_refused_naming_the_field(schedule, field):
    with pytest.raises(ValueError, match=field):
        check_schedule(schedule)
    assert not _cel(f"self.matches(r'{SCHEDULE_PATTERN}')", schedule)


@pytest.mark.parametrize(("schedule", "field"), OPERATOR_ONLY_SCHEDULES)
def test_backwards_ranges_are_refused_by_the_operator(schedule, field):
    assert re.fullmatch(SCHEDULE_PATTERN, schedule)  # the CRD lets it through ...
    with pytest.raises(ValueError, match=f"{field}: the range .* starts after it ends"):
        check_schedule(schedule)  # ... the operator's parse does not


FIELD_RANGES = [(0, 59), (0, 23), (1, 31), (1, 12), (0, 6)]


@settings(max_examples=300, deadline=None)
@given(st.lists(st.integers(min_value=-1, max_value=70), min_size=5, max_size=5))
def test_pattern_and_parser_agree_on_single_values(values):
    """For every field and value: in range <=> both accept it; out of range <=> both refuse."""
    schedule = " ".join(str(v) for v in values)
    in_range = all(lo <= v <= hi for v, (lo, hi) in zip(values, FIELD_RANGES, strict=True))
    assert bool(re.fullmatch(SCHEDULE_PATTERN, schedule)) == in_range
    try:
        check_schedule(schedule)
        parsed = True
    except ValueError:
        parsed = False
    assert parsed == in_range


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"])
def test_iana_time_zones_are_accepted(zone):
    assert check_time_zone(zone) == zone
    assert re.fullmatch(TIME_ZONE_PATTERN, zone)


@pytest.mark.parametrize(
    ("zone", "shape_ok"),
    [("Mars/Olympus", True), ("Europe/Berlinn", True), ("Local", True), ("-x", False), ("a b", False)],
)
def test_unknown_time_zones_are_refused(zone, shape_ok):
    """The operator's own look-up (behind the CRD's list of IANA names)."""
    assert bool(re.fullmatch(TIME_ZONE_PATTERN, zone)) == shape_ok
    with pytest.raises(ValueError, match="IANA"):
        check_time_zone(zone)


def test_the_crds_time_zone_list_is_sorted_and_every_name_in_it_is_a_zone():
    """The CRD (and the operator's parse) refuse every name not in time_zones.txt; each name in
    it must be a zone of the IANA database (zoneinfo loads it, as the API server's
    time.LoadLocation loads it for the CronJob), and the shape check must take it."""
    zones = iana_time_zones()
    assert list(zones) == sorted(set(zones)) and len(zones) > 500
    assert {"UTC", "Europe/Berlin", "America/Argentina/Buenos_Aires", "Etc/GMT+5"} <= set(zones)
    assert "Local" not in zones and "localtime" not in zones
    for zone in zones:
        assert check_time_zone(zone) == zone
        assert zoneinfo.ZoneInfo(zone).key == zone
