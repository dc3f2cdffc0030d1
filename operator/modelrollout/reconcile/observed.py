"""What one reconcile observed: the children of the table as the API server returned them."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from modelrollout.kube import kinds as K

Manifest = dict[str, Any]


@dataclass(frozen=True)
class Observed:
    """The children as the API server returned them, by row key of the table (None: absent),
    the optional kinds it serves, the batch runs (Jobs and their pods), and the analysis
    templates the spec references, by (kind, name) (None: not found; `templates` None: not
    looked up this reconcile; `template_errors`: what the API server answered instead)."""

    children: Mapping[str, Manifest | None] = field(default_factory=dict)
    served: frozenset[str] = frozenset()
    jobs: tuple[dict[str, Any], ...] = ()
    job_pods: dict[str, list[dict[str, Any]]] = field(default_factory=dict)
    templates: Mapping[tuple[str, str], Manifest | None] | None = None
    template_errors: Mapping[tuple[str, str], str] = field(default_factory=dict)

    def __getitem__(self, key: str) -> Manifest | None:
        return self.children.get(key)

    @classmethod
    def of(
        cls,
        *,
        pod_monitor_served: bool = False,
        jobs: tuple[dict[str, Any], ...] | list[dict[str, Any]] = (),
        job_pods: dict[str, list[dict[str, Any]]] | None = None,
        **children: Manifest | None,
    ) -> Observed:
        """Keyword construction (tests, tools): `Observed.of(stable=..., service=...)`."""
        served = frozenset(
            {K.POD_MONITOR.kind, K.HTTP_ROUTE.kind} if pod_monitor_served else {K.HTTP_ROUTE.kind}
        )
        return cls(children=children, served=served, jobs=tuple(jobs), job_pods=job_pods or {})
