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
``MODELROLLOUT_DEPLOYMENT``
    The ModelDeployment this pod serves (informational; set by the operator).
``MODELROLLOUT_INJECT_LATENCY_MS``
    Test-only fault injection: milliseconds of sleep added to every prediction (default 0).
``MODELROLLOUT_INJECT_ERROR_RATE``
    Test-only fault injection: share (0..1) of predictions that fail with HTTP 500 (default 0).

Limits (what one client can cost the pod; see ``bentos/iris/README.md`` for the figures):

``MODELROLLOUT_MAX_BODY_BYTES``
    Largest request body, refused with 413 before it is read or parsed (default 1 MiB). Parsing
    JSON into Python objects costs ~30x the body, so the default keeps a request's memory in the
    tens of MB, far below the default 1 GiB pod limit.
``MODELROLLOUT_MAX_ROWS``
    Most rows (``/predict``) or keys (``/lookup``) per request (default 1000).
``MODELROLLOUT_MAX_CONCURRENCY``
    Requests one pod works on at once; more are answered 429 before their body is read (default
    100). With the body limit this bounds what requests in flight can hold: ~100 MiB of bodies.
``MODELROLLOUT_MAX_LABEL_CHARS``
    Longest feedback label a bento accepts when its labels are free text (default 256).
``MODELROLLOUT_STORE_TIMEOUT_S``
    Deadline of one prediction-store call (default 2 s; below the 30 s request timeout). Calls run
    on their own pool of ``MODELROLLOUT_STORE_THREADS`` threads (default 4); SQLite's busy timeout
    and PostgreSQL's statement timeout are half the deadline, so a blocked call gives its thread back.
``MODELROLLOUT_STORE_UNREADY_AFTER_S``
    A lookup-only (batch mode) pod reports unready on ``/readyz`` once its store has failed for this
    long (default 30 s; 0 never). Hybrid pods stay ready: they answer from the model.

Ground truth (see ``modelrollout.runtime.ground_truth``; the store comes from
``MODELROLLOUT_GROUND_TRUTH_DSN``, else ``MODELROLLOUT_STORE_DSN``, read in ``ground_truth.settings``):

``MODELROLLOUT_PREDICTION_LOG_QUEUE``
    Rows waiting to be written to the prediction log (default 10000); when full, new records are
    dropped and counted, never the request.
``MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS``
    Predictions and labels older than this are deleted (default 7 days): by time, never by count.
``MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS``
    How often this pod recomputes the figures of its version from the shared store (default 15).
``MODELROLLOUT_POSITIVE_CLASS``
    The positive class: with it, the confusion-matrix figures are exported too.
``MODELROLLOUT_FEEDBACK_TOKEN``
    Bearer token ``/feedback`` requires (at least 16 characters). Unset: ``/feedback`` answers 403.

Logs:

``MODELROLLOUT_LOG_FORMAT``
    ``text`` (default, BentoML's format) or ``json`` (one JSON object per line).
``MODELROLLOUT_CLIENT_ERROR_LOGS_PER_S``
    Client-triggered log lines (4xx, malformed HTTP) per second and log site (default 1, bursts of 10).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, SecretStr, ValidationError

ENV_VARS: dict[str, str] = {
    "model_name": "MODELROLLOUT_MODEL_NAME",
    "model_version": "MODELROLLOUT_MODEL_VERSION",
    "track": "MODELROLLOUT_TRACK",
    "model_tag": "MODELROLLOUT_MODEL_TAG",
    "deployment": "MODELROLLOUT_DEPLOYMENT",
    "prediction_log_queue": "MODELROLLOUT_PREDICTION_LOG_QUEUE",
    "retention_s": "MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS",
    "figures_period_s": "MODELROLLOUT_GROUND_TRUTH_PERIOD_SECONDS",
    "positive_class": "MODELROLLOUT_POSITIVE_CLASS",
    "feedback_token": "MODELROLLOUT_FEEDBACK_TOKEN",
    "inject_latency_ms": "MODELROLLOUT_INJECT_LATENCY_MS",
    "inject_error_rate": "MODELROLLOUT_INJECT_ERROR_RATE",
    "max_body_bytes": "MODELROLLOUT_MAX_BODY_BYTES",
    "max_rows": "MODELROLLOUT_MAX_ROWS",
    "max_concurrency": "MODELROLLOUT_MAX_CONCURRENCY",
    "max_label_chars": "MODELROLLOUT_MAX_LABEL_CHARS",
    "store_timeout_s": "MODELROLLOUT_STORE_TIMEOUT_S",
    "store_threads": "MODELROLLOUT_STORE_THREADS",
    "store_unready_after_s": "MODELROLLOUT_STORE_UNREADY_AFTER_S",
    "log_format": "MODELROLLOUT_LOG_FORMAT",
    "client_error_logs_per_s": "MODELROLLOUT_CLIENT_ERROR_LOGS_PER_S",
}

DEFAULT_PREDICTION_LOG_QUEUE = 10_000
DEFAULT_RETENTION_S = 7 * 24 * 3600
MIN_TOKEN_CHARS = 16
SECRETS = frozenset({"feedback_token"})
DEFAULT_MAX_BODY_BYTES = 1 << 20
DEFAULT_MAX_ROWS = 1000
# BentoML's request timeout (``traffic.timeout`` of the service); store calls must end well before it.
REQUEST_TIMEOUT_S = 30.0

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
    deployment: str | None = Field(default=None, max_length=253)
    prediction_log_queue: int = Field(default=DEFAULT_PREDICTION_LOG_QUEUE, ge=1, le=10_000_000)
    retention_s: int = Field(default=DEFAULT_RETENTION_S, ge=1, le=10 * 366 * 86_400)
    figures_period_s: float = Field(default=15.0, ge=0.1, le=86_400.0, allow_inf_nan=False)
    positive_class: str | None = Field(default=None, min_length=1, max_length=256)
    # A secret: never shown by repr() or in validation errors (see from_env).
    feedback_token: SecretStr | None = Field(default=None, min_length=MIN_TOKEN_CHARS, max_length=4096)
    inject_latency_ms: float = Field(default=0.0, ge=0.0, le=60_000.0, allow_inf_nan=False)
    inject_error_rate: float = Field(default=0.0, ge=0.0, le=1.0, allow_inf_nan=False)
    max_body_bytes: int = Field(default=DEFAULT_MAX_BODY_BYTES, ge=1024, le=64 << 20)
    max_rows: int = Field(default=DEFAULT_MAX_ROWS, ge=1, le=100_000)
    max_concurrency: int = Field(default=100, ge=1, le=10_000)
    max_label_chars: int = Field(default=256, ge=1, le=4096)
    store_timeout_s: float = Field(default=2.0, ge=0.05, le=REQUEST_TIMEOUT_S / 2, allow_inf_nan=False)
    store_threads: int = Field(default=4, ge=1, le=64)
    store_unready_after_s: float = Field(default=30.0, ge=0.0, le=86_400.0, allow_inf_nan=False)
    log_format: Literal["text", "json"] = "text"
    client_error_logs_per_s: float = Field(default=1.0, gt=0.0, le=1000.0, allow_inf_nan=False)

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
                if field in SECRETS:  # never echo a secret, not even a wrong one
                    problems.append(f"{var}=(secret): must be {MIN_TOKEN_CHARS}..4096 characters")
                else:
                    problems.append(f"{var}={raw.get(field)!r}: {error['msg']}")
            raise ConfigError("invalid serving environment: " + "; ".join(problems)) from None

    @property
    def store_busy_timeout_s(self) -> float:
        """How long one store statement may wait for a lock: half the call's deadline, so a blocked
        call fails (and frees its thread) before the deadline gives up on it."""
        return self.store_timeout_s / 2

    @property
    def token(self) -> str | None:
        """The feedback token in clear (only for the constant-time comparison)."""
        return None if self.feedback_token is None else self.feedback_token.get_secret_value()

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
