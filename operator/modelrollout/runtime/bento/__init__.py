"""Bring your own bento: the modelrollout runtime in an existing BentoML 1.4 service, in a few lines.

    import bentoml
    from modelrollout.runtime.bento import ModelRollout, instrument

    @instrument                                   # request ids, /feedback auth, body guard, metric labels
    @bentoml.service(workers=1)
    class ChurnClassifier(ModelRollout, labels=("churn", "stay")):   # + /feedback, readiness, shutdown
        model_ref = bentoml.models.BentoModel("churn-model:latest")

        def __init__(self) -> None:
            self.model = bentoml.sklearn.load_model(self.model_ref)
            super().__init__(model=self.model_ref)  # the prediction log, figures and counters start

        @bentoml.api
        async def classify(self, tenure_months: int, ..., ctx: bentoml.Context) -> Verdict:
            label = ...
            receipt = await self.record_predictions(ctx, [label])   # logged + counted, row 0
            return Verdict(label=label, **vars(receipt))  # request_id, model, version, track

What the service then has (the same as the iris example bento):

- a server-assigned request id on every response (``X-Request-ID``), keying the shared
  prediction log; a caller's own ``X-Request-ID`` is kept as ``client_request_id`` only;
- ``/feedback`` (``{"request_id", "label", "row"}``, bearer token ``MODELROLLOUT_FEEDBACK_TOKEN``)
  joining labels to the log from any pod; the figures of this pod's version as
  ``modelrollout_ground_truth_*`` gauges (what the canary's accuracy check reads);
- ``modelrollout_predictions_total{model,version,track,path}``; BentoML's request metrics with the
  ``endpoint`` label from the routes (``other`` for unknown paths), latency buckets from 1 ms;
- 413/415/429 before a body is read, escaped and rate-limited client-error logs, ``/docs.json``
  with every status, ``/readyz`` once the runtime runs.

:class:`ModelRollout` is the per-process half (:mod:`.mixin`), :func:`instrument` the per-service
half (:mod:`.wiring`). Needs ``bentoml`` (the bento's own dependency); the rest of
``modelrollout.runtime`` does not.
"""

from __future__ import annotations

from ..serving import PredictionReceipt
from .mixin import ModelRollout, RolloutParts
from .wiring import instrument

__all__ = ["ModelRollout", "PredictionReceipt", "RolloutParts", "instrument"]
