"""Prometheus as a metrics provider (via prometheus-api-client), and the one client cache."""

from __future__ import annotations

import re
import threading

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from modelrollout.metrics.provider import ProviderError

QUERY_TIMEOUT_SECONDS = 10
MAX_PROVIDERS = 64


class PrometheusProvider:
    def __init__(
        self,
        address: str,
        *,
        token: str | None = None,
        insecure_skip_verify: bool = False,
        timeout: float = QUERY_TIMEOUT_SECONDS,
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        # One quick retry on connection trouble; an unreachable Prometheus must surface as an
        # error verdict within the analysis interval, not hang the reconcile. TLS certificates
        # are verified unless the spec says otherwise.
        self._client = PrometheusConnect(
            url=address,
            headers=headers,
            disable_ssl=insecure_skip_verify,
            retry=Retry(total=1, backoff_factor=0.2),
            timeout=timeout,
        )
        self.address = address

    def close(self) -> None:
        session = getattr(self._client, "_session", None)
        if session is not None:
            session.close()

    def query(self, promql: str) -> float | None:
        try:
            result = self._client.custom_query(promql)
        except PrometheusApiClientException as exc:
            raise ProviderError(f"Prometheus rejected the query: {str(exc)[:300]}") from exc
        except (requests.RequestException, OSError) as exc:
            raise ProviderError(
                f"Prometheus at {self.address} unreachable: {unreachable_reason(exc)}"
            ) from exc
        return single_value(result)


# urllib3 names the connection before the reason ("HTTPConnection(host='p', port=9090): ...",
# older versions "<...HTTPConnection object at 0x7f...>: ..."): the address is already in the message,
# and an object address would make every message (and so every event) differ.
_CONNECTION_PREFIX = re.compile(r"^(<[^<>]* at 0x[0-9a-fA-F]+>|\w*Connection(Pool)?\([^()]*\)): ")


def unreachable_reason(exc: BaseException) -> str:
    """Why Prometheus could not be reached, as an SRE can act on it: the cause urllib3 gives
    (`Failed to resolve 'prometheus.monitoring' ([Errno -2] Name or service not known)`,
    `... [Errno 111] Connection refused`, `Read timed out.`, a certificate error), not only the
    exception's class. Never the URL: it holds the whole query."""
    cause = getattr(exc.args[0], "reason", None) if exc.args else None  # MaxRetryError's
    text = str(cause if isinstance(cause, BaseException) else exc.args[0] if exc.args else "")
    text = _CONNECTION_PREFIX.sub("", text.strip())
    if not text or "Max retries exceeded" in text:
        return type(exc).__name__
    return f"{text[:200]} ({type(exc).__name__})"


def single_value(result: object) -> float | None:
    """A vector of one sample, or a scalar, as a float; empty -> None; several series -> error
    (see metrics/provider.py for the policy)."""
    if isinstance(result, dict) and "value" in result:  # scalar/string result
        return float(result["value"][1])
    if isinstance(result, list) and len(result) == 2 and not isinstance(result[0], dict):
        return float(result[1])
    if not result:
        return None
    if not isinstance(result, list) or len(result) != 1:
        raise ProviderError(
            f"query returned {len(result) if isinstance(result, list) else '?'} series; "
            "aggregate it to one value (e.g. sum(...))"
        )
    return float(result[0]["value"][1])


_providers: dict[tuple[str, str | None, bool], PrometheusProvider] = {}
_providers_lock = threading.Lock()


def provider_for(
    address: str, *, token: str | None = None, insecure_skip_verify: bool = False
) -> PrometheusProvider:
    """One client (and HTTP session) per Prometheus, token and TLS setting, reused by every
    analysis and every live advice; the oldest is closed past MAX_PROVIDERS."""
    key = (address, token, insecure_skip_verify)
    with _providers_lock:
        provider = _providers.get(key)
        if provider is None:
            if len(_providers) >= MAX_PROVIDERS:
                _providers.pop(next(iter(_providers))).close()
            provider = _providers[key] = PrometheusProvider(
                address, token=token, insecure_skip_verify=insecure_skip_verify
            )
        return provider
