"""Data-plane library used inside serving bentos.

Imported by bentos, never by the operator: it must not import kopf or kubernetes, and BentoML only
where a module glues to it. Submodules (import what you need; this package imports nothing so that
``prometheus_client`` is not loaded before BentoML sets up its multiprocess directory):

- ``config``: the ``MODELROLLOUT_*`` environment as a validated model
- ``requestid``: server-assigned request ids (``X-Request-ID``) and the ASGI middleware that sets them
- ``ground_truth``: the shared prediction log, ``/feedback`` (bearer token), the figures as gauges
- ``metrics``: ``modelrollout_predictions_total``
- ``faults``: test-only latency and error injection
- ``serving``: :class:`~modelrollout.runtime.serving.ServingRuntime`, which ties them together
- ``lookup`` (+ ``lookup_metrics``): answers from a published prediction table, hybrid fallback
- ``storecalls``: store calls on their own bounded pool with a deadline; store health for readiness
- ``guard``: ASGI middleware refusing bodies over the limit (413) and non-JSON (415) before reading
- ``routes``: BentoML's request metrics labelled by route template (``other`` for unknown paths)
- ``logsafe``: escaped, rate-limited, optionally JSON log lines; client errors at INFO
- ``openapi``: the served OpenAPI document with every status and its body
- ``bento``: the glue for any BentoML service (the ``ModelRollout`` mixin, ``@instrument``); the
  one submodule that needs ``bentoml`` (a bento's own dependency, not the runtime's)
- ``store`` / ``batch``: prediction stores (and the prediction log's tables), the batch runner and
  ``modelrollout-batch labels import``
"""
