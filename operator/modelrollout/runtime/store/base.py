"""What a prediction store is: the run schema, the records it returns, the interface it implements.

A prediction table has one *logical* name (what the operator and the lookup service ask for) and
many *physical* versions, one per batch run. A run writes into its own physical table; publishing
is one transaction that moves the logical name's pointer (a row of ``modelrollout_published``) to
the new physical table. Readers resolve the pointer, then query that physical table, so they see
the old version or the new one, never a half-written one, and a failed or killed run leaves the
pointer where it was.

Names (logical, physical, run ids, columns) are checked in :mod:`.naming` and re-exported here.
"""

from __future__ import annotations

import json
import re
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import pyarrow as pa

from .naming import (
    PREDICTED_AT,
    PREDICTION,
    StoreError,
    validate_column_name,
)

Kind = Literal["int", "float", "str", "bool"]
KEY_KINDS: tuple[Kind, ...] = ("int", "str")
PREDICTION_KINDS: tuple[Kind, ...] = ("int", "float", "str", "bool")


def arrow_kind(data_type: pa.DataType) -> Kind | None:
    """The store-level kind of an Arrow type, or None when a prediction table cannot hold it."""
    if pa.types.is_boolean(data_type):
        return "bool"
    if pa.types.is_integer(data_type):
        return "int"
    if pa.types.is_floating(data_type):
        return "float"
    if pa.types.is_string(data_type) or pa.types.is_large_string(data_type):
        return "str"
    if pa.types.is_dictionary(data_type):
        return arrow_kind(data_type.value_type)
    return None


ARROW_TYPES: dict[str, pa.DataType] = {
    "int": pa.int64(),
    "float": pa.float64(),
    "str": pa.string(),
    "bool": pa.bool_(),
}


@dataclass(frozen=True)
class RunSchema:
    """Key columns (name, kind) in input order and the prediction's kind; fixed for a whole run."""

    keys: tuple[tuple[str, Kind], ...]
    prediction: Kind

    def __post_init__(self) -> None:
        if not self.keys:
            raise StoreError("a prediction table needs at least one key column")
        names = [name for name, _ in self.keys]
        if len(set(names)) != len(names):
            raise StoreError(f"key columns repeat a name: {names}")
        for name, kind in self.keys:
            validate_column_name(name)
            if kind not in KEY_KINDS:
                raise StoreError(f"key column {name!r} has kind {kind!r}; keys must be integers or strings")
        if self.prediction not in PREDICTION_KINDS:
            raise StoreError(f"prediction kind {self.prediction!r} is not one of {PREDICTION_KINDS}")

    @property
    def key_names(self) -> tuple[str, ...]:
        return tuple(name for name, _ in self.keys)

    def arrow_schema(self) -> pa.Schema:
        """The schema of what a runner hands to :meth:`PredictionStore.write_chunk`."""
        fields = [pa.field(name, ARROW_TYPES[kind], nullable=False) for name, kind in self.keys]
        fields.append(pa.field(PREDICTION, ARROW_TYPES[self.prediction]))
        fields.append(pa.field(PREDICTED_AT, pa.timestamp("us", tz="UTC"), nullable=False))
        return pa.schema(fields)

    def to_json(self) -> str:
        return json.dumps({"keys": [list(k) for k in self.keys], "prediction": self.prediction})

    @classmethod
    def from_json(cls, text: str) -> RunSchema:
        data = json.loads(text)
        return cls(keys=tuple((str(n), k) for n, k in data["keys"]), prediction=data["prediction"])


def coerce_key(schema: RunSchema, key: Any) -> tuple:
    """One lookup key as the tuple of typed values the table stores.

    Keys are stored typed (integers as integers: a compact index and exact comparison), and
    callers often hold them as JSON, so ``"42"`` finds the integer key 42 and ``42`` finds the text
    key ``"42"``. A mapping is read by column name; a scalar is fine for a one-column key.
    """
    if isinstance(key, Mapping):
        missing = [name for name in schema.key_names if name not in key]
        if missing:
            raise KeyError(
                f"lookup key lacks column(s) {missing}; the table's key is {list(schema.key_names)}"
            )
        values = [key[name] for name in schema.key_names]
    elif isinstance(key, (tuple, list)):
        values = list(key)
    else:
        values = [key]
    if len(values) != len(schema.keys):
        raise KeyError(
            f"lookup key {_shown(key)} has {len(values)} part(s); the table's key is {list(schema.key_names)}"
        )
    out: list[Any] = []
    for (name, kind), value in zip(schema.keys, values, strict=True):
        if kind == "int":
            out.append(int_key_part(name, value))
        else:
            if isinstance(value, bool) or not isinstance(value, (str, int)):
                raise KeyError(f"key column {name!r} holds text; got {_shown(value)}")
            if (
                isinstance(value, str) and "\x00" in value
            ):  # PostgreSQL text cannot hold NUL: the query would fail
                raise KeyError(f"key column {name!r} holds text without NUL characters; got {_shown(value)}")
            out.append(str(value))
    return tuple(out)


def int_key_part(name: str, value: Any) -> int:
    """One integer key column's value: a JSON integer, or a string of canonical ASCII digits
    (``"42"``, ``"-7"``), within the signed 64-bit range every store's INTEGER/BIGINT holds.

    Why so strict: ``int()`` also reads ``" 1 "``, ``"+1"``, ``"007"``, ``"1_000"`` and Arabic or
    full-width digits (``"١"``, ``"１"``), so several different strings would alias one key; and an
    integer outside 64 bits makes the driver raise, which must stay a client's mistake (KeyError:
    this key cannot be in the table), never a failed request.
    """
    if isinstance(value, bool) or not isinstance(value, (int, str)):
        raise KeyError(f"key column {name!r} holds integers; got {_shown(value)}")
    if isinstance(value, str):
        if not _CANONICAL_INT.fullmatch(value) or value == "-0":
            raise KeyError(
                f"key column {name!r} holds integers; {_shown(value)} is not an integer written "
                "in canonical ASCII digits (like 42 or -7)"
            )
        if len(value.removeprefix("-")) > 19:  # beyond 64 bits; int() never sees a huge string
            raise KeyError(
                f"key column {name!r} holds signed 64-bit integers; {_shown(value)} is out of range"
            )
        value = int(value)
    if not INT64_MIN <= value <= INT64_MAX:
        raise KeyError(f"key column {name!r} holds signed 64-bit integers; {_shown(value)} is out of range")
    return value


INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_CANONICAL_INT = re.compile(r"-?(?:0|[1-9][0-9]*)", re.ASCII)
_SHOWN_CHARS = 80


def _shown(value: Any) -> str:
    """``repr`` of a client's value for a message, cut to a readable length."""
    text = (
        repr(value)
        if not isinstance(value, int) or value.bit_length() < 256
        else f"<{value.bit_length()}-bit integer>"
    )
    return text if len(text) <= _SHOWN_CHARS else text[: _SHOWN_CHARS - 3] + "..."


@dataclass(frozen=True)
class PublishedVersion:
    """One version of a logical table as the pointer (or the run history) describes it."""

    table: str
    run_id: str
    physical: str
    model_version: str
    rows: int
    published_at: str
    schema: RunSchema
    distribution: dict[str, Any] | None = None


@dataclass(frozen=True)
class Staging:
    """A shard's handle on the run it writes into; returned by :meth:`PredictionStore.begin_run`."""

    table: str
    run_id: str
    physical: str
    schema: RunSchema
    model_version: str
    shard_index: int
    shard_count: int
    reference: PublishedVersion | None = None


@dataclass(frozen=True)
class EncodedChunk:
    """Rows in the form a store's bulk path sends them (tuples for SQLite, CSV for COPY)."""

    rows: int
    payload: Any


@dataclass(frozen=True)
class ShardReport:
    """What a finished shard left behind: input rows, rows written and its prediction statistics."""

    shard_index: int
    rows_in: int
    rows_written: int
    stats: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class RunFacts:
    """Everything verification may look at, gathered inside the publishing transaction."""

    table: str
    run_id: str
    rows_in: int
    rows_stored: int
    shards: tuple[ShardReport, ...]
    reference: PublishedVersion | None


@dataclass(frozen=True)
class Judgement:
    """The verdict of the judge a runner passes to :meth:`PredictionStore.finalize`."""

    passed: bool
    verification: dict[str, Any]
    distribution: dict[str, Any] | None = None


FinalizeStatus = Literal["published", "already_published", "waiting", "rejected", "failed"]


@dataclass(frozen=True)
class FinalizeOutcome:
    status: FinalizeStatus
    version: PublishedVersion | None = None
    verification: dict[str, Any] | None = None
    shards_done: int = 0
    shard_count: int = 1
    error: str | None = None


Judge = Callable[[RunFacts], Judgement]


class PredictionStore(ABC):
    """The interface the batch runner and the lookup service use; SQLite and PostgreSQL implement it.

    Writers: :meth:`begin_run` -> :meth:`write_chunk`... -> :meth:`finish_shard` -> :meth:`finalize`.
    Readers: :meth:`published_version` and :meth:`lookup`. Every method is safe to call from several
    threads (each thread gets its own connection).
    """

    url: str

    @abstractmethod
    def begin_run(
        self,
        table: str,
        run_id: str,
        *,
        schema: RunSchema,
        model_version: str,
        shard_index: int = 0,
        shard_count: int = 1,
    ) -> Staging:
        """Create (or reset this shard's part of) the run's staging table; raise AlreadyPublished if done."""

    @abstractmethod
    def encode_chunk(self, staging: Staging, rows: pa.Table) -> EncodedChunk:
        """Check and convert rows (schema: ``staging.schema.arrow_schema()``) for the bulk path.

        Separate from writing so a runner can encode the next chunk while the store writes this one.
        """

    @abstractmethod
    def write_encoded(self, staging: Staging, chunk: EncodedChunk) -> int:
        """Append one encoded chunk in one committed transaction; returns its row count."""

    def write_chunk(self, staging: Staging, rows: pa.Table) -> int:
        return self.write_encoded(staging, self.encode_chunk(staging, rows))

    @abstractmethod
    def finish_shard(
        self, staging: Staging, *, rows_in: int, rows_written: int, stats: dict[str, Any]
    ) -> None:
        """Record that this shard wrote everything; the run can be finalized once all shards did."""

    @abstractmethod
    def finalize(self, table: str, run_id: str, *, judge: Judge, keep_versions: int = 3) -> FinalizeOutcome:
        """Seal (unique key index), judge and, if the judge passes, atomically publish the run."""

    @abstractmethod
    def abort_shard(self, staging: Staging, *, error: str) -> None:
        """Record a failed shard and drop what it staged, so a failing run publishes nothing."""

    @abstractmethod
    def run_state(self, table: str, run_id: str) -> str | None:
        """``staging``, ``published``, ``retired``, ``rejected``, ``failed``, ``dropped`` or None."""

    @abstractmethod
    def staged_rows(self, table: str, run_id: str) -> int | None:
        """Rows currently in the run's physical table (None if it does not exist)."""

    @abstractmethod
    def published_version(self, table: str) -> PublishedVersion | None:
        """The version the pointer names now, or None before the first publish."""

    @abstractmethod
    def lookup_version(self, version: PublishedVersion, keys: Sequence[tuple]) -> dict[tuple, Any]:
        """Predictions of the given (already coerced) keys in one physical table; absent keys are left out."""

    @abstractmethod
    def cleanup(self, table: str, *, keep_versions: int = 3, stale_after_s: float = 24 * 3600) -> list[str]:
        """Drop retired versions beyond the newest ``keep_versions`` and abandoned staging tables."""

    @abstractmethod
    def iter_query(self, sql: str, *, chunk_rows: int) -> tuple[list[str], Any]:
        """Run a read-only query on its own connection: (column names, iterator of row lists)."""

    @abstractmethod
    def close(self) -> None:
        """Close every connection this store opened."""

    @abstractmethod
    def release_thread(self) -> None:
        """Close the calling thread's connection (a finished writer thread calls this)."""

    def is_missing_table(self, exc: BaseException) -> bool:
        """True when ``exc`` says a table does not exist (a dropped version, a replaced file):
        a reader then re-reads the pointer instead of failing."""
        return False

    def lookup(self, table: str, keys: Sequence[Any]) -> dict[tuple, Any]:
        """Predictions for keys in the currently published version of ``table`` (convenience)."""
        version = self.published_version(table)
        if version is None:
            return {}
        return self.lookup_version(version, [coerce_key(version.schema, key) for key in keys])

    def distribution(self, table: str) -> dict[str, Any] | None:
        """The prediction distribution recorded when the current version was published (for PSI)."""
        version = self.published_version(table)
        return None if version is None else version.distribution

    def __enter__(self) -> PredictionStore:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()
