"""A ModelDeployment as the operator sees it: identity from metadata plus the parsed spec."""

from __future__ import annotations

import re
from typing import Any

from pydantic import BaseModel, ConfigDict

from modelrollout import GROUP, KIND, VERSION
from modelrollout.api.spec import ModelDeploymentSpec, SpecError, parse_spec

API_VERSION = f"{GROUP}/{VERSION}"

# The longest child name is `<name>-batch` (a CronJob: at most 52 characters, its Jobs add 11);
# 45 leaves room for one more 7-character suffix. Services need a DNS-1035 label.
MAX_NAME_LENGTH = 45
NAME_PATTERN = r"^[a-z]([-a-z0-9]*[a-z0-9])?$"


class ModelDeployment(BaseModel):
    model_config = ConfigDict(frozen=True)

    name: str
    namespace: str
    uid: str
    generation: int = 0
    spec: ModelDeploymentSpec

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> ModelDeployment:
        """Parse a whole object; raises `SpecError` with a readable message on a bad spec."""
        meta = body.get("metadata", {})
        check_name(meta["name"])
        return cls(
            name=meta["name"],
            namespace=meta.get("namespace", "default"),
            uid=meta.get("uid", ""),
            generation=int(meta.get("generation", 0) or 0),
            spec=parse_spec(body.get("spec") or {}),
        )

    def owner_reference(self) -> dict[str, Any]:
        """Controller reference: children are garbage-collected with the ModelDeployment."""
        return {
            "apiVersion": API_VERSION,
            "kind": KIND,
            "name": self.name,
            "uid": self.uid,
            "controller": True,
            "blockOwnerDeletion": True,
        }


def check_name(name: str) -> None:
    """The CRD refuses such names; objects stored before that rule existed get a clear error."""
    if len(name) > MAX_NAME_LENGTH or not re.fullmatch(NAME_PATTERN, name):
        raise SpecError(
            f"metadata.name {name!r}: must be a DNS-1035 label of at most {MAX_NAME_LENGTH} characters"
        )
