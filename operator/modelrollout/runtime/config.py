"""Runtime settings of a serving bento, read once from environment variables.

The operator configures every serving pod through its environment (the same image serves stable
and canary), so the environment is the whole interface. Parsing it into one validated, frozen model
at start-up means a typo in a manifest stops the pod with a message naming the variable, instead of
surfacing later as wrong metric labels or a silently ignored fault injection.

Variables (all optional):

``MODELROLLOUT_MODEL_NAME``
    ``model`` label of the runtime metrics; defaults to the name of the loaded model's tag.
``MODELROLLOUT_MODEL_VERSION``
    ``version`` label; defaults to the loaded model's ``version`` label (set by the training script).
``MODELROLLOUT_TRACK``
    ``stable`` (default) or ``canary``: which side of a rollout this pod serves.
``MODELROLLOUT_MODEL_TAG``
    BentoML model tag to load, e.g. ``iris-classifier:v2``; each bento picks its own default.
``MODELROLLOUT_PREDICTION_LOG_SIZE``
    How many recent predictions (rows) the feedback join remembers (default 100000).
``MODELROLLOUT_INJECT_LATENCY_MS``
    Test-only fault injection: milliseconds of sleep added to every prediction (default 0).
``MODELROLLOUT_INJECT_ERROR_RATE``
    Test-only fault injection: share (0..1) of predictions that fail with HTTP 500 (default 0).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

ENV_VARS: dict[str, str] = {
    "model_name": "MODELROLLOUT_MODEL_NAME",
    "model_version": "MODELROLLOUT_MODEL_VERSION",
    "track": "MODELROLLOUT_TRACK",
    "model_tag": "MODELROLLOUT_MODEL_TAG",
    "prediction_log_size": "MODELROLLOUT_PREDICTION_LOG_SIZE",
    "inject_latency_ms": "MODELROLLOUT_INJECT_LATENCY_MS",
    "inject_error_rate": "MODELROLLOUT_INJECT_ERROR_RATE",
}

DEFAULT_PREDICTION_LOG_SIZE = 100_000

Track = Literal["stable", "canary"]

# Label values become Prometheus label values and Kubernetes label values: keep them to that charset.
_LABEL_PATTERN = r"^[A-Za-z0-9]([-A-Za-z0-9_.]{0,61}[A-Za-z0-9])?$"


class ConfigError(ValueError):
    """The environment holds a value the runtime cannot use; the message names the variable."""


class RuntimeConfig(BaseModel):
    """Validated runtime settings; build with :meth:`from_env`."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    model_name: str | None = Field(default=None, pattern=_LABEL_PATTERN)
    model_version: str | None = Field(default=None, pattern=_LABEL_PATTERN)
    track: Track = "stable"
    model_tag: str | None = Field(default=None, min_length=1, max_length=128)
    prediction_log_size: int = Field(default=DEFAULT_PREDICTION_LOG_SIZE, ge=1, le=10_000_000)
    inject_latency_ms: float = Field(default=0.0, ge=0.0, le=60_000.0, allow_inf_nan=False)
    inject_error_rate: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> RuntimeConfig:
        """Parse the ``MODELROLLOUT_*`` variables of ``environ``; empty values count as unset.

        Raises ConfigError listing every bad variable (not only the first), so one restart fixes all.
        """
        raw = {
            field: environ[var].strip()
            for field, var in ENV_VARS.items()
            if var in environ and environ[var].strip() != ""
        }
        try:
            return cls.model_validate(raw)
        except ValidationError as exc:
            problems = []
            for error in exc.errors(include_url=False):
                field = str(error["loc"][0]) if error["loc"] else "?"
                var = ENV_VARS.get(field, field)
                problems.append(f"{var}={raw.get(field)!r}: {error['msg']}")
            raise ConfigError("invalid serving environment: " + "; ".join(problems)) from None

    def with_model_defaults(self, *, model_name: str, model_version: str) -> RuntimeConfig:
        """Fill name and version from the loaded model where the environment left them unset."""
        filled = {
            **self.model_dump(),
            "model_name": self.model_name or model_name,
            "model_version": self.model_version or model_version,
        }
        try:
            return type(self).model_validate(filled)
        except ValidationError as exc:
            raise ConfigError(
                f"model name {filled['model_name']!r} / version {filled['model_version']!r} cannot be metric "
                f"labels; set {ENV_VARS['model_name']} / {ENV_VARS['model_version']}: {exc.errors()[0]['msg']}"
            ) from None
