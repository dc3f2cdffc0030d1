"""The lookup service's answers, one status per key, without a database (a fake store)."""

from __future__ import annotations

import logging
import threading

import pytest
from prometheus_client import CollectorRegistry

from modelrollout.runtime.lookup import Answer, LookupService, overall_status
from modelrollout.runtime.store.base import PublishedVersion, RunSchema
from modelrollout.runtime.storecalls import StoreUnavailable


def version(run_id: str = "r1", rows: int = 3) -> PublishedVersion:
    return PublishedVersion(table="iris", run_id=run_id, physical=f"iris__{run_id}", model_version="1.0.0",
                            rows=rows, published_at="2026-01-01", schema=RunSchema(keys=(("id", "int"),), prediction="str"))  # fmt: skip


class FakeStore:
    def __init__(self) -> None:
        self.published: PublishedVersion | None = version()
        self.rows = {("iris__r1", 1): "setosa", ("iris__r1", 2): None}
        self.generation = 0
        self.reads = 0
        self.queries: list[list[tuple]] = []
        self.missing: set[str] = set()

    def published_version(self, table: str) -> PublishedVersion | None:
        self.reads += 1
        return self.published

    def lookup_version(self, v: PublishedVersion, keys):
        if v.physical in self.missing:
            raise LookupError(f"no such table: {v.physical}")
        self.queries.append(list(keys))
        return {k: self.rows[(v.physical, k[0])] for k in keys if (v.physical, k[0]) in self.rows}

    def is_missing_table(self, exc: BaseException) -> bool:
        return isinstance(exc, LookupError)


def service(
    mode: str = "hybrid", store: FakeStore | None = None, **kw
) -> tuple[LookupService, CollectorRegistry]:
    registry = CollectorRegistry()
    model = (lambda x: ["virginica"] * len(x)) if mode == "hybrid" else None
    return LookupService(store or FakeStore(), "iris", mode=mode, model=model, model_version="v1",
                         registry=registry, **kw), registry  # fmt: skip


def sample(registry, name, **labels) -> float:
    return registry.get_sample_value(name, labels) or 0.0


def test_one_bad_key_is_a_400_for_that_key_only_and_never_reaches_the_store_or_the_model():
    lookups, registry = service()
    rows = [[1.0] * 4] * 4
    answers = lookups.lookup([1, 2**63, 2, 7], rows)
    assert [(a.status, a.source) for a in answers] == [
        (200, "lookup"),
        (400, None),
        (200, "model"),
        (200, "model"),
    ]
    assert "out of range" in answers[1].message
    assert lookups.store.queries == [[(1,), (2,), (7,)]]
    assert sample(registry, "modelrollout_lookup_total", result="hit") == 1
    assert sample(registry, "modelrollout_lookup_total", result="miss") == 3


def test_batch_mode_says_not_found_per_key():
    lookups, _ = service("batch")
    answers = lookups.lookup([1, 2, 9, "x"])
    assert [a.status for a in answers] == [200, 404, 404, 400]
    assert "holds no valid prediction" in answers[1].message and "not in table 'iris'" in answers[2].message


@pytest.mark.parametrize(
    ("statuses", "overall"),
    [([200, 400, 503], 200), ([404, 503, 400], 503), ([404, 400], 404), ([400, 400], 400), ([], 404)],
)
def test_the_response_status_is_the_most_telling_key_status(statuses, overall):
    assert (
        overall_status([Answer(key=i, found=s == 200, status=s) for i, s in enumerate(statuses)]) == overall
    )


def test_without_the_store_hybrid_answers_every_valid_key_with_a_row_from_the_model():
    lookups, registry = service()
    lookups.version()  # a cached version: its key types still judge the keys
    failure = StoreUnavailable("timeout", "prediction store unavailable (timeout): no answer within 2 s")
    keys, rows = [1, "١", 5], [[1.0] * 4] * 3
    indices = lookups.model_rows(keys, None, rows)
    assert indices == [0, 2]
    answers = lookups.answers(keys, None, lookups.predict(rows, indices), failure=failure)
    assert [(a.status, a.source) for a in answers] == [(200, "model"), (400, None), (200, "model")]
    assert sample(registry, "modelrollout_lookup_fallback_total", reason="timeout") == 2
    no_rows = lookups.answers([1], None, {}, failure=failure)[0]
    assert no_rows.status == 503 and no_rows.message.startswith("prediction store unavailable (timeout)")
    assert no_rows.message.endswith("and no features were given for the model")


def test_without_the_store_batch_mode_is_503_per_key():
    lookups, _ = service("batch")
    failure = StoreUnavailable("error", "prediction store unavailable (error): database is locked")
    assert lookups.model_rows([1], None, None) == []
    assert [a.status for a in lookups.answers([1, 2], None, {}, failure=failure)] == [503, 503]


def test_a_new_version_is_announced_in_the_log_and_the_gauges(caplog):
    store = FakeStore()
    now = [0.0]
    lookups, registry = service(store=store, clock=lambda: now[0])
    with caplog.at_level(logging.INFO, logger="modelrollout.runtime.lookup"):
        lookups.version()
        store.published = version("r2", rows=5)
        now[0] = 5.0
        lookups.version()
    assert (
        sample(registry, "modelrollout_lookup_table_info", table="iris", run_id="r2", model_version="1.0.0")
        == 1
    )
    assert (
        sample(registry, "modelrollout_lookup_table_info", table="iris", run_id="r1", model_version="1.0.0")
        == 0
    )
    assert sample(registry, "modelrollout_lookup_table_keys", table="iris") == 5
    assert [r.getMessage().split(" (")[0] for r in caplog.records] == [
        "lookup table iris: serving run r1", "lookup table iris: serving run r2",
    ]  # fmt: skip
    assert caplog.records[1].getMessage().endswith("was r1)")


def test_a_replaced_store_file_forces_a_re_read_of_the_pointer():
    store = FakeStore()
    lookups, _ = service(store=store, refresh_s=3600)
    lookups.version()
    lookups.version()
    assert store.reads == 1
    store.generation += 1
    lookups.version()
    assert store.reads == 2


def test_a_missing_table_re_reads_the_pointer_and_retries_once():
    store = FakeStore()
    lookups, _ = service("batch", store=store, refresh_s=3600)
    assert lookups.lookup([1])[0].run_id == "r1"
    store.missing.add("iris__r1")
    store.published = version("r2")
    store.rows[("iris__r2", 1)] = "versicolor"
    answer = lookups.lookup([1])[0]
    assert (answer.run_id, answer.prediction) == ("r2", "versicolor")


def test_a_slow_pointer_read_does_not_hold_up_callers_served_from_the_cache():
    store = FakeStore()
    now = [0.0]
    lookups, _ = service(store=store, clock=lambda: now[0])
    lookups.version()
    entered, release = threading.Event(), threading.Event()

    def slow(table):
        entered.set()
        release.wait(10)
        return version()

    store.published_version = slow
    now[0] = 5.0
    reader = threading.Thread(target=lookups.version)
    reader.start()
    try:
        assert entered.wait(5)
        assert lookups._lock.acquire(timeout=1)  # the cache lock is free while the store call runs
        lookups._lock.release()
        assert lookups.cached_version().run_id == "r1"
    finally:
        release.set()
        reader.join(10)


def test_a_failed_re_read_serves_the_cached_version_unless_strict():
    store = FakeStore()
    now = [0.0]
    lookups, _ = service(store=store, clock=lambda: now[0])
    lookups.version()

    def down(table):
        raise OSError("disk gone")

    store.published_version = down
    now[0] = 10.0
    assert lookups.version().run_id == "r1"
    with pytest.raises(OSError):
        lookups.version(force=True, strict=True)
