"""Open a prediction store from one URL (see urls.py for the accepted forms)."""

from __future__ import annotations

from collections.abc import Mapping

from .base import PredictionStore
from .urls import DEFAULT_SQLITE_PATH, ENV_DSN, redact, resolve_store_url, store_kind

__all__ = ["DEFAULT_SQLITE_PATH", "ENV_DSN", "open_store", "redact", "resolve_store_url", "store_kind"]


def open_store(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> PredictionStore:
    kind, target = store_kind(resolve_store_url(url, environ=environ))
    if kind == "postgres":
        from .postgres import PostgresStore

        return PostgresStore(target)
    from .sqlite import SqliteStore

    return SqliteStore(target)
