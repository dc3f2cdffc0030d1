"""A ModelDeployment as the operator sees it: identity from metadata plus the parsed spec."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, ConfigDict

from modelrollout import GROUP, KIND, VERSION
from modelrollout.api.spec import ModelDeploymentSpec, parse_spec

API_VERSION = f"{GROUP}/{VERSION}"


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
