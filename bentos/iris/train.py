"""Train the example iris classifier and save it to the BentoML model store as ``iris-classifier:<version>``.

``--quality good`` fits a logistic regression on the real labels (held-out accuracy ~0.95+).
``--quality degraded`` fits the same model on *shuffled* training labels, so it is clearly worse
(close to chance, ~0.33): the challenger that accuracy gates and backtests must reject.

The store is ``$BENTOML_HOME`` (default ``~/bentoml``). The version becomes both the tag's version
(so ``MODELROLLOUT_MODEL_TAG=iris-classifier:<version>`` selects it) and the model's ``version``
label, which the service reports as the ``version`` metric label.

    python bentos/iris/train.py --version v1
    python bentos/iris/train.py --version v2 --quality degraded
"""

from __future__ import annotations

import argparse
import re
import sys

MODEL_NAME = "iris-classifier"
# BentoML tag versions: lowercase alphanumerics, '-', '_', '.', alphanumeric at both ends, <= 63 chars.
_TAG_VERSION = re.compile(r"[a-z0-9]([-._a-z0-9]{0,61}[a-z0-9])?")


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="model version, e.g. v1 (lowercase tag syntax)")
    parser.add_argument("--quality", choices=("good", "degraded"), default="good")
    parser.add_argument("--name", default=MODEL_NAME, help=f"model name in the store (default {MODEL_NAME})")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the label shuffle")
    parser.add_argument("--replace", action="store_true", help="overwrite an existing model with this tag")
    args = parser.parse_args(argv)
    for what, value in (("--version", args.version), ("--name", args.name)):
        if not _TAG_VERSION.fullmatch(value):
            parser.error(
                f"{what} {value!r} is not a valid BentoML tag part: use lowercase letters, digits, '-', '_', '.', "
                "starting and ending with a letter or digit, at most 63 characters"
            )
    return args


def train(*, quality: str, seed: int):
    """Fit the classifier; returns (model, held-out accuracy, iris dataset bunch)."""
    import numpy as np
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split

    iris = load_iris()
    x_train, x_test, y_train, y_test = train_test_split(
        iris.data, iris.target, test_size=0.3, random_state=seed, stratify=iris.target
    )
    if quality == "degraded":
        y_train = np.random.default_rng(seed).permutation(y_train)
    model = LogisticRegression(max_iter=1000).fit(x_train, y_train)
    return model, float(model.score(x_test, y_test)), iris


def save(*, name: str, version: str, quality: str, seed: int, replace: bool) -> tuple[str, float]:
    import bentoml
    from bentoml.exceptions import NotFound

    tag = f"{name}:{version}"
    try:
        bentoml.models.get(tag)
    except NotFound:
        pass
    else:
        if not replace:
            raise SystemExit(
                f"error: model {tag} already exists in the store; pass --replace to overwrite it"
            )
        bentoml.models.delete(tag)
    model, accuracy, iris = train(quality=quality, seed=seed)
    saved = bentoml.sklearn.save_model(
        tag,
        model,
        labels={"version": version, "quality": quality},
        metadata={
            "version": version,
            "quality": quality,
            "heldout_accuracy": accuracy,
            "target_names": [str(n) for n in iris.target_names],
            "feature_names": [str(n) for n in iris.feature_names],
            "seed": seed,
        },
    )
    return str(saved.tag), accuracy


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    tag, accuracy = save(
        name=args.name, version=args.version, quality=args.quality, seed=args.seed, replace=args.replace
    )
    print(f"saved {tag} quality={args.quality} heldout_accuracy={accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
