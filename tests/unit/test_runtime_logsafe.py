"""Log lines a client can neither forge nor flood: escaping, token buckets, client-error filter, JSON lines."""

from __future__ import annotations

import json
import logging

import pytest
from pydantic import BaseModel, ValidationError

from modelrollout.runtime.logsafe import (
    ClientErrorFilter,
    EscapingFilter,
    JsonLinesFormatter,
    RateLimitedLog,
    TokenBucket,
    client_error_status,
    escape_control,
)


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.mark.parametrize(
    ("raw", "escaped"),
    [
        ("/predict\n2026 [ERROR] forged", "/predict\\n2026 [ERROR] forged"),
        ("a\rb\tc", "a\\rb\\tc"),
        ("\x1b[31mred", "\\x1b[31mred"),
        ("nul\x00del\x7fc1\x85", "nul\\x00del\\x7fc1\\x85"),
        ("line\u2028sep", "line\\u2028sep"),
        ("plain ünïcode / é", "plain ünïcode / é"),
    ],
)
def test_control_characters_are_escaped_and_nothing_else(raw, escaped):
    assert escape_control(raw) == escaped


def test_token_bucket_allows_a_burst_then_the_rate():
    clock = Clock()
    bucket = TokenBucket(rate=2.0, burst=3, clock=clock)
    assert [bucket.take() for _ in range(4)] == [True, True, True, False]
    clock.now = 0.49
    assert not bucket.take()
    clock.now = 0.5
    assert bucket.take() and not bucket.take()
    clock.now = 100.0
    assert sum(bucket.take() for _ in range(10)) == 3  # never more than the burst saved up


def test_token_bucket_refuses_a_nonsense_rate():
    with pytest.raises(ValueError):
        TokenBucket(rate=0)


def record(
    msg: str, *args, exc: BaseException | None = None, name: str = "bentoml._internal.server.http_app"
):
    exc_info = (type(exc), exc, exc.__traceback__) if exc is not None else None
    return logging.LogRecord(name, logging.ERROR, __file__, 1, msg, args, exc_info)


def validation_error() -> ValidationError:
    class Input(BaseModel):
        rows: list[float]

    try:
        Input.model_validate({"rows": ["x\ny"]})
    except ValidationError as exc:
        return exc
    raise AssertionError("unreachable")


def test_a_refused_request_is_one_info_line_without_traceback_and_rate_limited():
    clock = Clock()
    keep = ClientErrorFilter(rate=1.0, burst=2, clock=clock)
    first = record("Exception on %s [%s]", "/predict", "POST", exc=validation_error())
    assert keep.filter(first)
    assert (first.levelno, first.levelname, first.exc_info) == (logging.INFO, "INFO", None)
    assert (
        first.getMessage()
        == "client error 400: /predict [POST]: 1 validation error(s): rows.0: Input should be a valid number, unable to parse string as a number"
    )
    assert keep.filter(record("Exception on %s [%s]", "/predict", "POST", exc=validation_error()))
    assert not keep.filter(record("Exception on %s [%s]", "/predict", "POST", exc=validation_error()))
    clock.now = 1.0
    later = record("Exception on %s [%s]", "/predict", "POST", exc=validation_error())
    assert keep.filter(later) and later.getMessage().endswith("(1 similar lines suppressed)")


def test_a_server_error_keeps_its_level_and_traceback():
    keep = ClientErrorFilter(rate=1.0)
    error = record("Exception on %s [%s]", "/predict", "POST", exc=RuntimeError("bug"))
    assert keep.filter(error)
    assert error.levelno == logging.ERROR and error.exc_info is not None


def test_client_error_status_reads_bentoml_exceptions_by_their_code():
    class Code:
        value = 415

    class Refused(Exception):
        error_code = Code()

    assert client_error_status(Refused()) == 415
    assert client_error_status(validation_error()) == 400
    assert client_error_status(ValueError("x")) is None and client_error_status(None) is None


def test_escaping_filter_renders_the_message_into_one_line():
    entry = record("access %s", "/a\nforged")
    assert EscapingFilter().filter(entry)
    assert entry.getMessage() == "access /a\\nforged" and entry.args is None


def test_json_lines_have_the_fields_and_stay_on_one_line():
    entry = record("path %s", "/x\n\x1b")
    entry.component = "[entry_service:IrisClassifier:1]"
    line = JsonLinesFormatter().format(entry)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["message"] == "path /x\n\x1b" and parsed["level"] == "ERROR"
    assert parsed["component"] == "entry_service:IrisClassifier:1" and parsed["time"].endswith("+00:00")


def test_json_lines_carry_the_traceback_of_an_error():
    try:
        raise RuntimeError("boom")
    except RuntimeError as exc:
        entry = record("failed", exc=exc)
    assert "RuntimeError: boom" in json.loads(JsonLinesFormatter().format(entry))["exception"]


def test_a_rate_limited_site_drops_lines_over_the_rate_and_says_how_many(caplog):
    clock = Clock()
    site = RateLimitedLog(logging.getLogger("test.site"), rate=1.0, burst=1, clock=clock)
    with caplog.at_level(logging.INFO, logger="test.site"):
        assert site.log(logging.INFO, "refused %s", 1)
        assert not site.log(logging.INFO, "refused %s", 2)
        assert not site.log(logging.INFO, "refused %s", 3)
        clock.now = 1.0
        assert site.log(logging.INFO, "refused %s", 4)
    assert [r.getMessage() for r in caplog.records] == ["refused 1", "refused 4 (2 similar lines suppressed)"]
