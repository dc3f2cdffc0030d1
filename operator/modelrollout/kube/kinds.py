"""Where each kind the operator touches lives in the API (no discovery round-trips needed)."""

from __future__ import annotations

from dataclasses import dataclass

from modelrollout import GROUP, PLURAL, VERSION


@dataclass(frozen=True)
class Kind:
    api_version: str
    kind: str
    plural: str
    namespaced: bool = True

    def collection_path(self, namespace: str | None) -> str:
        base = f"/api/{self.api_version}" if "/" not in self.api_version else f"/apis/{self.api_version}"
        if self.namespaced and namespace:
            return f"{base}/namespaces/{namespace}/{self.plural}"
        return f"{base}/{self.plural}"

    def object_path(self, namespace: str | None, name: str) -> str:
        return f"{self.collection_path(namespace)}/{name}"


MODEL_DEPLOYMENT = Kind(f"{GROUP}/{VERSION}", "ModelDeployment", PLURAL)
ANALYSIS_TEMPLATE = Kind(f"{GROUP}/{VERSION}", "ModelAnalysisTemplate", "modelanalysistemplates")
CLUSTER_ANALYSIS_TEMPLATE = Kind(
    f"{GROUP}/{VERSION}", "ClusterModelAnalysisTemplate", "clustermodelanalysistemplates", namespaced=False
)
DEPLOYMENT = Kind("apps/v1", "Deployment", "deployments")
SERVICE = Kind("v1", "Service", "services")
HPA = Kind("autoscaling/v2", "HorizontalPodAutoscaler", "horizontalpodautoscalers")
CRONJOB = Kind("batch/v1", "CronJob", "cronjobs")
JOB = Kind("batch/v1", "Job", "jobs")
POD = Kind("v1", "Pod", "pods")
EVENT = Kind("events.k8s.io/v1", "Event", "events")
SECRET = Kind("v1", "Secret", "secrets")
POD_MONITOR = Kind("monitoring.coreos.com/v1", "PodMonitor", "podmonitors")
HTTP_ROUTE = Kind("gateway.networking.k8s.io/v1", "HTTPRoute", "httproutes")

BY_KIND = {
    k.kind: k
    for k in (
        MODEL_DEPLOYMENT,
        ANALYSIS_TEMPLATE,
        CLUSTER_ANALYSIS_TEMPLATE,
        DEPLOYMENT,
        SERVICE,
        HPA,
        CRONJOB,
        JOB,
        POD,
        EVENT,
        SECRET,
        POD_MONITOR,
        HTTP_ROUTE,
    )
}


def kind_of(manifest: dict) -> Kind:
    kind = BY_KIND.get(manifest["kind"])
    if kind is None or kind.api_version != manifest["apiVersion"]:
        raise KeyError(f"unknown kind {manifest.get('apiVersion')}/{manifest.get('kind')}")
    return kind
