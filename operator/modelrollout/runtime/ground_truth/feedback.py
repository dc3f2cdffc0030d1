"""``/feedback``: only who holds the token may label, and a label joins the shared log.

:class:`FeedbackAuth` is an ASGI middleware in front of the endpoint, so a refused request is
answered before its body is read or parsed:

- no token configured (``MODELROLLOUT_FEEDBACK_TOKEN`` unset): 403 ``feedback is disabled: no
  token configured`` (the secure default: reaching the service is not enough to judge it);
- a token configured, and the request lacks ``Authorization: Bearer <token>`` (compared in
  constant time): 401 with ``WWW-Authenticate: Bearer``; nothing is read, stored or counted but
  the refusal (``modelrollout_labels_total{outcome="unauthorized"}``);
- an authorised request the endpoint refuses as malformed (400, 413, 415) counts as ``invalid``.

:class:`FeedbackJoin` stores the label of a logged prediction (first label wins) through the
store-call pool, with its deadline: ``accepted`` (200), ``duplicate`` (409), ``unknown_request``
(404: no such prediction in the shared log; the label is not stored) or ``unavailable`` (503: the
store could not be asked; retry). A request id still in this pod's write queue is flushed first,
so a label sent right after its prediction counts.
"""

from __future__ import annotations

import hmac
import json
import logging
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

from ..logsafe import RateLimitedLog
from ..storecalls import StoreCalls, StoreUnavailable
from .records import Outcome

log = logging.getLogger("modelrollout.runtime.feedback")
DISABLED = "feedback is disabled: no token configured (MODELROLLOUT_FEEDBACK_TOKEN)"
UNAUTHORIZED = "feedback needs the header 'Authorization: Bearer <token>' with the configured token"
INVALID_STATUSES = frozenset({400, 413, 415, 422})


def bearer_matches(values: list[bytes], token: str) -> bool:
    """True when there is exactly one ``Authorization: Bearer <token>`` header naming ``token``."""
    if len(values) != 1:
        return False
    scheme, _, given = values[0].decode("latin-1").strip().partition(" ")
    if scheme.lower() != "bearer":
        return False
    return hmac.compare_digest(given.strip().encode("utf-8", "replace"), token.encode("utf-8"))


class FeedbackAuth:
    """See the module docstring. ``count(outcome)`` counts refusals (``unauthorized``, ``invalid``)."""

    def __init__(
        self, app: Any, *, token: str | None, count: Callable[[str], None], paths: Iterable[str] = ("/feedback",),
        log_rate: float = 1.0,
    ) -> None:  # fmt: skip
        self.app, self.token, self.count, self.paths = app, token, count, frozenset(paths)
        self._log = RateLimitedLog(log, rate=log_rate)

    async def __call__(self, scope: dict, receive: Any, send: Any) -> None:
        if (
            scope.get("type") != "http"
            or scope.get("path") not in self.paths
            or scope.get("method") != "POST"
        ):
            await self.app(scope, receive, send)
            return
        if self.token is None:
            await self._refuse(scope, send, 403, DISABLED)
            return
        given = [v for n, v in scope.get("headers", []) if n.lower() == b"authorization"]
        if not bearer_matches(given, self.token):
            await self._refuse(scope, send, 401, UNAUTHORIZED)
            return

        async def counted(message: dict) -> None:
            if message.get("type") == "http.response.start" and message.get("status") in INVALID_STATUSES:
                self.count("invalid")
            await send(message)

        await self.app(scope, receive, counted)

    async def _refuse(self, scope: dict, send: Any, status: int, error: str) -> None:
        self.count("unauthorized")
        self._log.log(logging.INFO, "client error %d: %s %s: %s", status, scope.get("method"), scope.get("path"), error)  # fmt: skip
        body = json.dumps({"error": error}).encode()
        headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        if status == 401:
            headers.append((b"www-authenticate", b'Bearer realm="feedback"'))
        await send({"type": "http.response.start", "status": status, "headers": headers})
        await send({"type": "http.response.body", "body": body})


@dataclass(frozen=True)
class LabelVerdict:
    outcome: Outcome
    predicted: str | None = None
    correct: bool | None = None
    model: str | None = None  # who made the prediction (not necessarily this pod)
    version: str | None = None
    track: str | None = None
    detail: str | None = None


STATUS = {"accepted": 200, "duplicate": 409, "unknown_request": 404, "unavailable": 503}


class FeedbackJoin:
    """Store one label against the shared log (see the module docstring)."""

    def __init__(
        self, store: Any, *, calls: StoreCalls, count: Callable[[str], None], writer: Any = None,
        flush_timeout_s: float = 0.5, clock: Callable[[], float] = time.time,
    ) -> None:  # fmt: skip
        self.store, self.calls, self.count, self.writer = store, calls, count, writer
        self.flush_timeout_s, self.clock = flush_timeout_s, clock

    async def judge(self, request_id: str, *, row: int, label: str) -> LabelVerdict:
        try:
            found, stored = await self.calls.run(self._join, request_id, row, label)
        except StoreUnavailable as exc:
            self.count("unavailable")
            return LabelVerdict("unavailable", detail=f"{exc}; the label was not stored, send it again")
        if found is None:
            self.count("unknown_request")
            return LabelVerdict("unknown_request", detail=(
                "no prediction logged for this request id and row (never made, a lookup key that was not "
                "answered, older than the retention, or dropped by the log); a prediction reaches the shared "
                "log about 0.1 s after its answer: retry a label sent sooner to another pod"))  # fmt: skip
        outcome: Outcome = "accepted" if stored else "duplicate"
        self.count(outcome)
        detail = None if stored else "a label for this prediction was stored before; the first label counts"
        return LabelVerdict(outcome, predicted=found.prediction, correct=found.prediction == label if stored else None,
                            model=found.model, version=found.version, track=found.track, detail=detail)  # fmt: skip

    def _join(self, request_id: str, row: int, label: str) -> tuple[Any, bool]:
        """On the store pool: store the label; if the prediction is unknown while this pod still
        has rows queued, flush them (bounded) and try once more."""
        found, stored = self.store.add_label(request_id, row, label=label, ts=self.clock(), source="feedback")
        if found is None and self.writer is not None and self.writer.pending:
            self.writer.flush(self.flush_timeout_s)
            found, stored = self.store.add_label(
                request_id, row, label=label, ts=self.clock(), source="feedback"
            )
        return found, stored
