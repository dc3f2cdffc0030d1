"""Which resources the fake API server serves, and how they are described in discovery.

Built-in resources come from kmock's bundled discovery documents (captured from a real K3s
cluster), filtered to one version per group so that `preferredVersion` is unambiguous. Custom
resources are added the way a cluster would get them: ModelDeployment from the CRD the
project generates (so discovery says exactly what the real CRD says: namespaced, status
subresource, short names), PodMonitor and HTTPRoute as if prometheus-operator and the Gateway
API were installed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import kmock

# Group/versions kept from kmock's bundled (builtin) discovery.
BUILTIN_GROUP_VERSIONS = {
    "v1",
    "apps/v1",
    "autoscaling/v2",
    "batch/v1",
    "events.k8s.io/v1",
    "apiextensions.k8s.io/v1",
    "coordination.k8s.io/v1",
}
STANDARD_VERBS = ("create", "delete", "deletecollection", "get", "list", "patch", "update", "watch")


@dataclass(frozen=True)
class Resource:
    """One served resource: what the store and the URL router need to know about it."""

    group: str
    version: str
    plural: str
    kind: str
    namespaced: bool
    subresources: frozenset[str] = frozenset()
    singular: str = ""
    shortnames: frozenset[str] = frozenset()
    categories: frozenset[str] = frozenset()
    verbs: frozenset[str] = frozenset(STANDARD_VERBS)

    @property
    def api_version(self) -> str:
        return f"{self.group}/{self.version}" if self.group else self.version

    @property
    def has_status(self) -> bool:
        """With a status subresource, writes to the main resource ignore `.status`."""
        return "status" in self.subresources

    @property
    def key(self) -> tuple[str, str, str]:
        return (self.group, self.version, self.plural)

    def info(self) -> kmock.ResourceInfo:
        return kmock.ResourceInfo(
            namespaced=self.namespaced,
            kind=self.kind,
            singular=self.singular or self.kind.lower(),
            verbs=set(self.verbs),
            shortnames=set(self.shortnames),
            categories=set(self.categories),
            subresources=set(self.subresources),
        )


def builtin_resources() -> list[Resource]:
    bundled = kmock.ResourcesArray()
    bundled.load_bundled()
    out = []
    for res in bundled:
        api_version = f"{res.group}/{res.version}" if res.group else res.version
        if api_version not in BUILTIN_GROUP_VERSIONS:
            continue
        info = bundled[res]
        out.append(
            Resource(
                group=res.group,
                version=res.version,
                plural=res.plural,
                kind=info.kind,
                namespaced=bool(info.namespaced),
                subresources=frozenset(info.subresources),
                singular=info.singular or "",
                shortnames=frozenset(info.shortnames),
                categories=frozenset(info.categories),
                verbs=frozenset(info.verbs),
            )
        )
    return out


def from_crd(crd: dict[str, Any]) -> list[Resource]:
    """The served versions of a CustomResourceDefinition, as the API server would serve them."""
    spec = crd["spec"]
    names = spec["names"]
    return [
        Resource(
            group=spec["group"],
            version=version["name"],
            plural=names["plural"],
            kind=names["kind"],
            namespaced=spec["scope"] == "Namespaced",
            subresources=frozenset(version.get("subresources", {}) or {}),
            singular=names.get("singular", ""),
            shortnames=frozenset(names.get("shortNames", [])),
            categories=frozenset(names.get("categories", [])),
        )
        for version in spec["versions"]
        if version.get("served", True)
    ]


def minimal_crd(group: str, version: str, kind: str, plural: str, *, status: bool) -> dict[str, Any]:
    """A schemaless CRD for third-party kinds (PodMonitor, HTTPRoute) we do not validate."""
    return {
        "apiVersion": "apiextensions.k8s.io/v1",
        "kind": "CustomResourceDefinition",
        "metadata": {"name": f"{plural}.{group}"},
        "spec": {
            "group": group,
            "scope": "Namespaced",
            "names": {"kind": kind, "plural": plural, "singular": kind.lower(), "listKind": f"{kind}List"},
            "versions": [
                {
                    "name": version,
                    "served": True,
                    "storage": True,
                    "subresources": {"status": {}} if status else {},
                    "schema": {
                        "openAPIV3Schema": {"type": "object", "x-kubernetes-preserve-unknown-fields": True}
                    },
                }
            ],
        },
    }


POD_MONITOR_CRD = minimal_crd("monitoring.coreos.com", "v1", "PodMonitor", "podmonitors", status=False)
HTTP_ROUTE_CRD = minimal_crd("gateway.networking.k8s.io", "v1", "HTTPRoute", "httproutes", status=True)


class ResourceTable:
    """Served resources, looked up by URL parts or by a human-friendly name in tests."""

    def __init__(self, resources: list[Resource]) -> None:
        self._by_key = {r.key: r for r in resources}

    def __iter__(self):
        return iter(self._by_key.values())

    def by_url(self, group: str, version: str, plural: str) -> Resource | None:
        return self._by_key.get((group, version, plural))

    def by_kind(self, api_version: str, kind: str) -> Resource:
        found = next(
            (r for r in self._by_key.values() if (r.api_version, r.kind) == (api_version, kind)), None
        )
        if found is None:
            raise KeyError(f"the fake API does not serve {api_version} {kind}")
        return found

    def lookup(self, name: str) -> Resource:
        """`Deployment`, `deployments`, `apps/v1/deployments` or `events.k8s.io/v1/events`.

        A bare kind or plural prefers the core group (`Event` is the v1 Event), like kubectl.
        """
        if name.count("/") >= 1:
            api_version, plural = name.rsplit("/", 1)
            group, _, version = api_version.rpartition("/")
            found = self.by_url(group, version, plural)
            if found is not None:
                return found
        matches = [r for r in self._by_key.values() if name in (r.kind, r.plural, r.singular)]
        if not matches:
            raise KeyError(f"the fake API does not serve {name!r}")
        return sorted(matches, key=lambda r: (r.group != "", r.group))[0]
