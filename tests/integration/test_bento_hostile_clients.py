"""The iris bento under a real ``bentoml serve`` against careless and hostile clients.

One hybrid server for the whole module, serving an integer-keyed table (Parquet input, ids
1..150) published before it starts, with the default limits. Each test is one defect a client
could exploit before: bodies read and parsed whatever their size, raw paths as metric labels,
5xx a client could cause (and so roll back a healthy canary), aliased or overflowing keys,
forged or flooding log lines, a spec that did not say what the endpoints answer.
"""

from __future__ import annotations

import json
import re
import socket
import subprocess
import sys
import time
import uuid

import httpx
import pytest

from tests.integration.batchrun import run_batch, write_input
from tests.integration.bentoproc import (
    FEEDBACK_TOKEN,
    SETOSA_ROW,
    VIRGINICA_ROW,
    BentoServer,
    BentoSpec,
    bento_servers,
    iris_store,  # noqa: F401  (fixture)
    metric_value,
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

API_PATHS = ("/predict", "/lookup", "/feedback")
AUTH = f"Authorization: Bearer {FEEDBACK_TOKEN}"  # what a labelling client sends to /feedback
MAX_BODY = 1 << 20  # the default MODELROLLOUT_MAX_BODY_BYTES
TAIL_KEY = 500  # not in the table: hybrid answers it from the model


@pytest.fixture(scope="module")
def server(iris_store, tmp_path_factory):  # noqa: F811
    work = tmp_path_factory.mktemp("hostile")
    db_url = f"sqlite:///{work}/predictions.sqlite"
    run_batch(iris_store, db_url, run_id="r1", input_path=write_input(work / "in.parquet", rows=150))
    env = {"MODELROLLOUT_MODE": "hybrid", "MODELROLLOUT_TABLE": "iris", "MODELROLLOUT_STORE_DSN": db_url}
    with bento_servers([BentoSpec(iris_store, "v1", env=env)], workdir=work) as (running,):
        yield running


def raw_http(server: BentoServer, request: bytes, *, timeout_s: float = 10.0) -> tuple[int, dict, bytes]:
    """Send ``request`` as is on a fresh connection; (status, headers, body) of the answer."""
    with socket.create_connection(("127.0.0.1", server.port), timeout=timeout_s) as sock:
        sock.sendall(request)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = sock.recv(65536)
            if not chunk:
                break
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
        while len(body) < int(headers.get("content-length", 0)):
            chunk = sock.recv(65536)
            if not chunk:
                break
            body += chunk
    return int(lines[0].split()[1]), headers, body


def server_errors(server: BentoServer) -> float:
    """5xx answers of the API endpoints so far: what the canary's error-rate template counts."""
    from prometheus_client.parser import text_string_to_metric_families

    return sum(
        sample.value
        for family in text_string_to_metric_families(server.metrics_text())
        for sample in family.samples
        if sample.name == "bentoml_service_request_total"
        and sample.labels.get("endpoint") in API_PATHS
        and sample.labels.get("http_response_code", "").startswith("5")
    )


def log_since(server: BentoServer, offset: int) -> str:
    return server.log_path.read_bytes()[offset:].decode("utf-8", errors="replace")


# --- 1. bodies ------------------------------------------------------------------------------------


def test_body_over_limit_is_413_before_parsing(server):
    """A declared length over the limit is refused before one byte of the body is sent: the
    answer arrives although the client never sends the 100 MB it announced."""
    for path in API_PATHS:
        status, headers, body = raw_http(
            server,
            f"POST {path} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n{AUTH}\r\n"
            "Content-Length: 100000000\r\n\r\n{".encode(),
        )
        assert status == 413, body
        assert "MODELROLLOUT_MAX_BODY_BYTES" in json.loads(body)["error"]
        assert headers["x-request-id"]


def test_feedback_without_the_token_is_refused_before_its_body_is_read(server):
    status, headers, body = raw_http(
        server,
        b"POST /feedback HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        b"Content-Length: 100000000\r\n\r\n{",
    )
    assert status == 401 and headers["www-authenticate"].startswith("Bearer") and headers["x-request-id"]


def test_chunked_body_over_limit_is_413_and_one_at_the_limit_is_parsed(server):
    def chunks(total: int):
        yield b'{"rows": [' + b",".join([json.dumps(SETOSA_ROW).encode()] * 1) + b"]"
        sent = 0
        while sent < total:
            yield b" " * 65536
            sent += 65536
        yield b"}"

    too_big = server.post(
        "/predict", content=chunks(2 * MAX_BODY), headers={"Content-Type": "application/json"}
    )
    assert too_big.status_code == 413
    padding = MAX_BODY - len(b'{"rows": [[5.1, 3.5, 1.4, 0.2]]}')
    at_limit = b'{"rows": [[5.1, 3.5, 1.4, 0.2]]' + b" " * padding + b"}"
    assert len(at_limit) == MAX_BODY
    answered = server.post("/predict", content=at_limit, headers={"Content-Type": "application/json"})
    assert answered.status_code == 200 and answered.json()["predictions"] == ["setosa"]


# --- 2. metric labels -----------------------------------------------------------------------------


def series(server: BentoServer) -> set[str]:
    return {
        line.split(" ")[0] for line in server.metrics_text().splitlines() if line and not line.startswith("#")
    }


def test_random_paths_add_no_metric_series(server):
    for path in ("/warm-up", "/predict/", "/"):  # the first of each (label, status) creates its series
        server.get(path)
        server.post(path)
    before = series(server)
    paths = [f"/{uuid.uuid4().hex}" for _ in range(200)]
    paths += [f"/predict/{i}" for i in range(50)] + [f"/{'x' * 2000}{i}" for i in range(20)]
    paths += ["/%0Ametrics", "/..%2F..%2Fetc", "/%E2%80%AE", "/readyz/extra", "//predict"]
    for i, path in enumerate(paths):
        (server.get if i % 2 else server.post)(path)
    after = series(server)
    assert after == before, sorted(after - before)[:5]
    assert len(paths) > 250
    text = server.metrics_text()
    assert not any(p.strip("/") in text for p in paths[:200])
    assert (
        metric_value(text, "bentoml_service_request_total", endpoint="other", http_response_code="404") >= 250
    )


# --- 3. client mistakes are 4xx -------------------------------------------------------------------


@pytest.mark.parametrize("path", API_PATHS)
def test_multipart_without_boundary_is_415(server, path):
    errors = server_errors(server)
    for content_type in ("multipart/form-data", "multipart/form-data; boundary=x", "text/plain",
                         "application/x-www-form-urlencoded", "application/vnd.bentoml+pickle", "application/xml"):  # fmt: skip
        response = server.post(
            path, content=b'{"rows": [[5.1, 3.5, 1.4, 0.2]]}',
            headers={"Content-Type": content_type, "Authorization": f"Bearer {FEEDBACK_TOKEN}"},
        )  # fmt: skip
        assert response.status_code == 415, (content_type, response.text)
        assert "application/json" in response.json()["error"]
    accepted = server.post(
        "/predict",
        content=json.dumps({"rows": [SETOSA_ROW]}),
        headers={"Content-Type": "application/json; charset=utf-8"},
    )
    assert accepted.status_code == 200
    assert server_errors(server) == errors


def lookup(server: BentoServer, keys, rows=None) -> httpx.Response:
    return server.post("/lookup", json={"keys": keys} if rows is None else {"keys": keys, "rows": rows})


def test_huge_integer_key_is_400_for_that_key_only(server):
    errors = server_errors(server)
    response = lookup(
        server, [1, 2**63, 2**200, -(2**63) - 1, TAIL_KEY], rows=[SETOSA_ROW] * 4 + [VIRGINICA_ROW]
    )
    assert response.status_code == 200
    answers = response.json()["answers"]
    assert [(a["status"], a["source"]) for a in answers] == [
        (200, "lookup"), (400, None), (400, None), (400, None), (200, "model"),
    ]  # fmt: skip
    assert "out of range" in answers[1]["message"] and answers[1]["key"] == 2**63
    assert answers[4]["prediction"] == "virginica"
    only_bad = lookup(server, [2**63])
    assert only_bad.status_code == 400 and only_bad.json()["answers"][0]["status"] == 400
    assert server_errors(server) == errors


@pytest.mark.parametrize("alias", ["١", "１", " 1 ", "+1", "01", "1.0", "1_0", "-0", "9" * 30])
def test_integer_keys_match_only_canonical_ascii_digits(server, alias):
    response = lookup(server, [alias, "1"])
    assert response.status_code == 200
    bad, good = response.json()["answers"]
    assert (bad["status"], bad["found"]) == (400, False)
    assert "canonical ASCII digits" in bad["message"] or "out of range" in bad["message"]
    assert (good["status"], good["source"], good["key"]) == (200, "lookup", "1")


@pytest.mark.parametrize(
    "rows", ["[[false, 0, 0, 0]]", '[["5.1", "3.5", "1.4", "0.2"]]', "[[5.1, 3.5, 1.4, null]]", "[[1e400, 0, 0, 0]]",
             "[[NaN, 0, 0, 0]]", "[[5.1, 3.5, 1.4, 0.2, 0.1]]"],
)  # fmt: skip
def test_features_are_json_numbers_only(server, rows):
    headers = {"Content-Type": "application/json"}
    assert server.post("/predict", content=f'{{"rows": {rows}}}', headers=headers).status_code == 400
    assert (
        server.post(
            "/lookup", content=f'{{"keys": [{TAIL_KEY}], "rows": {rows}}}', headers=headers
        ).status_code
        == 400
    )
    assert server.post("/predict", json={"rows": [[5, 3, 1, 0]]}).status_code == 200  # integers are numbers


# --- 6. logs --------------------------------------------------------------------------------------


def test_control_characters_in_path_are_escaped_in_logs(server):
    offset = server.log_path.stat().st_size
    forged = "2026-01-01T00:00:00+0000 [ERROR] [entry_service:IrisClassifier:1] forged-line"
    path = "/predict%0A" + forged.replace(" ", "%20") + "%0D%1B[31m"
    status, _, _ = raw_http(server, f"GET {path} HTTP/1.1\r\nHost: x\r\n\r\n".encode())
    assert status == 404
    wait_until(lambda: "forged-line" in log_since(server, offset), timeout=10, what="the access log line")
    text = log_since(server, offset)
    assert not any(line.startswith(forged[:24]) for line in text.splitlines())
    assert "/predict\\n2026-01-01T00:00:00+0000 [ERROR]" in text and "\\r\\x1b[31m" in text
    assert "\x1b" not in text


def test_client_errors_logged_at_info_without_traceback(server):
    offset = server.log_path.stat().st_size

    def logged() -> bool:
        server.post("/predict", json={"rows": [[True, 0, 0, 0]]})
        return "client error 400: /predict [POST]" in log_since(server, offset)

    wait_until(logged, timeout=20, interval=0.5, what="a client error line (the rate limit refills at 1/s)")
    started = time.monotonic()
    for _ in range(200):
        assert server.post("/predict", json={"rows": "nope"}).status_code == 400
    elapsed = time.monotonic() - started
    time.sleep(1.1)
    server.post("/predict", json={"rows": "nope"})
    wait_until(
        lambda: "similar lines suppressed" in log_since(server, offset), timeout=10, what="the drop count"
    )
    text = log_since(server, offset)
    lines = [line for line in text.splitlines() if "client error 400" in line]
    assert all("[INFO]" in line for line in lines)
    assert "Traceback" not in text and "[ERROR]" not in text
    assert len(lines) <= 10 + elapsed * 1.0 + 3, len(lines)  # burst 10, then 1 per second


# --- 7. the served spec ---------------------------------------------------------------------------


def test_served_spec_documents_every_status_and_the_real_types(server):
    spec = server.get("/docs.json").json()
    statuses = {path: set(spec["paths"][path]["post"]["responses"]) for path in API_PATHS}
    assert statuses["/lookup"] == {"200", "400", "404", "413", "415", "429", "500", "503", "504"}
    assert statuses["/feedback"] == {
        "200",
        "400",
        "401",
        "403",
        "404",
        "409",
        "413",
        "415",
        "429",
        "500",
        "503",
        "504",
    }
    schemas = spec["components"]["schemas"]
    assert schemas["FeedbackRequest"]["properties"]["label"]["enum"] == ["setosa", "versicolor", "virginica"]
    assert schemas["FeedbackResponse"]["properties"]["detail"] == {
        "nullable": True,
        "type": "string",
        "default": None,
        "title": "Detail",
    }
    assert schemas["ValidationErrorBody"]["properties"]["detail"]["type"] == "array"
    assert schemas["LookupAnswer"]["properties"]["message"]["nullable"] is True
    row = schemas["PredictRequest"]["properties"]["rows"]["items"]
    assert row["items"] == {"type": "number"} and row["minItems"] == row["maxItems"] == 4


def test_openapi_spec_is_true_schemathesis(server, tmp_path):
    """Schemathesis generates valid and invalid requests from the served document and checks
    every response: no 5xx, no status the document does not list, bodies match their schema."""
    checks = "not_a_server_error,status_code_conformance,response_schema_conformance,content_type_conformance"
    command = [
        str(_st()), "run", f"{server.url}/docs.json", "--url", server.url, "--max-examples", "30",
        "--checks", f"{checks},negative_data_rejection", "--generation-database", "none", "--no-color",
        "--workers", "2", "--seed", "1", "--request-timeout", "10", "--header", AUTH.replace(" ", "", 1),
    ]  # fmt: skip
    errors = server_errors(server)
    result = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-2000:]
    tested = re.search(r"(\d+) generated, (\d+) passed", result.stdout)
    assert tested and int(tested.group(1)) >= 100 and tested.group(1) == tested.group(2), result.stdout[
        -2000:
    ]
    assert server_errors(server) == errors


def _st():
    from pathlib import Path

    return Path(sys.executable).with_name("st")
