"""Prediction stores: versioned prediction tables with an atomic publish pointer (SQLite, PostgreSQL)."""

from .base import (
    FinalizeOutcome,
    Judgement,
    PredictionStore,
    PublishedVersion,
    RunFacts,
    RunSchema,
    ShardReport,
    Staging,
    coerce_key,
)
from .factory import ENV_DSN, open_store, resolve_store_url, store_kind
from .naming import AlreadyPublished, DuplicateKeys, InvalidName, RunConflict, StoreError, physical_table_name

__all__ = [
    "ENV_DSN",
    "AlreadyPublished",
    "DuplicateKeys",
    "FinalizeOutcome",
    "InvalidName",
    "Judgement",
    "PredictionStore",
    "PublishedVersion",
    "RunConflict",
    "RunFacts",
    "RunSchema",
    "ShardReport",
    "Staging",
    "StoreError",
    "coerce_key",
    "open_store",
    "physical_table_name",
    "resolve_store_url",
    "store_kind",
]
