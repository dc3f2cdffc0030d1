"""`spec.model` and `spec.serving`: what runs and how the online pods are shaped."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, model_validator

from modelrollout.api.base import ApiModel, DnsLabel, LabelValue, ObjectName, Quantity, parse_quantity

ENV_NAME_PATTERN = r"^[-._a-zA-Z][-._a-zA-Z0-9]*$"
LABEL_KEY_PATTERN = r"^([a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*/)?[A-Za-z0-9]([-A-Za-z0-9_.]*[A-Za-z0-9])?$"
RESOURCE_NAME_PATTERN = r"^([a-z0-9.-]+/)?[a-z0-9]([-a-z0-9.]*[a-z0-9])?$"
IMAGE_PATTERN = r"^[^\s]+$"


class ModelRef(ApiModel):
    """The model being served. A change of `version` or `image` is what starts a rollout."""

    name: DnsLabel = Field(description="Model name; used in labels and metric labels.")
    version: LabelValue = Field(description="Model version; a change starts a canary rollout.")
    image: str = Field(
        min_length=1,
        max_length=512,
        pattern=IMAGE_PATTERN,
        description="Container image of the model's bento (serving and batch entrypoints).",
    )
    image_pull_policy: Literal["Always", "IfNotPresent", "Never"] = Field(
        default="IfNotPresent", description="Pull policy of the model image."
    )


class ResourceRequirements(ApiModel):
    """Compute resources of a serving or batch container (Kubernetes quantities)."""

    requests: Annotated[
        dict[Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)], Quantity], Field(max_length=16)
    ] = Field(
        default={"cpu": "100m", "memory": "256Mi"},
        description="Requested resources, e.g. {cpu: 250m, memory: 512Mi}.",
    )
    limits: Annotated[
        dict[Annotated[str, Field(pattern=RESOURCE_NAME_PATTERN)], Quantity], Field(max_length=16)
    ] = Field(
        default={"memory": "1Gi"},
        description="Resource limits, e.g. {cpu: '1', memory: 1Gi}.",
    )

    @model_validator(mode="after")
    def _limits_cover_requests(self) -> ResourceRequirements:
        # The API server's CEL cannot compare quantities on every supported version; the
        # operator checks it and reports a Degraded condition instead of failing pod creation.
        for name, request in self.requests.items():
            limit = self.limits.get(name)
            if limit is not None and parse_quantity(limit) < parse_quantity(request):
                raise ValueError(f"resources: {name} request {request} exceeds its limit {limit}")
        return self


class Autoscaling(ApiModel):
    """A HorizontalPodAutoscaler on CPU for the stable track."""

    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "self.minReplicas <= self.maxReplicas",
                    "message": "autoscaling.minReplicas must be less than or equal to maxReplicas",
                },
            ]
        }
    }

    min_replicas: int = Field(default=1, ge=1, le=1000, description="Lower bound of replicas.")
    max_replicas: int = Field(default=3, ge=1, le=1000, description="Upper bound of replicas.")
    target_cpu_utilization_percentage: int = Field(
        default=80,
        ge=1,
        le=100,
        alias="targetCPUUtilizationPercentage",
        description="Average CPU utilisation the HPA aims for.",
    )

    @model_validator(mode="after")
    def _bounds_ordered(self) -> Autoscaling:
        if self.min_replicas > self.max_replicas:
            raise ValueError("autoscaling.minReplicas must be less than or equal to maxReplicas")
        return self


class KeyRef(ApiModel):
    """A key of a Secret or ConfigMap."""

    name: ObjectName
    key: Annotated[str, Field(min_length=1, max_length=253, pattern=r"^[-._a-zA-Z0-9]+$")]
    optional: bool = False


class EnvVarSource(ApiModel):
    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "has(self.secretKeyRef) != has(self.configMapKeyRef)",
                    "message": "valueFrom needs exactly one of secretKeyRef or configMapKeyRef",
                },
            ]
        }
    }

    secret_key_ref: KeyRef | None = None
    config_map_key_ref: KeyRef | None = None

    @model_validator(mode="after")
    def _exactly_one(self) -> EnvVarSource:
        if (self.secret_key_ref is None) == (self.config_map_key_ref is None):
            raise ValueError("valueFrom needs exactly one of secretKeyRef or configMapKeyRef")
        return self


class EnvVar(ApiModel):
    model_config = ApiModel.model_config | {
        "json_schema_extra": {
            "x-kubernetes-validations": [
                {
                    "rule": "!(has(self.value) && has(self.valueFrom))",
                    "message": "an env var has either value or valueFrom, not both",
                },
            ]
        }
    }

    name: Annotated[str, Field(min_length=1, max_length=256, pattern=ENV_NAME_PATTERN)]
    value: Annotated[str, Field(max_length=32768)] | None = None
    value_from: EnvVarSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> EnvVar:
        if self.value is not None and self.value_from is not None:
            raise ValueError(f"env {self.name}: has either value or valueFrom, not both")
        return self


class Toleration(ApiModel):
    key: Annotated[str, Field(max_length=316)] | None = None
    operator: Literal["Exists", "Equal"] = "Equal"
    value: Annotated[str, Field(max_length=63)] | None = None
    effect: Literal["NoSchedule", "PreferNoSchedule", "NoExecute"] | None = None
    toleration_seconds: Annotated[int, Field(ge=0)] | None = None


class Serving(ApiModel):
    """How the online (BentoML) pods run. Used by `online` and `hybrid` modes."""

    replicas: int = Field(
        default=1, ge=0, le=1000, description="Replicas of the stable track when autoscaling is not set."
    )
    port: int = Field(default=3000, ge=1, le=65535, description="Port the bento listens on.")
    resources: ResourceRequirements = Field(default=ResourceRequirements())
    autoscaling: Autoscaling | None = Field(default=None, description="Enables an HPA when set.")
    env: Annotated[list[EnvVar], Field(max_length=64)] = Field(default=[])
    node_selector: Annotated[
        dict[
            Annotated[str, Field(max_length=317, pattern=LABEL_KEY_PATTERN)],
            Annotated[str, Field(max_length=63)],
        ],
        Field(max_length=32),
    ] = Field(default={})
    tolerations: Annotated[list[Toleration], Field(max_length=32)] = Field(default=[])
    service_account_name: ObjectName | None = Field(
        default=None, description="ServiceAccount of the serving pods (default: the namespace's)."
    )
