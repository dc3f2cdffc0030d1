"""Open a prediction store from one URL (see urls.py for the accepted forms)."""

from __future__ import annotations

from collections.abc import Mapping

from .base import PredictionStore
from .urls import DEFAULT_SQLITE_PATH, ENV_DSN, redact, resolve_store_url, store_kind

__all__ = [
    "DEFAULT_SQLITE_PATH",
    "ENV_DSN",
    "open_log_store",
    "open_store",
    "redact",
    "resolve_store_url",
    "store_kind",
]


def open_store(
    url: str | None = None,
    *,
    environ: Mapping[str, str] | None = None,
    wait_timeout_s: float | None = None,
) -> PredictionStore:
    """The store at ``url``. ``wait_timeout_s`` opens it for serving lookups: one statement waits at
    most that long for a lock (SQLite busy timeout, PostgreSQL ``statement_timeout`` and connect
    timeout) and a SQLite file is only read, never switched to WAL, and re-opened when replaced.
    Writers (batch runs) leave it unset and wait long.
    """
    kind, target = store_kind(resolve_store_url(url, environ=environ))
    if kind == "postgres":
        from .postgres import PostgresStore

        return PostgresStore(target, statement_timeout_s=wait_timeout_s)
    from .sqlite import SqliteStore

    return SqliteStore(target, busy_timeout_s=wait_timeout_s)


def open_log_store(url: str, *, wait_timeout_s: float) -> PredictionStore:
    """The store at ``url`` opened for the prediction log: it writes (a SQLite file in WAL mode, so
    readers never wait for it), but no statement waits longer than ``wait_timeout_s`` for a lock or
    an answer, so a stuck store costs the log's own thread a bounded wait and never a request."""
    kind, target = store_kind(url)
    if kind == "postgres":
        from .postgres import PostgresStore

        return PostgresStore(target, statement_timeout_s=wait_timeout_s)
    from .sqlite import SqliteStore

    return SqliteStore(target, busy_timeout_s=wait_timeout_s, reader=False, watch_file=True)
