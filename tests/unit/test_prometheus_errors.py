"""An unreachable Prometheus is reported with the cause an SRE can act on (a name that does not
resolve, a refused connection, a timeout, a certificate), not only `ConnectionError`; the message
is the same on every run (no object addresses), so events about it stay readable."""

from __future__ import annotations

import socket

import pytest
import requests
from urllib3.exceptions import MaxRetryError, NameResolutionError, NewConnectionError

from modelrollout.metrics.prometheus import PrometheusProvider, unreachable_reason
from modelrollout.metrics.provider import ProviderError


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_a_refused_connection_says_so():
    address = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(ProviderError) as first:
        PrometheusProvider(address, timeout=2).query("up")
    with pytest.raises(ProviderError) as second:
        PrometheusProvider(address, timeout=2).query("up")
    message = str(first.value)
    assert message.startswith(f"Prometheus at {address} unreachable: ")
    assert "Connection refused" in message and "ConnectionError" in message
    assert "query=" not in message and " at 0x" not in message
    assert str(second.value) == message


def test_a_prometheus_that_never_answers_is_a_timeout():
    with socket.socket() as server:
        server.bind(("127.0.0.1", 0))
        server.listen(8)
        address = f"http://127.0.0.1:{server.getsockname()[1]}"
        with pytest.raises(ProviderError) as err:
            PrometheusProvider(address, timeout=0.3).query("up")
    assert "timed out" in str(err.value), err.value


def _wrapped(reason: Exception) -> requests.ConnectionError:
    return requests.ConnectionError(MaxRetryError(None, "/api/v1/query?query=up", reason=reason))


def test_a_name_that_does_not_resolve_is_named():
    reason = NameResolutionError(
        "prometheus.monitoring", None, socket.gaierror(-2, "Name or service not known")
    )
    text = unreachable_reason(_wrapped(reason))
    assert "Failed to resolve 'prometheus.monitoring'" in text and "Name or service not known" in text
    assert "query=" not in text


def test_older_urllib3_object_addresses_are_left_out():
    """urllib3 1.x wrote `<urllib3.connection.HTTPConnection object at 0x7f...>: ...`: an address
    that differs on every run would make every event differ."""

    class Legacy(NewConnectionError):
        def __str__(self) -> str:
            return "<urllib3.connection.HTTPConnection object at 0x7f3a9c1d2e50>: Failed to establish a new connection: [Errno 111] Connection refused"

    text = unreachable_reason(_wrapped(Legacy(None, "x")))
    assert text == "Failed to establish a new connection: [Errno 111] Connection refused (ConnectionError)"


def test_without_a_cause_the_class_is_all_there_is():
    assert unreachable_reason(requests.ConnectionError()) == "ConnectionError"
    assert unreachable_reason(OSError()) == "OSError"
