"""Fixtures shared by the integration tests."""

from __future__ import annotations

import pytest

from tests.integration.postgres import fresh_database


@pytest.fixture(params=["sqlite", "postgres"])
def store(request, tmp_path):
    """An open prediction store of each kind: a SQLite file, and a fresh PostgreSQL database
    (on the module's server; the module imports the `postgres_dsn` fixture)."""
    from modelrollout.runtime.store.factory import open_store

    url = (
        f"sqlite:///{tmp_path}/p.sqlite"
        if request.param == "sqlite"
        else fresh_database(request.getfixturevalue("postgres_dsn"))
    )
    with open_store(url) as opened:
        yield opened
