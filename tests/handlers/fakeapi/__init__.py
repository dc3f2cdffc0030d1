"""A fake Kubernetes API server for testing the real kopf operator in-process.

Built on kmock 0.8 (by kopf's author). Taken from kmock: the aiohttp server, the request log
(`FakeCluster.requests()`), the DSL for ad-hoc reactions (`api.server[...] << 500` wins over
the store), Kubernetes `Status` error bodies, and discovery (`/api`, `/apis`, group/version
resource lists) generated from declared resources, seeded from kmock's bundled builtins.

Added here, because kmock's `KubernetesEmulator` lacks it (it merges every write into a dict):

- `store.py`: resourceVersion (global, per change; no-op writes change nothing), uid,
  creationTimestamp, generation (spec changes only), status subresource isolation, finalizers
  and deletionTimestamp, NamespaceLifecycle, CRD schema validation (422), managedFields
  entries (manager/operation, no fieldsV1), an event log.
- `patching.py`: merge, JSON and strategic (as merge) patches, server-side apply (creates,
  merges, removes fields the same manager stopped applying; lists atomic; no conflicts),
  label and field selectors.
- `server.py`: routing of every object request to the store incl. PUT and `/status`, YAML
  apply bodies, `/api/v1/`-style trailing slashes, watches that resume from a
  resourceVersion without replaying seen objects (kmock replays all as ADDED), with optional
  watch latency and slow requests to expose races.
- `cluster.py`: the server in its own thread + loop, helpers that act as a user or a built-in
  controller, `wait_for`.

Not emulated: garbage collection, controllers (Deployment status etc.), defaulting, pruning,
CEL rules, admission, dry-run, field-ownership conflicts, 410 Gone for old resourceVersions.
"""

from .cluster import TEST_MANAGER, FakeCluster, wait_for

__all__ = ["TEST_MANAGER", "FakeCluster", "wait_for"]
