"""Data-plane library used inside serving bentos.

Imported by bentos, never by the operator: it must not import kopf or kubernetes, and BentoML only
where a module glues to it. Submodules (import what you need; this package imports nothing so that
``prometheus_client`` is not loaded before BentoML sets up its multiprocess directory):

- ``config``: the ``MODELROLLOUT_*`` environment as a validated model
- ``requestid``: ``X-Request-ID`` validation, generation and the ASGI middleware that echoes it
- ``prediction_log``: bounded request id -> prediction memory for the feedback join
- ``metrics``: ``modelrollout_predictions_total`` and ``modelrollout_feedback_total``
- ``faults``: test-only latency and error injection
- ``serving``: :class:`~modelrollout.runtime.serving.ServingRuntime`, which ties them together
"""
