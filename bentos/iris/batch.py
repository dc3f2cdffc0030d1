"""The iris model as a batch predictor: ``modelrollout-batch run --predictor batch:predictor``.

The runner calls :func:`predictor` once per run and then ``predict(features)`` per chunk, with the
feature columns in :data:`FEATURES` order (``feature_names`` tells the runner which input columns
those are); each row gets a class name (``setosa`` / ``versicolor`` / ``virginica``), the same
strings ``/predict`` answers, so a lookup answer and a model answer can be compared and fed back
alike.

Which model: ``$MODELROLLOUT_MODEL_TAG`` when the store holds it. The operator sets that variable
on batch Jobs to ``<spec.model.name>:<spec.model.version>`` (e.g. ``iris:1.0.0``), which names the
*deployment's* model rather than the store's ``iris-classifier``; when the store has no model of
that name at all, the model this bento serves online is used instead (``iris-classifier:latest``,
what ``service.py`` loads when no tag is set - the one model a built bento packs), so the batch run
and the online path always use the same model. A tag whose name exists but whose version does not
is an error: silently predicting with another version of the same model would publish the wrong
table.

Inside a container image built from the bento, the models live in the bento (``$BENTO_PATH/models``),
not in ``$BENTOML_HOME/models`` (empty there): :func:`use_bento_model_store` points BentoML at the
bento's store before BentoML is imported, as ``bentoml serve`` does for itself.
"""

from __future__ import annotations

import os
import sys
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

import numpy as np

FEATURES = ("sepal_length", "sepal_width", "petal_length", "petal_width")
DEFAULT_MODEL_TAG = "iris-classifier:latest"
TAG_ENV = "MODELROLLOUT_MODEL_TAG"


class ModelNotFound(RuntimeError):
    """The requested model version is not in the store (the message lists what is)."""


class IrisBatchPredictor:
    """``predict`` maps rows of the four features to class names; holds the loaded estimator."""

    feature_names = FEATURES

    def __init__(self, estimator: Any, *, class_names: tuple[str, ...], model_version: str, tag: str) -> None:
        self.estimator = estimator
        self.class_names = np.asarray(class_names, dtype=object)
        self.model_version = model_version
        self.tag = tag

    def predict(self, features: np.ndarray) -> np.ndarray:
        indices = self.estimator.predict(np.asarray(features, dtype=np.float64))
        return self.class_names[np.asarray(indices, dtype=np.int64)]


def use_bento_model_store(environ: MutableMapping[str, str] = os.environ) -> str | None:
    """In a bento container, make ``$BENTO_PATH`` BentoML's home so its ``models/`` is the store.

    Only before BentoML is imported (its home is read once, at import) and only when the image says
    it is one (``BENTOML_CONTAINERIZED``) and the bento carries models. Returns the home it set.
    """
    bento_path = environ.get("BENTO_PATH")
    if (
        "bentoml" in sys.modules
        or environ.get("BENTOML_CONTAINERIZED", "").lower() != "true"
        or not bento_path
    ):
        return None
    if not (Path(bento_path) / "models").is_dir():
        return None
    environ["BENTOML_HOME"] = bento_path
    return bento_path


def resolve_tag(requested: str | None, *, known_names: set[str]) -> str:
    """The tag to load: the requested one when its model name is in the store, else the default.

    Pure (the store's model names are passed in) so the choice is tested without a store.
    """
    if not requested:
        return DEFAULT_MODEL_TAG
    name = requested.partition(":")[0]
    return requested if name in known_names else DEFAULT_MODEL_TAG


def load(requested: str | None) -> IrisBatchPredictor:
    """Load the model for ``requested`` (a tag or None) from BentoML's store, as :func:`resolve_tag` picks it."""
    import bentoml
    from bentoml.exceptions import NotFound

    known = {str(m.tag.name) for m in bentoml.models.list()}
    tag = resolve_tag(requested, known_names=known)
    if requested and tag != requested:
        print(
            f"batch.predictor: the model store has no model named {requested.partition(':')[0]!r} "
            f"({TAG_ENV}={requested}); using {tag}, the model this bento serves online",
            file=sys.stderr,
        )
    try:
        stored = bentoml.models.get(tag)
    except NotFound:
        versions = sorted(str(m.tag) for m in bentoml.models.list(tag.partition(":")[0]))
        raise ModelNotFound(
            f"model {tag} is not in the BentoML model store; it holds {', '.join(versions) or 'no such model'}"
        ) from None
    version = stored.info.labels.get("version") or str(stored.tag.version)
    return IrisBatchPredictor(
        bentoml.sklearn.load_model(stored),
        class_names=tuple(str(n) for n in stored.info.metadata["target_names"]),
        model_version=version,
        tag=str(stored.tag),
    )


def predictor() -> IrisBatchPredictor:
    """The runner's entry point (a factory: the model is loaded only when a run starts)."""
    use_bento_model_store(os.environ)
    return load(os.environ.get(TAG_ENV, "").strip() or None)
