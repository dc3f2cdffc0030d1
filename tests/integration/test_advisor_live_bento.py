"""The live advisor end to end: a real hybrid bento serving a real published table, scraped by a
real Prometheus, and `read_live` taking every figure from what the runtime exports: the lookup
hit and miss rates, the latencies, and the table size (`modelrollout_lookup_table_keys`)."""

from __future__ import annotations

import shutil
import threading
import time

import pytest

from modelrollout.advisor.live import read_live
from tests.integration.batchrun import run_batch
from tests.integration.bentoproc import (
    IRIS_DIR,
    SETOSA_ROW,
    BentoSpec,
    bento_servers,
    iris_store,  # noqa: F401  (fixture)
)
from tests.integration.prometheus import ScrapeTarget, running_prometheus
from tests.support.waiting import wait_until

pytestmark = [
    pytest.mark.integration,
    pytest.mark.skipif(shutil.which("prometheus") is None, reason="needs /usr/bin/prometheus"),
]

SAMPLE_INPUT = IRIS_DIR / "data" / "iris-input.csv"  # ids 1..150
WINDOW = "10s"
HITS_PER_MISS = 3


@pytest.fixture(scope="module")
def hybrid(iris_store, tmp_path_factory):  # noqa: F811
    db_url = f"sqlite:///{tmp_path_factory.mktemp('advisor-store')}/predictions.sqlite"
    env = {"MODELROLLOUT_STORE_DSN": db_url, "MODELROLLOUT_TABLE": "iris", "MODELROLLOUT_MODE": "hybrid"}
    spec = BentoSpec(iris_store, "v1", env=env)
    with bento_servers([spec], workdir=tmp_path_factory.mktemp("advisor-bento")) as (server,):
        report = run_batch(iris_store, db_url, run_id="r1", input_path=SAMPLE_INPUT)
        assert report["status"] == "published"
        wait_until(
            lambda: server.post("/lookup", json={"keys": ["1"]}).status_code == 200,
            timeout=20,
            what="the published table to be served",
        )
        yield server, report


@pytest.fixture(scope="module")
def traffic(hybrid):
    """Lookups at a steady mix: HITS_PER_MISS keys of the table for every key it lacks (answered by
    the model), for as long as the module needs (bounded)."""
    server, _ = hybrid
    stop = threading.Event()

    def send():
        deadline = time.monotonic() + 120
        n = 0
        while not stop.is_set() and time.monotonic() < deadline:
            n += 1
            keys = [str(1 + (n * 7 + i) % 150) for i in range(HITS_PER_MISS)] + [str(10_000 + n)]
            rows = [SETOSA_ROW] * len(keys)
            server.post("/lookup", json={"keys": keys, "rows": rows})
            stop.wait(0.05)

    worker = threading.Thread(target=send, daemon=True)
    worker.start()
    yield
    stop.set()
    worker.join(timeout=10)


@pytest.fixture(scope="module")
def prometheus(hybrid, traffic):
    server, _ = hybrid
    address = server.url.removeprefix("http://")
    labels = {"namespace": "ml", "modelrollout_deployment": "iris"}
    with running_prometheus([ScrapeTarget(address, labels)]) as prom:
        # rate() over the window needs more than a window of samples
        wait_until(
            lambda: (prom.value('count_over_time(modelrollout_lookup_total{result="hit"}[20s])') or 0) >= 12,
            timeout=60,
            what="a window of lookup samples",
        )
        yield prom.url


def test_the_live_advisor_reads_the_table_size_the_runtime_exports(hybrid, prometheus):
    _, report = hybrid
    live = read_live(prometheus, deployment="iris", namespace="ml", window=WINDOW)
    assert live.head_size == report["rows_written"] == 150  # read from the gauge, not passed in


def test_the_live_advisor_reads_hits_misses_and_latencies_of_real_lookups(prometheus):
    live = read_live(prometheus, deployment="iris", namespace="ml", window=WINDOW)
    assert live.hits_per_second > 0 and live.misses_per_second > 0
    assert live.hit_ratio == pytest.approx(HITS_PER_MISS / (HITS_PER_MISS + 1), abs=0.05)
    assert live.latencies_ms["lookup_p50"] is not None and live.latencies_ms["model_p50"] is not None


def test_another_deployment_has_no_figures(prometheus):
    from modelrollout.advisor.errors import AdvisorError

    with pytest.raises(AdvisorError, match="no lookups"):
        read_live(prometheus, deployment="absent", namespace="ml", window=WINDOW)
