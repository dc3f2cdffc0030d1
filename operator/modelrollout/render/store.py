"""Where predictions live (pure): the store connection both the batch Job and the lookup
serving pods get, and the logical table name."""

from __future__ import annotations

import re
from typing import Any

from modelrollout.api.base import parse_duration
from modelrollout.api.batch import Batch, PredictionStore
from modelrollout.api.resource import ModelDeployment


def table_name(md: ModelDeployment) -> str:
    """spec.batch.store.table, else the name made a valid table name (`my--model.v2` -> `my_model_v2`)."""
    batch = md.spec.batch
    if batch and batch.store.table:
        return batch.store.table
    name = re.sub(r"[^a-z0-9]+", "_", md.name.lower()).strip("_")[:40].rstrip("_")
    return name if name[:1].isalpha() else f"t_{name}"[:40].rstrip("_")


def store_env(md: ModelDeployment, batch: Batch) -> list[dict[str, Any]]:
    """Where predictions live: the same for the batch Job and the lookup serving pods."""
    return [
        {"name": "MODELROLLOUT_TABLE", "value": table_name(md)},
        dsn_env("MODELROLLOUT_STORE_DSN", batch.store),
    ]


def dsn_env(name: str, store: PredictionStore) -> dict[str, Any]:
    """The store URL as one env var: from its Secret for PostgreSQL, a sqlite:/// path otherwise."""
    if store.type == "postgres":
        ref = store.dsn_secret_ref
        assert ref is not None  # the schema requires it for postgres
        return {"name": name, "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}}}
    return {"name": name, "value": f"sqlite:///{store.path}"}


def ground_truth_env(md: ModelDeployment) -> list[dict[str, Any]]:
    """What the runtime's prediction log, /feedback and ground-truth figures read
    (the contract is in runtime/ground_truth; without spec.groundTruth: feedback disabled)."""
    truth = md.spec.ground_truth
    if truth is None:
        return []
    env = [
        {
            "name": "MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS",
            "value": str(int(parse_duration(truth.retention))),
        }
    ]
    if truth.store is not None:
        env.append(dsn_env("MODELROLLOUT_GROUND_TRUTH_DSN", truth.store))
    ref = truth.feedback_token_secret_ref
    if ref is not None:
        env.append(
            {
                "name": "MODELROLLOUT_FEEDBACK_TOKEN",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    if truth.positive_class is not None:
        env.append({"name": "MODELROLLOUT_POSITIVE_CLASS", "value": truth.positive_class})
    return env
