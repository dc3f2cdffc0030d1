"""Prometheus as a metrics provider, via prometheus-api-client."""

from __future__ import annotations

import requests
from prometheus_api_client import PrometheusApiClientException, PrometheusConnect
from urllib3.util.retry import Retry

from modelrollout.metrics.provider import ProviderError

QUERY_TIMEOUT_SECONDS = 10


class PrometheusProvider:
    def __init__(
        self, address: str, *, token: str | None = None, timeout: float = QUERY_TIMEOUT_SECONDS
    ) -> None:
        headers = {"Authorization": f"Bearer {token}"} if token else None
        # One quick retry on connection trouble; an unreachable Prometheus must surface as an
        # error verdict within the analysis interval, not hang the reconcile.
        self._client = PrometheusConnect(
            url=address,
            headers=headers,
            disable_ssl=False,
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
            raise ProviderError(f"Prometheus at {self.address} unreachable: {type(exc).__name__}") from exc
        return single_value(result)


def single_value(result: object) -> float | None:
    """A vector of one sample, or a scalar, as a float; empty -> None. Several series are
    ambiguous for a threshold: an error, so a query that forgot its `sum` is caught."""
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
    return float(result[0]["value"][1])  # NaN stays NaN (judged inconclusive); +Inf is a real breach
