"""`spec.batch`: static and hybrid serving (precomputed predictions in a prediction table)."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.base import ApiModel, ObjectName
from modelrollout.api.checks import SecretKeySelector
from modelrollout.api.cron import Schedule, TimeZone
from modelrollout.api.serving import ResourceRequirements

COLUMN_PATTERN = r"^[A-Za-z_][A-Za-z0-9_]*$"
# what the prediction stores accept: a letter first, single underscores (`__` separates versions)
TABLE_PATTERN = r"^[a-z][a-z0-9]*(_[a-z0-9]+)*$"
Column = Annotated[str, Field(min_length=1, max_length=63, pattern=COLUMN_PATTERN)]


class BatchInput(ApiModel):
    """Where the batch run reads the inputs to precompute."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.format == 'sql' ? has(self.query) : has(self.path)",
                    "message": "format sql needs query; parquet and csv need path",
                },
            ]
        }
    }

    format: Literal["parquet", "csv", "sql"] = "parquet"
    path: Annotated[str, Field(min_length=1, max_length=1024)] | None = Field(
        default=None, description="File or directory (on the batch volume) for parquet/csv."
    )
    query: Annotated[str, Field(min_length=1, max_length=8192)] | None = Field(
        default=None, description="SQL run against the store for format=sql."
    )
    key_columns: Annotated[list[Column], Field(min_length=1, max_length=8)] = Field(
        description="Columns that identify an input; passed through unchanged and used for lookup."
    )
    feature_columns: Annotated[list[Column], Field(max_length=1024)] = Field(
        default=[], description="Model inputs; default: every non-key column."
    )

    @model_validator(mode="after")
    def _source(self) -> BatchInput:
        if self.format == "sql" and not self.query:
            raise ValueError("batch.input: format sql needs query")
        if self.format != "sql" and not self.path:
            raise ValueError(f"batch.input: format {self.format} needs path")
        overlap = set(self.key_columns) & set(self.feature_columns)
        if overlap:
            raise ValueError(f"batch.input: columns {sorted(overlap)} are both keys and features")
        return self


class PredictionStore(ApiModel):
    """Where predictions are published and looked up."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.type != 'postgres' || has(self.dsnSecretRef)",
                    "message": "a postgres store needs dsnSecretRef",
                },
            ]
        }
    }

    type: Literal["sqlite", "postgres"] = "sqlite"
    path: Annotated[str, Field(min_length=1, max_length=1024)] = Field(
        default="/data/predictions.sqlite", description="SQLite file (on the batch volume)."
    )
    table: Annotated[str, Field(max_length=40, pattern=TABLE_PATTERN)] | None = Field(
        default=None, description="Logical prediction table; default: the ModelDeployment's name."
    )
    dsn_secret_ref: SecretKeySelector | None = Field(
        default=None, description="Secret key holding the PostgreSQL DSN."
    )

    @model_validator(mode="after")
    def _credentials(self) -> PredictionStore:
        if self.type == "postgres" and self.dsn_secret_ref is None:
            raise ValueError("batch.store: a postgres store needs dsnSecretRef")
        return self


class Verification(ApiModel):
    """Checks a run must pass before it is published."""

    min_row_ratio: float = Field(default=1.0, ge=0, le=1, description="rows written / rows read.")
    max_null_share: float = Field(default=0.0, ge=0, le=1, description="Share of null/invalid predictions.")
    max_psi: float = Field(
        default=0.2, ge=0, description="PSI of predictions against the last published run."
    )


class JobPolicy(ApiModel):
    backoff_limit: int = Field(default=2, ge=0, le=20)
    active_deadline_seconds: int = Field(default=3600, ge=60, le=7 * 24 * 3600)
    starting_deadline_seconds: int = Field(default=300, ge=10, le=24 * 3600)
    successful_jobs_history_limit: int = Field(default=3, ge=0, le=20)
    failed_jobs_history_limit: int = Field(default=3, ge=0, le=20)


class Batch(ApiModel):
    """Precompute predictions on a schedule (static serving; the head of hybrid serving)."""

    schedule: Schedule = Field(
        description="Cron schedule of the batch run, e.g. '0 2 * * *' (every field range-checked)."
    )
    time_zone: TimeZone | None = Field(
        default=None,
        description="IANA time zone of the schedule (e.g. Europe/Berlin); default: the controller's (UTC).",
    )
    suspend: bool = False
    shards: int = Field(default=1, ge=1, le=100, description=">1 renders an Indexed Job per run.")
    chunk_rows: int = Field(default=65536, ge=1, le=10_000_000)
    predictor: Annotated[str, Field(max_length=256, pattern=r"^[A-Za-z_][\w.]*:[A-Za-z_][\w.]*$")] | None = (
        Field(
            default=None,
            description="module:attr in the image giving an object with predict(); default: the BentoML "
            "model named by MODELROLLOUT_MODEL_TAG in the image.",
        )
    )
    input: BatchInput
    store: PredictionStore = Field(default=PredictionStore())
    verification: Verification = Field(default=Verification())
    job: JobPolicy = Field(default=JobPolicy())
    resources: ResourceRequirements = Field(default=ResourceRequirements())
    volume_claim_name: ObjectName | None = Field(
        default=None, description="PVC mounted at /data in batch and serving pods (inputs, SQLite)."
    )
