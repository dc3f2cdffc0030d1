"""Names that reach SQL, the run schema, lookup key coercion and store URLs: all pure."""

from __future__ import annotations

import pytest

from modelrollout.runtime.store.base import RunSchema, coerce_key
from modelrollout.runtime.store.factory import DEFAULT_SQLITE_PATH, redact, resolve_store_url, store_kind
from modelrollout.runtime.store.naming import (
    InvalidName,
    StoreError,
    physical_table_name,
    quote_ident,
    validate_column_name,
    validate_run_id,
    validate_table_name,
)


@pytest.mark.parametrize("name", ["scores", "user_scores_v2", "a", "x" * 40])
def test_valid_table_names_pass(name):
    assert validate_table_name(name) == name


@pytest.mark.parametrize(
    "name",
    ["", "Scores", "1st", "a-b", "a b", 'x"; DROP TABLE y; --', "a__b", "x" * 41, "modelrollout_runs", None],
)
def test_table_names_that_are_not_plain_identifiers_are_refused(name):
    with pytest.raises(InvalidName):
        validate_table_name(name)


def test_run_ids_allow_job_names_but_nothing_that_could_escape():
    assert validate_run_id("scores-batch-29012345") == "scores-batch-29012345"
    assert validate_run_id("2026-01-01T00.00_run") == "2026-01-01T00.00_run"
    for bad in ("", "-x", "a'b", "a b", "x" * 129, "a/b"):
        with pytest.raises(InvalidName):
            validate_run_id(bad)


def test_key_columns_must_be_identifiers_and_not_output_columns():
    assert validate_column_name("User_ID") == "User_ID"
    for bad in ("prediction", "run_id", "_shard", "a-b", "1a", ""):
        with pytest.raises(InvalidName):
            validate_column_name(bad)


def test_physical_names_are_stable_per_run_distinct_across_runs_and_short():
    a1 = physical_table_name("scores", "run-1")
    assert a1 == physical_table_name("scores", "run-1")
    assert a1 != physical_table_name("scores", "run-2")
    assert a1.startswith("scores__") and len(a1) == len("scores__") + 12
    assert len(physical_table_name("x" * 40, "y" * 128)) <= 63  # PostgreSQL's identifier limit


def test_quote_ident_refuses_unchecked_text():
    assert quote_ident("scores__abc") == '"scores__abc"'
    with pytest.raises(InvalidName):
        quote_ident('x" OR 1=1 --')


def test_run_schema_round_trips_and_checks_itself():
    schema = RunSchema(keys=(("region", "str"), ("id", "int")), prediction="float")
    assert RunSchema.from_json(schema.to_json()) == schema
    assert schema.arrow_schema().names == ["region", "id", "prediction", "predicted_at"]
    with pytest.raises(StoreError, match="integers or strings"):
        RunSchema(keys=(("id", "float"),), prediction="int")
    with pytest.raises(StoreError, match="repeat"):
        RunSchema(keys=(("id", "int"), ("id", "int")), prediction="int")
    with pytest.raises(StoreError, match="at least one"):
        RunSchema(keys=(), prediction="int")


def test_lookup_keys_are_coerced_to_the_stored_types():
    schema = RunSchema(keys=(("region", "str"), ("id", "int")), prediction="int")
    assert coerce_key(schema, ("eu", "42")) == ("eu", 42)
    assert coerce_key(schema, {"id": 7, "region": "us", "extra": 1}) == ("us", 7)
    single_text = RunSchema(keys=(("user", "str"),), prediction="int")
    assert coerce_key(single_text, 7) == ("7",)


@pytest.mark.parametrize("key", [("eu",), ("eu", "4.5"), ("eu", 4.0), ("eu", True), {"id": 1}, ("eu", None)])
def test_keys_that_cannot_exist_are_refused_with_the_tables_key_named(key):
    schema = RunSchema(keys=(("region", "str"), ("id", "int")), prediction="int")
    with pytest.raises(KeyError):
        coerce_key(schema, key)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("sqlite:///data/p.sqlite", ("sqlite", "data/p.sqlite")),
        ("sqlite:////var/lib/p.sqlite", ("sqlite", "/var/lib/p.sqlite")),
        ("predictions.db", ("sqlite", "predictions.db")),
        ("postgresql://u@db:5432/p", ("postgres", "postgresql://u@db:5432/p")),
        ("postgres://db/p", ("postgres", "postgres://db/p")),
        ("postgresql://", ("postgres", "")),
        ("host=db dbname=p", ("postgres", "host=db dbname=p")),
    ],
)
def test_store_urls_pick_the_store(url, expected):
    assert store_kind(url) == expected


@pytest.mark.parametrize(
    "url", ["mysql://x", "sqlite://", "sqlite:///", "sqlite:///:memory:", "sqlite://host/x", ""]
)
def test_unusable_store_urls_are_refused(url):
    with pytest.raises(StoreError):
        store_kind(url)


def test_store_url_comes_from_the_flag_then_the_environment_then_the_default():
    env = {"MODELROLLOUT_STORE_DSN": "postgresql://db/p"}
    assert resolve_store_url("x.db", environ=env) == "x.db"
    assert resolve_store_url(None, environ=env) == "postgresql://db/p"
    assert resolve_store_url(None, environ={}) == f"sqlite:///{DEFAULT_SQLITE_PATH}"


def test_reports_never_show_a_password():
    assert "s3cret" not in redact("postgresql://u:s3cret@db:5432/p")
    assert "s3cret" not in redact("host=db password=s3cret")
    assert redact("postgresql://") == "postgresql:(libpq environment)"
