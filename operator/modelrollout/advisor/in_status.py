"""Live serving-mode advice in status (advice only: the operator never switches modes)."""

from __future__ import annotations

import logging
from datetime import datetime

from modelrollout.api.base import parse_duration
from modelrollout.api.conditions import rfc3339
from modelrollout.api.resource import ModelDeployment
from modelrollout.api.status import Advice
from modelrollout.metrics.prometheus import provider_for

log = logging.getLogger(__name__)


def due(md: ModelDeployment, previous: Advice | None, now: datetime) -> bool:
    advisor = md.spec.advisor
    if advisor is None or md.spec.mode != "hybrid":
        return False
    if previous is None:
        return True
    last = datetime.fromisoformat(previous.observed_at.replace("Z", "+00:00"))
    return (now - last).total_seconds() >= parse_duration(advisor.interval)


def compute(md: ModelDeployment, now: datetime, *, token: str | None = None) -> Advice:
    """Blocking (Prometheus queries): called from the reconcile thread when `due`."""
    from modelrollout.advisor.errors import AdvisorError
    from modelrollout.advisor.live import advise_live

    advisor = md.spec.advisor
    assert advisor is not None
    client = provider_for(
        advisor.prometheus.address, token=token, insecure_skip_verify=advisor.prometheus.insecure_skip_verify
    )
    try:
        recommendation = advise_live(
            client, deployment=md.name, namespace=md.namespace, window=advisor.window
        )
    except (AdvisorError, ValueError) as exc:
        return Advice(error=str(exc)[:1024], observed_at=rfc3339(now))
    return Advice.model_validate({**recommendation.to_status(), "observedAt": rfc3339(now)})
