"""Train the churn classifier on ``data/customers.csv``; save it as ``churn-model:<version>``.

A scikit-learn pipeline on named columns (one-hot ``contract``, scaled numbers, logistic
regression). ``--quality good`` fits the real outcomes (held-out accuracy ~0.9); ``--quality
degraded`` fits them with ``churn`` and ``stay`` swapped, a label-mapping bug (~0.1): the
challenger the accuracy gate must reject. (Shuffled labels, as the iris example uses, give a
model of near-zero coefficients whose accuracy on two balanced classes is a coin toss between
0.25 and 0.75 depending on the seed: not a reliable "worse".) The version is the tag's version and the model's ``version`` label (the ``version``
metric label the canary analysis selects on). The store is ``$BENTOML_HOME``.

    python bentos/churn/train.py --version v1
    python bentos/churn/train.py --version v2 --quality degraded
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

HERE = Path(__file__).resolve().parent
DATA = HERE / "data" / "customers.csv"
MODEL_NAME = "churn-model"
NUMBERS = ["tenure_months", "monthly_charges", "support_calls"]
CATEGORIES = ["contract"]
TARGET = "churned"


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--version", required=True, help="model version, e.g. v1 (lowercase tag syntax)")
    parser.add_argument("--quality", choices=("good", "degraded"), default="good")
    parser.add_argument("--seed", type=int, default=0, help="seed of the split and the label shuffle")
    parser.add_argument("--data", type=Path, default=DATA)
    return parser.parse_args(argv)


def train(*, data: Path, quality: str, seed: int):
    """Fit the pipeline; returns (pipeline, held-out accuracy)."""
    import pandas as pd
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.model_selection import train_test_split
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    frame = pd.read_csv(data)
    features, target = frame[NUMBERS + CATEGORIES], frame[TARGET]
    x_train, x_test, y_train, y_test = train_test_split(
        features, target, test_size=0.25, random_state=seed, stratify=target
    )
    if quality == "degraded":
        y_train = y_train.map({"churn": "stay", "stay": "churn"})
    pipeline = Pipeline(
        [
            ("columns", ColumnTransformer([
                ("numbers", StandardScaler(), NUMBERS),
                ("categories", OneHotEncoder(handle_unknown="ignore"), CATEGORIES),
            ])),
            ("classifier", LogisticRegression(max_iter=1000)),
        ]
    )  # fmt: skip
    pipeline.fit(x_train, y_train)
    return pipeline, float(pipeline.score(x_test, y_test))


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    import bentoml

    pipeline, accuracy = train(data=args.data, quality=args.quality, seed=args.seed)
    saved = bentoml.sklearn.save_model(
        f"{MODEL_NAME}:{args.version}",
        pipeline,
        labels={"version": args.version, "quality": args.quality},
        metadata={"classes": [str(c) for c in pipeline.classes_], "heldout_accuracy": accuracy},
    )
    print(f"saved {saved.tag} quality={args.quality} heldout_accuracy={accuracy:.4f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
