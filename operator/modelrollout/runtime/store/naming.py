"""Names that end up in SQL, checked against strict patterns so stores can quote without worry.

Logical table names, run ids and key column names are validated here; physical table names are
derived from them; :func:`quote_ident` refuses anything that was not checked. The exceptions of
the store package live here too, because the validators raise them.
"""

from __future__ import annotations

import hashlib
import re

TABLE_NAME_RE = re.compile(r"^[a-z][a-z0-9_]{0,39}$")
RUN_ID_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
COLUMN_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")
METADATA_PREFIX = "modelrollout_"

PREDICTION = "prediction"
MODEL_VERSION = "model_version"
RUN_ID = "run_id"
PREDICTED_AT = "predicted_at"
SHARD = "_shard"
RESERVED_COLUMNS = frozenset({PREDICTION, MODEL_VERSION, RUN_ID, PREDICTED_AT, SHARD})


class StoreError(Exception):
    """A store refused or failed an operation; the message says what to do about it."""


class InvalidName(StoreError, ValueError):
    """A table, run or column name that would not be a safe SQL identifier."""


class AlreadyPublished(StoreError):
    """The run id was published before; re-running it must not write anything again."""


class RunConflict(StoreError):
    """The run id exists with a different schema, model version or shard count."""


class DuplicateKeys(StoreError):
    """The staged rows contain the same key twice, so they cannot be published."""


def validate_table_name(name: str) -> str:
    """Logical names are lower-case identifiers without ``__`` (reserved as the version separator)."""
    if not isinstance(name, str) or not TABLE_NAME_RE.match(name) or "__" in name:
        raise InvalidName(
            f"invalid table name {name!r}: use 1-40 characters of a-z, 0-9 and single '_', starting with a letter"
        )
    if name.startswith(METADATA_PREFIX):
        raise InvalidName(f"invalid table name {name!r}: the prefix {METADATA_PREFIX!r} is reserved")
    return name


def validate_run_id(run_id: str) -> str:
    if not isinstance(run_id, str) or not RUN_ID_RE.match(run_id):
        raise InvalidName(
            f"invalid run id {run_id!r}: use 1-128 characters of A-Z, a-z, 0-9, '.', '_', '-', "
            "starting with a letter or digit"
        )
    return run_id


def validate_column_name(name: str) -> str:
    if not isinstance(name, str) or not COLUMN_RE.match(name):
        raise InvalidName(f"invalid column name {name!r}: use letters, digits and '_' (max 63)")
    if name in RESERVED_COLUMNS:
        raise InvalidName(f"column name {name!r} is reserved for the output; rename the input column")
    return name


def physical_table_name(table: str, run_id: str) -> str:
    """The physical table of one run: stable for a run id (so a rerun finds it), at most 54 chars.

    Run ids may contain characters an identifier may not, so the run id enters as a hash; the
    logical name stays readable in front for whoever looks at the database.
    """
    digest = hashlib.sha256(validate_run_id(run_id).encode()).hexdigest()[:12]
    return f"{validate_table_name(table)}__{digest}"


def quote_ident(name: str) -> str:
    """Double-quote an identifier already checked by one of the validators (ANSI SQL, both stores)."""
    if not COLUMN_RE.match(name):
        raise InvalidName(f"refusing to quote unchecked identifier {name!r}")
    return '"' + name + '"'
