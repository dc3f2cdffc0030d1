"""A stand-in for the Prometheus HTTP API on 127.0.0.1, answering what a test scripts.

Only `/api/v1/query` (instant queries, as the operator's analysis asks them) is served; the
answers are one-sample vectors, empty vectors or HTTP errors, and every query is recorded so a
test can check what was asked (e.g. that the selector names the canary track).
"""

from __future__ import annotations

import contextlib
import json
import socket
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any
from urllib.parse import parse_qs, urlparse


class FakePrometheus:
    """`/api/v1/query` answered by `answer(promql)`: a float (one-sample vector), None (an empty
    vector) or an int HTTP status >= 400 (an error body). Every query is recorded."""

    def __init__(self, answer: Callable[[str], float | int | None]) -> None:
        self.answer = answer
        self.queries: list[str] = []
        self.authorizations: list[str | None] = []  # the Authorization header of every query
        prometheus = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802 - http.server's naming
                url = urlparse(self.path)
                query = parse_qs(url.query).get("query", [""])[0]
                if url.path != "/api/v1/query" or not query:
                    return self._send(400, {"status": "error", "errorType": "bad_data", "error": "no query"})
                prometheus.queries.append(query)
                prometheus.authorizations.append(self.headers.get("Authorization"))
                value = prometheus.answer(query)
                if isinstance(value, int) and not isinstance(value, bool) and value >= 400:
                    return self._send(
                        value, {"status": "error", "errorType": "internal", "error": "injected"}
                    )
                result = [] if value is None else [{"metric": {}, "value": [time.time(), repr(float(value))]}]
                self._send(200, {"status": "success", "data": {"resultType": "vector", "result": result}})

            def _send(self, code: int, payload: dict[str, Any]) -> None:
                body = json.dumps(payload).encode()
                self.send_response(code)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args: Any) -> None:  # quiet
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True
        )

    def __enter__(self) -> FakePrometheus:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join(timeout=5)


def closed_port_url() -> str:
    with contextlib.closing(socket.socket(socket.AF_INET, socket.SOCK_STREAM)) as sock:
        sock.bind(("127.0.0.1", 0))
        return f"http://127.0.0.1:{sock.getsockname()[1]}"
