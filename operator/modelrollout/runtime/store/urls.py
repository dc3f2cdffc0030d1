"""Store URLs: one value configures storage (parsing, defaults, and redaction for logs).

Accepted forms (flag ``--store`` or environment ``MODELROLLOUT_STORE_DSN``):

``sqlite:///relative/file.sqlite``, ``sqlite:////absolute/file.sqlite`` or a plain file path
    The embedded store. Without any setting: ``modelrollout-predictions.sqlite`` in the working dir.
``postgresql://user@host:5432/db?sslmode=require`` (also ``postgres://``) or ``host=... dbname=...``
    PostgreSQL. Anything the URL leaves out comes from libpq's environment (``PGHOST``, ``PGPORT``,
    ``PGDATABASE``, ``PGUSER``, ``PGPASSWORD``, ``PGSSLMODE``...), so ``postgresql://`` alone plus
    ``PGPASSWORD`` from a Secret keeps the password out of the pod spec.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

from .naming import StoreError

ENV_DSN = "MODELROLLOUT_STORE_DSN"
DEFAULT_SQLITE_PATH = "modelrollout-predictions.sqlite"
_KEYWORD_DSN = re.compile(r"^\s*\w+\s*=")


def store_kind(url: str) -> tuple[str, str]:
    """Split a store URL into ("sqlite", path) or ("postgres", dsn); pure, for tests and reports."""
    url = url.strip()
    if url.startswith(("postgresql:", "postgres:")) or _KEYWORD_DSN.match(url):
        return "postgres", "" if url.rstrip("/") in ("postgresql:", "postgres:") else url
    if url.startswith("sqlite:"):
        path = url.removeprefix("sqlite:")
        if path.startswith("///"):
            path = path[3:]
        elif path.startswith("//"):
            raise StoreError(f"store URL {url!r}: write sqlite:///relative/path or sqlite:////absolute/path")
        if not path or path == ":memory:":
            raise StoreError(f"store URL {url!r} names no file; the SQLite store needs a file path")
        return "sqlite", path
    if "://" in url:
        raise StoreError(f"store URL {url!r}: unknown scheme; use sqlite:///path or postgresql://...")
    if not url:
        raise StoreError("empty store URL")
    return "sqlite", url


def resolve_store_url(url: str | None = None, *, environ: Mapping[str, str] | None = None) -> str:
    """The explicit URL, else ``MODELROLLOUT_STORE_DSN``, else the default SQLite file."""
    env = os.environ if environ is None else environ
    return url or env.get(ENV_DSN) or f"sqlite:///{DEFAULT_SQLITE_PATH}"


def redact(url: str) -> str:
    """The store URL without a password, for reports and logs."""
    kind, target = store_kind(url)
    if kind == "sqlite":
        return f"sqlite:///{target}"
    import psycopg

    try:
        info = psycopg.conninfo.conninfo_to_dict(target)
    except psycopg.ProgrammingError:
        return "postgresql:(unparseable DSN)"
    if "password" in info:
        info["password"] = "***"
    return (
        "postgresql:" + psycopg.conninfo.make_conninfo(**info) if info else "postgresql:(libpq environment)"
    )
