"""/feedback: only the token holder labels (refused before the body is read), and a label joins
the shared log: accepted, duplicate, unknown, unavailable."""

from __future__ import annotations

import asyncio
import json

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.ground_truth.feedback import FeedbackAuth, FeedbackJoin, bearer_matches
from modelrollout.runtime.ground_truth.metrics import LABELS_TOTAL, log_counters
from modelrollout.runtime.ground_truth.records import Origin, records
from modelrollout.runtime.ground_truth.writer import PredictionLogWriter
from modelrollout.runtime.store.factory import open_log_store
from modelrollout.runtime.storecalls import StoreCalls

TOKEN = "a-feedback-token-of-some-length"


async def call(app, *, headers=(), path="/feedback", status=200):
    """Drive the middleware once; (status, body, whether the inner app ran, what it read)."""
    ran = {"app": False, "read": b""}

    async def inner(scope, receive, send):
        ran["app"] = True
        ran["read"] = (await receive())["body"]
        await send({"type": "http.response.start", "status": status, "headers": []})
        await send({"type": "http.response.body", "body": b"{}"})

    scope = {"type": "http", "method": "POST", "path": path, "headers": list(headers)}
    sent = []

    async def receive():
        return {"type": "http.request", "body": b'{"request_id": "x", "label": "y"}', "more_body": False}

    async def send(message):
        sent.append(message)

    counted: list[str] = []
    await FeedbackAuth(inner, token=app, count=counted.append)(scope, receive, send)
    start = next(m for m in sent if m["type"] == "http.response.start")
    body = b"".join(m.get("body", b"") for m in sent if m["type"] == "http.response.body")
    return start, body, ran, counted


async def test_without_a_configured_token_feedback_is_disabled():
    start, body, ran, counted = await call(None, headers=[(b"authorization", f"Bearer {TOKEN}".encode())])
    assert start["status"] == 403 and "feedback is disabled: no token configured" in json.loads(body)["error"]
    assert not ran["app"] and counted == ["unauthorized"]


@pytest.mark.parametrize(
    "headers",
    [
        [],
        [(b"authorization", b"Bearer wrong-token")],
        [(b"authorization", f"Basic {TOKEN}".encode())],
        [(b"authorization", f"Bearer {TOKEN}x".encode())],
        [(b"authorization", f"Bearer {TOKEN}".encode()), (b"authorization", b"Bearer other")],
    ],
    ids=["none", "wrong", "basic", "longer", "two-headers"],
)
async def test_a_missing_or_wrong_token_is_a_401_before_the_body_is_read(headers):
    start, body, ran, counted = await call(TOKEN, headers=headers)
    assert start["status"] == 401 and (b"www-authenticate", b'Bearer realm="feedback"') in start["headers"]
    assert "Authorization: Bearer" in json.loads(body)["error"]
    assert not ran["app"] and counted == ["unauthorized"]


async def test_the_right_token_passes_and_a_refused_body_counts_as_invalid():
    auth = [(b"Authorization", f"bearer {TOKEN}".encode())]  # header and scheme are case-insensitive
    start, _, ran, counted = await call(TOKEN, headers=auth)
    assert start["status"] == 200 and ran["app"] and ran["read"] and counted == []
    start, _, _, counted = await call(TOKEN, headers=auth, status=400)
    assert start["status"] == 400 and counted == ["invalid"]


async def test_other_paths_pass_untouched():
    start, _, ran, counted = await call(TOKEN, path="/predict")
    assert start["status"] == 200 and ran["app"] and counted == []


def test_bearer_matching_is_exact():
    assert bearer_matches([f"Bearer  {TOKEN} ".encode()], TOKEN)
    assert not bearer_matches([b"Bearer"], TOKEN) and not bearer_matches([], TOKEN)


# --- the join ---------------------------------------------------------------------------------------


@pytest.fixture
def log_store(tmp_path):
    store = open_log_store(f"sqlite:///{tmp_path}/log.sqlite", wait_timeout_s=1.0)
    yield store
    store.close()


def join(store, registry, writer=None, *, deadline_s=2.0) -> FeedbackJoin:
    counters = log_counters(registry)
    calls = StoreCalls(threads=2, deadline_s=deadline_s, registry=registry)
    return FeedbackJoin(store, calls=calls, count=counters.count_label, writer=writer, clock=lambda: 1000.0)


def counts(registry) -> dict[str, float]:
    return {
        o: registry.get_sample_value(LABELS_TOTAL, {"outcome": o}) or 0.0
        for o in ("accepted", "duplicate", "unknown_request", "unavailable")
    }


async def test_labels_are_accepted_once_then_duplicates_and_unknown_ids_are_reported(log_store):
    registry = CollectorRegistry()
    log_store.log_predictions(records("r1", ["setosa", "virginica"], origin=Origin("iris", "v2", "canary")))
    feedback = join(log_store, registry)
    right = await feedback.judge("r1", row=0, label="setosa")
    wrong = await feedback.judge("r1", row=1, label="setosa")
    again = await feedback.judge("r1", row=0, label="virginica")
    unknown = await feedback.judge("never", row=0, label="setosa")
    assert (right.outcome, right.correct, right.version, right.track) == ("accepted", True, "v2", "canary")
    assert (wrong.outcome, wrong.correct, wrong.predicted) == ("accepted", False, "virginica")
    assert (again.outcome, again.correct) == ("duplicate", None) and "first label counts" in again.detail
    assert unknown.outcome == "unknown_request" and unknown.predicted is None
    assert counts(registry) == {"accepted": 2, "duplicate": 1, "unknown_request": 1, "unavailable": 0}
    assert log_store.label_pairs(model="iris", version="v2", since=0) == [("setosa", "setosa", 1),
                                                                          ("virginica", "setosa", 1)]  # fmt: skip


async def test_a_label_right_after_its_prediction_waits_for_the_queue_to_be_written(log_store):
    registry = CollectorRegistry()
    writer = PredictionLogWriter(log_store, capacity=100, retention_s=3600, counters=log_counters(registry),
                                 flush_interval_s=30.0, batch_rows=1000).start()  # fmt: skip
    try:
        writer.put(records("fresh", ["setosa"], origin=Origin("iris", "v1", "stable")))
        verdict = await join(log_store, registry, writer).judge("fresh", row=0, label="setosa")
    finally:
        writer.stop()
    assert verdict.outcome == "accepted"


async def test_a_stuck_store_answers_unavailable_within_the_deadline(tmp_path):
    registry = CollectorRegistry()
    path = tmp_path / "log.sqlite"
    store = open_log_store(f"sqlite:///{path}", wait_timeout_s=0.2)
    store.log_predictions(records("r1", ["setosa"], origin=Origin("iris", "v1", "stable")))
    import sqlite3

    holder = sqlite3.connect(path, isolation_level=None)
    holder.execute("BEGIN EXCLUSIVE")
    try:
        verdict = await asyncio.wait_for(
            join(store, registry, deadline_s=0.5).judge("r1", row=0, label="x"), 5
        )
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    assert verdict.outcome == "unavailable" and "send it again" in verdict.detail
    assert counts(registry)["unavailable"] == 1
