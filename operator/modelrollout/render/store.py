"""Where predictions live (pure): the store connection both the batch Job and the lookup
serving pods get, and the logical table name."""

from __future__ import annotations

import re
from typing import Any

from modelrollout.api.batch import Batch
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
    env: list[dict[str, Any]] = [{"name": "MODELROLLOUT_TABLE", "value": table_name(md)}]
    if batch.store.type == "postgres":
        ref = batch.store.dsn_secret_ref
        env.append(
            {
                "name": "MODELROLLOUT_STORE_DSN",
                "valueFrom": {"secretKeyRef": {"name": ref.name, "key": ref.key}},
            }
        )
    else:
        env.append({"name": "MODELROLLOUT_STORE_DSN", "value": f"sqlite:///{batch.store.path}"})
    return env
