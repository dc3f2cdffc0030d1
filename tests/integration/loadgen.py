"""A bounded load generator that stands in for the traffic router during canary tests.

    with LoadGenerator(stable_url=stable.url, canary_url=canary.url, rate_per_s=20) as load:
        load.set_weight(20)          # what the operator's decision asked for
        ...
        load.stats()                 # requests and feedback per track

A pacing thread sends ``rate_per_s`` ``/predict`` requests per second (one iris row each; another
bento: ``rows``, ``path`` and ``body``, e.g. one churn customer's named fields to ``/classify``) to
the stable or the canary track, split by the current canary ``weight`` the way a router would; a
track may have several servers (replicas), which take its requests in turn. The
split is deterministic (a smooth weighted round robin: at 20 % exactly every fifth request goes to
the canary), so a few seconds of traffic already carry the share the analysis expects - a random
split would make small analysis windows flaky. The rows are drawn at random (seeded) independently
of the track, so neither track gets a fixed, biased subset of the data (with rows in a fixed order
the canary at 20 % would see the same 30 rows over and over). After each prediction it posts the
true iris label to ``/feedback`` under the prediction's request id (with the bearer token), which
is how ground truth reaches the accuracy figures. ``feedback_urls`` sends each label to one of those
servers other than the one that predicted (a label reaching any pod of the deployment counts); as a
prediction reaches the shared log ~0.1 s after its answer, such labels want ``feedback_delay_s``:
then a thread of its own sends each label that long after its prediction.
``hold_labels(True)`` keeps the labels instead (bounded, :meth:`held_labels`), as ground truth that
arrives hours later: the caller delivers them later, through ``/feedback`` or a bulk import.

Requests run on a small worker pool, so a slow canary (injected latency) does not slow the stable
track's traffic down. It is bounded by time (``max_seconds``) and by count (``max_requests``) and
stops by itself; when more than ``max_in_flight`` requests are outstanding, new ones are dropped
(counted), never queued without bound. ``stop()`` (or leaving the ``with`` block) ends it at once.
"""

from __future__ import annotations

import random
import threading
import time
from collections import Counter, deque
from collections.abc import Callable, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any

import httpx

REQUEST_TIMEOUT_S = 10.0


@dataclass(frozen=True)
class LabelledRow:
    features: Any  # what ``body`` turns into a request (iris: the 4 numbers of a row)
    label: str


def iris_body(row: LabelledRow) -> dict:
    return {"rows": [row.features]}


def iris_rows() -> list[LabelledRow]:
    """All 150 iris rows with their true species (the ground truth fed back)."""
    from sklearn.datasets import load_iris

    iris = load_iris()
    names = [str(n) for n in iris.target_names]
    return [
        LabelledRow([float(x) for x in row], names[int(t)])
        for row, t in zip(iris.data, iris.target, strict=True)
    ]


@dataclass(frozen=True)
class HeldLabel:
    """The true label of a prediction, kept back to be delivered later."""

    track: str
    url: str  # the server that predicted
    request_id: str
    label: str


MAX_HELD_LABELS = 50_000


def _urls(value: str | Sequence[str] | None) -> tuple[str, ...]:
    if value is None:
        return ()
    return (value,) if isinstance(value, str) else tuple(value)


@dataclass(frozen=True)
class LoadStats:
    """Counts so far. Keys of the counters: ``stable`` / ``canary`` (feedback: outcome)."""

    sent: dict[str, int]
    ok: dict[str, int]
    server_errors: dict[str, int]  # 5xx answers
    failures: dict[str, int]  # no answer (connection refused, timeout) or another status
    feedback: dict[str, int]  # correct / incorrect (accepted labels) or the outcome, as the server said
    dropped: int  # not sent because too many were in flight

    @property
    def total(self) -> int:
        return sum(self.sent.values())


class LoadGenerator:
    """Background traffic, split stable/canary by a weight the test sets; bounded and self-stopping."""

    def __init__(
        self,
        *,
        stable_url: str | Sequence[str],
        canary_url: str | Sequence[str] | None,
        rate_per_s: float = 20.0,
        max_seconds: float = 120.0,
        max_requests: int = 10_000,
        feedback: bool = True,
        feedback_token: str | None = None,
        feedback_urls: Sequence[str] | None = None,
        feedback_delay_s: float = 0.0,
        workers: int = 8,
        max_in_flight: int = 32,
        seed: int = 0,
        rows: Sequence[LabelledRow] | None = None,
        path: str = "/predict",
        body: Callable[[LabelledRow], dict] = iris_body,
    ) -> None:
        if rate_per_s <= 0 or max_seconds <= 0 or max_requests <= 0:
            raise ValueError("rate_per_s, max_seconds and max_requests must be positive")
        self._stable_urls = _urls(stable_url)
        self._canary_urls = _urls(canary_url)
        if not self._stable_urls:
            raise ValueError("the stable track needs at least one server")
        self._turn = {"stable": 0, "canary": 0}
        self.rate_per_s = rate_per_s
        self.max_seconds = max_seconds
        self.max_requests = max_requests
        self.feedback = feedback
        self.feedback_headers = (
            {} if feedback_token is None else {"Authorization": f"Bearer {feedback_token}"}
        )
        # The servers labels go to, in turn, never the one that predicted (default: that one).
        self.feedback_urls = tuple(feedback_urls or ())
        self._feedback_turn = 0
        self._hold = False
        self._held: list[HeldLabel] = []
        self.feedback_delay_s = feedback_delay_s
        self._due: deque[tuple[float, HeldLabel]] = deque()  # labels to send once due, in order
        self.max_in_flight = max_in_flight
        self._rows = list(rows) if rows is not None else iris_rows()
        self.path, self.body = path, body
        self._rng = random.Random(seed)
        self._weight = 0
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="loadgen")
        self._local = threading.local()
        self._clients: list[httpx.Client] = []
        self._in_flight = 0
        self._counts: dict[str, Counter] = {k: Counter() for k in ("sent", "ok", "5xx", "failed", "feedback")}
        self._dropped = 0
        self._thread = threading.Thread(target=self._pace, name="loadgen-pacer", daemon=True)
        self._sender = threading.Thread(target=self._send_due, name="loadgen-labels", daemon=True)

    # --- control ------------------------------------------------------------------------------

    @property
    def weight(self) -> int:
        """The canary weight currently applied (what a router would report as achieved)."""
        return self._weight

    def set_weight(self, weight: int) -> None:
        if not 0 <= weight <= 100:
            raise ValueError(f"weight must be 0..100, got {weight}")
        self._weight = int(weight)

    @property
    def stable_urls(self) -> tuple[str, ...]:
        return self._stable_urls

    @property
    def canary_url(self) -> str | None:
        return self._canary_urls[0] if self._canary_urls else None

    def set_canary_url(self, url: str | Sequence[str] | None) -> None:
        """Point the canary share at other servers (e.g. a canary that turned slow)."""
        self._canary_urls = _urls(url)

    def set_stable_urls(self, urls: str | Sequence[str]) -> None:
        """Point the stable share at other servers (the stable track now runs another version)."""
        if not _urls(urls):
            raise ValueError("the stable track needs at least one server")
        self._stable_urls = _urls(urls)

    def hold_labels(self, hold: bool = True) -> None:
        """Keep the labels of new predictions (late ground truth) instead of sending them."""
        self._hold = hold

    def held_labels(self) -> list[HeldLabel]:
        """The labels kept so far (at most ``MAX_HELD_LABELS``; later ones are not kept)."""
        with self._lock:
            return list(self._held)

    def start(self) -> LoadGenerator:
        self._started = time.monotonic()
        self._thread.start()
        if self.feedback_delay_s > 0:
            self._sender.start()
        return self

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Stop sending; wait (bounded) for requests in flight; close the clients."""
        self._stop.set()
        for thread in (self._thread, self._sender):
            if thread.is_alive():
                thread.join(timeout=timeout_s)
        self._pool.shutdown(wait=True, cancel_futures=True)
        for client in self._clients:
            client.close()

    @property
    def running(self) -> bool:
        return self._thread.is_alive()

    def __enter__(self) -> LoadGenerator:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def stats(self) -> LoadStats:
        with self._lock:
            c = self._counts
            return LoadStats(
                sent=dict(c["sent"]),
                ok=dict(c["ok"]),
                server_errors=dict(c["5xx"]),
                failures=dict(c["failed"]),
                feedback=dict(c["feedback"]),
                dropped=self._dropped,
            )

    # --- internals ----------------------------------------------------------------------------

    def _pace(self) -> None:
        interval = 1.0 / self.rate_per_s
        deadline = self._started + self.max_seconds
        credit = 0  # smooth weighted round robin: canary when the accumulated weight reaches 100
        for index in range(self.max_requests):
            due = self._started + index * interval
            if due >= deadline or self._stop.wait(timeout=max(0.0, due - time.monotonic())):
                return
            credit += self._weight
            track = "stable"
            if credit >= 100:
                credit -= 100
                track = "canary"
            url = self._next_url(track)
            if url is None:
                track, url = "stable", self._next_url("stable")
            with self._lock:
                if self._in_flight >= self.max_in_flight:
                    self._dropped += 1
                    continue
                self._in_flight += 1
            self._count("sent", track)  # counted where it is routed, not when a worker picks it up
            self._pool.submit(self._one, track, url, self._rng.choice(self._rows))

    def _next_url(self, track: str) -> str | None:
        """The track's servers take its requests in turn (a Service spreading them over pods)."""
        urls = self._canary_urls if track == "canary" else self._stable_urls
        if not urls:
            return None
        self._turn[track] += 1
        return urls[self._turn[track] % len(urls)]

    def _client(self) -> httpx.Client:
        client = getattr(self._local, "client", None)
        if client is None:
            client = httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False)
            self._local.client = client
            with self._lock:
                self._clients.append(client)
        return client

    def _count(self, kind: str, key: str) -> None:
        with self._lock:
            self._counts[kind][key] += 1

    def _one(self, track: str, url: str, row: LabelledRow) -> None:
        try:
            client = self._client()
            try:
                response = client.post(f"{url}{self.path}", json=self.body(row))
            except httpx.HTTPError:
                self._count("failed", track)
                return
            if response.status_code >= 500:
                self._count("5xx", track)
                return
            if response.status_code != 200:
                self._count("failed", track)
                return
            self._count("ok", track)
            request_id = response.json()["request_id"]
            if self._hold:
                self._keep(HeldLabel(track, url, request_id, row.label))
            elif self.feedback and self.feedback_delay_s > 0:
                self._later(HeldLabel(track, url, request_id, row.label))
            elif self.feedback and not self._stop.is_set():
                self._label(client, track, url, request_id, row.label)
        finally:
            with self._lock:
                self._in_flight -= 1

    def _keep(self, held: HeldLabel) -> None:
        with self._lock:
            if len(self._held) < MAX_HELD_LABELS:
                self._held.append(held)

    def _later(self, held: HeldLabel) -> None:
        with self._lock:
            if len(self._due) < MAX_HELD_LABELS:
                self._due.append((time.monotonic() + self.feedback_delay_s, held))
            else:
                self._counts["feedback"]["not_sent"] += 1

    def _send_due(self) -> None:
        """Send each delayed label once due (the delay is constant: the queue is in due order)."""
        with httpx.Client(timeout=REQUEST_TIMEOUT_S, trust_env=False) as client:
            while not self._stop.wait(timeout=0.05):
                while not self._stop.is_set():
                    with self._lock:
                        if not self._due or self._due[0][0] > time.monotonic():
                            break
                        _, held = self._due.popleft()
                    self._label(client, held.track, held.url, held.request_id, held.label)

    def _label(self, client: httpx.Client, track: str, url: str, request_id: str, label: str) -> None:
        others = [u for u in self.feedback_urls if u != url] or [url]
        with self._lock:
            self._feedback_turn += 1
            target = others[self._feedback_turn % len(others)]
        try:
            answer = client.post(f"{target}/feedback", json={"request_id": request_id, "label": label, "row": 0},
                                 headers=self.feedback_headers)  # fmt: skip
            body = answer.json()
            outcome = body.get("outcome", f"http-{answer.status_code}")
            if outcome == "accepted":
                outcome = "correct" if body.get("correct") else "incorrect"
            self._count("feedback", outcome)
        except (httpx.HTTPError, ValueError):
            self._count("feedback", "failed")
