"""The per-process half of the bento glue: a mixin for the user's own ``@bentoml.service`` class.

What it adds to the service class (at class creation, before ``@bentoml.service`` collects the
APIs): ``/feedback`` (:mod:`.feedback`), the ``MODELROLLOUT_*`` settings parsed once (a bad value
stops ``bentoml serve`` at import with a message naming the variable), a ``__is_ready__`` and an
``on_shutdown`` hook. What it adds to each instance (``ModelRollout.__init__``, called from the
service's own ``__init__``): the prediction counter, the shared prediction log's writer, the
feedback join and the figures exporter, all under ``self.modelrollout`` so that nothing collides
with the service's own attributes. The service's API methods call :meth:`record_predictions`.
"""

from __future__ import annotations

import inspect
import os
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, ClassVar

import bentoml

from ..config import RuntimeConfig
from ..ground_truth.serving import GroundTruth
from ..ground_truth.settings import log_location
from ..metrics import runtime_metrics
from ..requestid import client_request_id_from_scope, new_request_id, request_id_from_scope
from ..serving import PredictionReceipt, ServingRuntime
from ..storecalls import StoreCalls
from .feedback import feedback_api

_INHERIT = object()
NOT_STARTED = (
    "the modelrollout runtime is not started: call ModelRollout.__init__(self, model=...) "
    "(or super().__init__(model=...)) from your service's __init__"
)


@dataclass
class RolloutParts:
    """The runtime pieces of one serving process (mutable: a benchmark may swap one out)."""

    config: RuntimeConfig
    runtime: ServingRuntime
    calls: StoreCalls
    truth: GroundTruth


class ModelRollout:
    """Mix into a ``@bentoml.service`` class: ``class MyService(ModelRollout, labels=("a", "b"))``.

    ``labels``: the model's classes (``/feedback`` refuses anything else); leave it out for free-text
    or numeric labels. Then, in the service: ``super().__init__(model=self.model_ref)`` in
    ``__init__`` and ``receipt = await self.record_predictions(ctx, predictions)`` in each API
    method that predicts; decorate the class with :func:`~.wiring.instrument` above
    ``@bentoml.service`` for the ASGI parts.
    """

    rollout_config: ClassVar[RuntimeConfig]
    rollout_labels: ClassVar[tuple[str, ...] | None] = None
    modelrollout: RolloutParts | None = None

    def __init_subclass__(cls, *, labels: Any = _INHERIT, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "feedback" in cls.__dict__:
            raise TypeError(
                f"{cls.__name__} defines 'feedback', which ModelRollout serves as /feedback: rename yours"
            )
        config = RuntimeConfig.from_env(os.environ)
        log_location(os.environ)  # a prediction-log URL no store can open stops the server here
        cls.rollout_config = config
        if labels is not _INHERIT:
            cls.rollout_labels = checked_labels(labels)
        cls.feedback = feedback_api(cls.rollout_labels, config)

    def __init__(
        self, *, model: Any = None, model_name: str | None = None, model_version: str | None = None,
        paths: Sequence[str] = ("model",),
    ) -> None:  # fmt: skip
        """Start the runtime for the loaded ``model`` (a BentoML model, or ``model_name`` and
        ``model_version``; ``MODELROLLOUT_MODEL_NAME``/``_VERSION`` win, as the operator sets them;
        with none of these, the service's one ``BentoModel`` class attribute).
        ``paths``: the prediction paths counted (``("model", "lookup")`` for a hybrid service)."""
        config = self.rollout_config  # MODELROLLOUT_MODEL_NAME / _VERSION, when set, win
        name, version = model_identity(
            self,
            model,
            model_name=config.model_name or model_name,
            model_version=config.model_version or model_version,
        )
        config = config.with_model_defaults(model_name=name, model_version=version)
        runtime = ServingRuntime(config, metrics=runtime_metrics(), paths=paths)
        calls = StoreCalls(threads=config.store_threads, deadline_s=config.store_timeout_s)
        truth = GroundTruth.start(config, origin=runtime.origin, calls=calls)
        runtime.log = truth.writer
        self.modelrollout = RolloutParts(config=config, runtime=runtime, calls=calls, truth=truth)

    def modelrollout_parts(self) -> RolloutParts:
        if self.modelrollout is None:
            raise RuntimeError(NOT_STARTED)
        return self.modelrollout

    def request_id(self, ctx: bentoml.Context) -> str:
        """The id the server assigned to this request (``X-Request-ID``; a fresh one without
        :func:`~.wiring.instrument`'s middleware)."""
        return request_id_from_scope(ctx.request.scope) or new_request_id()

    async def record_predictions(
        self, ctx: bentoml.Context, predictions: Sequence[Any], *, path: str = "model"
    ) -> PredictionReceipt:
        """Log one request's predictions (row ``i`` is ``predictions[i]``) to the shared log under
        the request's id, count them in ``modelrollout_predictions_total``, and return who answered
        (``request_id``, ``model``, ``version``, ``track``: put them in the response, so callers can
        send labels). Never waits for the store. First applies the test-only injected faults
        (``MODELROLLOUT_INJECT_LATENCY_MS``/``_ERROR_RATE``; a no-op unless set)."""
        runtime = self.modelrollout_parts().runtime
        await runtime.before_prediction()
        scope = ctx.request.scope
        return runtime.after_prediction(
            self.request_id(ctx), list(predictions), paths=path,
            client_request_id=client_request_id_from_scope(scope),
        )  # fmt: skip

    def __is_ready__(self) -> bool:
        """Ready once the runtime is started (a service that needs more overrides this and calls
        ``super().__is_ready__()``)."""
        return self.modelrollout is not None

    @bentoml.on_shutdown
    def stop_modelrollout(self) -> None:
        """Write what the prediction log still queues (bounded) before the process ends."""
        if self.modelrollout is not None:
            self.modelrollout.truth.stop(timeout_s=self.modelrollout.config.store_timeout_s)


def checked_labels(labels: Any) -> tuple[str, ...] | None:
    """``labels`` as a tuple of distinct non-empty strings (None or empty: free-text labels)."""
    if labels is None:
        return None
    if isinstance(labels, str):
        raise TypeError(f"labels must be a sequence of class names, not the string {labels!r}")
    out = tuple(labels)
    if not all(isinstance(x, str) and x for x in out) or len(set(out)) != len(out):
        raise TypeError(f"labels must be distinct non-empty strings, got {list(out)!r}")
    return out or None


def model_identity(
    service: Any, model: Any, *, model_name: str | None, model_version: str | None
) -> tuple[str, str]:
    """(name, version) for the metric labels: explicit values win, else the model's tag name and
    its ``version`` label (or the tag's version). Without ``model``, the service's one
    ``bentoml.models.BentoModel`` class attribute."""
    if model is None and not (model_name and model_version):
        model = _only_model(service)
    stored = model.stored if isinstance(model, bentoml.models.BentoModel) else model
    tag = getattr(stored, "tag", None)
    info = getattr(stored, "info", None)
    labels = getattr(info, "labels", None) or {}
    name = model_name or (tag.name if tag is not None else None)
    version = model_version or labels.get("version") or (tag.version if tag is not None else None)
    if not name or not version:
        raise ValueError(
            "ModelRollout needs the model's name and version: pass model=<the loaded BentoML model> "
            "or model_name=... and model_version=..."
        )
    return str(name), str(version)


def _only_model(service: Any) -> Any:
    found = [
        name
        for name, value in inspect.getmembers_static(type(service))
        if isinstance(value, bentoml.models.BentoModel)
    ]
    if len(found) != 1:
        raise ValueError(
            f"{type(service).__name__}: pass model=... to ModelRollout.__init__ "
            f"(found {len(found)} BentoModel class attributes: {found})"
        )
    return getattr(service, found[0])  # resolved to the stored model by BentoML's descriptor
