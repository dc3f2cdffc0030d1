"""The fake API server behaves like a Kubernetes API server where the operator depends on it.

Proved with the official `kubernetes` client (what the operator's KubeClient is built on)
and with a minimal kopf operator (what runs the handlers), not with the fake's own helpers.
"""

from __future__ import annotations

import json
import threading

import kopf
import pytest
from kopf.testing import KopfRunner
from kubernetes import client as k8s
from kubernetes import watch
from kubernetes.client.exceptions import ApiException

from tests.handlers import samples
from tests.handlers.fakeapi import wait_for

GROUP, VERSION, PLURAL = "modelrollout.io", "v1alpha1", "modeldeployments"
APPLY = "application/apply-patch+yaml"


def apply_deployment(api: k8s.AppsV1Api, body: dict, manager: str = "tester") -> k8s.V1Deployment:
    return api.patch_namespaced_deployment(
        body["metadata"]["name"],
        body["metadata"]["namespace"],
        body,
        field_manager=manager,
        force=True,
        _content_type=APPLY,
    )


def create_md(kube_client: k8s.ApiClient, body: dict) -> dict:
    return k8s.CustomObjectsApi(kube_client).create_namespaced_custom_object(
        GROUP, VERSION, body["metadata"]["namespace"], PLURAL, body
    )


# --- discovery ------------------------------------------------------------------------------------


def test_discovery_serves_the_crd_with_its_status_subresource(kube_client):
    found = k8s.CustomObjectsApi(kube_client).get_api_resources(GROUP, VERSION)
    names = {r.name: r for r in found.resources}
    assert names["modeldeployments"].kind == "ModelDeployment"
    assert names["modeldeployments"].namespaced is True
    assert "modeldeployments/status" in names
    assert "mdep" in names["modeldeployments"].short_names


def test_discovery_serves_builtins_the_operator_uses(kube_client):
    core = {r.name for r in k8s.CoreV1Api(kube_client).get_api_resources().resources}
    apps = {r.name for r in k8s.AppsV1Api(kube_client).get_api_resources().resources}
    assert {"services", "events", "namespaces", "secrets"} <= core
    assert {"deployments", "deployments/status"} <= apps
    groups = {g.name: g.preferred_version.version for g in k8s.ApisApi(kube_client).get_api_versions().groups}
    assert groups["autoscaling"] == "v2"
    assert groups["batch"] == "v1"
    assert groups["events.k8s.io"] == "v1"
    assert groups["gateway.networking.k8s.io"] == "v1"
    assert "monitoring.coreos.com" not in groups


@pytest.mark.fake_api(pod_monitors=True, http_routes=False)
def test_optional_apis_follow_the_fixture_flags(kube_client):
    groups = {g.name for g in k8s.ApisApi(kube_client).get_api_versions().groups}
    assert "monitoring.coreos.com" in groups
    assert "gateway.networking.k8s.io" not in groups


# --- server-side apply ----------------------------------------------------------------------------


def test_apply_creates_then_reapplying_the_same_is_a_no_op(kube_client, fake_api):
    apps = k8s.AppsV1Api(kube_client)
    first = apply_deployment(apps, samples.deployment(replicas=2))
    again = apply_deployment(apps, samples.deployment(replicas=2))
    assert first.metadata.uid and first.metadata.generation == 1
    assert again.metadata.resource_version == first.metadata.resource_version
    assert [(m.manager, m.operation) for m in first.metadata.managed_fields] == [("tester", "Apply")]
    applies = fake_api.requests("PATCH", "deployments")
    assert [r.params["fieldManager"] for r in applies] == ["tester", "tester"]
    assert {r.headers["Content-Type"] for r in applies} == {APPLY}


def test_apply_changes_spec_and_removes_fields_the_manager_stopped_applying(kube_client):
    apps = k8s.AppsV1Api(kube_client)
    apply_deployment(apps, samples.deployment(replicas=1, labels={"app": "web", "tier": "front"}))
    changed = apply_deployment(apps, samples.deployment(replicas=3, labels={"app": "web"}))
    assert changed.spec.replicas == 3
    assert changed.metadata.generation == 2
    assert changed.metadata.labels == {"app": "web"}


def test_apply_keeps_fields_another_writer_set(kube_client, fake_api):
    apps = k8s.AppsV1Api(kube_client)
    apply_deployment(apps, samples.deployment())
    fake_api.patch("Deployment", "default", "web", {"metadata": {"annotations": {"note": "by hand"}}})
    result = apply_deployment(apps, samples.deployment(replicas=4))
    assert result.metadata.annotations == {"note": "by hand"}
    assert result.spec.replicas == 4


def test_apply_without_field_manager_is_rejected(kube_client):
    apps = k8s.AppsV1Api(kube_client)
    with pytest.raises(ApiException) as exc:
        apps.patch_namespaced_deployment("web", "default", samples.deployment(), _content_type=APPLY)
    assert exc.value.status == 400
    assert "fieldManager is required" in json.loads(exc.value.body)["message"]


# --- status subresource and generation ------------------------------------------------------------


def test_status_subresource_changes_only_status(kube_client, fake_api):
    api = k8s.CustomObjectsApi(kube_client)
    created = create_md(kube_client, {**samples.model_deployment(), "status": {"phase": "Ready"}})
    assert "status" not in created  # ignored on create, like the API server does
    patched = api.patch_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "iris",
        {"status": {"phase": "Pending"}, "spec": {"serving": {"replicas": 9}}},
    )
    assert patched["status"] == {"phase": "Pending"}
    assert patched["spec"]["serving"]["replicas"] == 2
    assert patched["metadata"]["generation"] == 1
    assert int(patched["metadata"]["resourceVersion"]) > int(created["metadata"]["resourceVersion"])
    status_writes = fake_api.requests("PATCH", "modeldeployments", subresource="status")
    assert [r.headers["Content-Type"] for r in status_writes] == ["application/merge-patch+json"]

    replaced = api.replace_namespaced_custom_object_status(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "iris",
        {**samples.model_deployment(replicas=5), "status": {"phase": "Ready"}},
    )
    assert replaced["status"] == {"phase": "Ready"}
    assert replaced["spec"]["serving"]["replicas"] == 2


def test_main_resource_writes_ignore_status(kube_client):
    api = k8s.CustomObjectsApi(kube_client)
    create_md(kube_client, samples.model_deployment())
    api.patch_namespaced_custom_object_status(
        GROUP, VERSION, "default", PLURAL, "iris", {"status": {"phase": "Pending"}}
    )
    patched = api.patch_namespaced_custom_object(
        GROUP,
        VERSION,
        "default",
        PLURAL,
        "iris",
        {"status": {"phase": "Ready"}, "metadata": {"labels": {"a": "b"}}},
    )
    assert patched["status"] == {"phase": "Pending"}
    assert patched["metadata"]["labels"] == {"a": "b"}


def test_generation_moves_on_spec_changes_only(kube_client):
    api = k8s.CustomObjectsApi(kube_client)
    create_md(kube_client, samples.model_deployment())

    def patch(body: dict) -> int:
        return api.patch_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "iris", body)[
            "metadata"
        ]["generation"]

    assert patch({"metadata": {"annotations": {"x": "y"}}}) == 1
    assert (
        api.patch_namespaced_custom_object_status(
            GROUP, VERSION, "default", PLURAL, "iris", {"status": {"phase": "Ready"}}
        )["metadata"]["generation"]
        == 1
    )
    assert patch({"spec": {"serving": {"replicas": 3}}}) == 2
    assert patch({"spec": {"serving": {"replicas": 3}}}) == 2  # unchanged spec


def test_custom_resources_are_validated_against_the_crd_schema(kube_client):
    bad = samples.model_deployment(replicas=-1)
    with pytest.raises(ApiException) as exc:
        create_md(kube_client, bad)
    assert exc.value.status == 422
    assert "spec.serving.replicas" in json.loads(exc.value.body)["message"]


# --- other write semantics ------------------------------------------------------------------------


def test_patch_types_and_preconditions(kube_client):
    apps = k8s.AppsV1Api(kube_client)
    created = apps.create_namespaced_deployment("default", samples.deployment())
    with pytest.raises(ApiException) as exc:
        apps.create_namespaced_deployment("default", samples.deployment())
    assert exc.value.status == 409
    json_patched = apps.patch_namespaced_deployment(
        "web", "default", [{"op": "replace", "path": "/spec/replicas", "value": 5}]
    )
    assert json_patched.spec.replicas == 5
    strategic = apps.patch_namespaced_deployment(
        "web", "default", {"metadata": {"labels": {"app": None, "k": "v"}}}
    )
    assert strategic.metadata.labels == {"k": "v"}
    stale = samples.deployment()
    stale["metadata"]["resourceVersion"] = created.metadata.resource_version
    with pytest.raises(ApiException) as exc:
        apps.replace_namespaced_deployment("web", "default", stale)
    assert exc.value.status == 409


def test_objects_need_an_existing_namespace(kube_client, fake_api):
    apps = k8s.AppsV1Api(kube_client)
    with pytest.raises(ApiException) as exc:
        apps.create_namespaced_deployment("elsewhere", samples.deployment(namespace="elsewhere"))
    assert exc.value.status == 404
    fake_api.create_namespace("elsewhere")
    assert apps.create_namespaced_deployment(
        "elsewhere", samples.deployment(namespace="elsewhere")
    ).metadata.uid


def test_finalizers_hold_deletion_until_removed(kube_client, fake_api):
    api = k8s.CustomObjectsApi(kube_client)
    body = samples.model_deployment()
    body["metadata"]["finalizers"] = ["example.com/hold"]
    create_md(kube_client, body)
    api.delete_namespaced_custom_object(GROUP, VERSION, "default", PLURAL, "iris")
    held = fake_api.get("ModelDeployment", "default", "iris")
    assert held is not None and held["metadata"]["deletionTimestamp"]
    api.patch_namespaced_custom_object(
        GROUP, VERSION, "default", PLURAL, "iris", {"metadata": {"finalizers": None}}
    )
    assert fake_api.get("ModelDeployment", "default", "iris") is None


def test_label_selectors_filter_lists(kube_client):
    apps = k8s.AppsV1Api(kube_client)
    apps.create_namespaced_deployment(
        "default", samples.deployment("a", labels={"app": "a", "tier": "front"})
    )
    apps.create_namespaced_deployment("default", samples.deployment("b", labels={"app": "b"}))

    def names(selector: str) -> list[str]:
        return [
            d.metadata.name for d in apps.list_namespaced_deployment("default", label_selector=selector).items
        ]

    assert names("tier=front") == ["a"]
    assert names("app in (a,b),!tier") == ["b"]
    assert names("app!=a") == ["b"]


def test_failures_can_be_injected_for_a_while(kube_client, fake_api):
    apps = k8s.AppsV1Api(kube_client)
    with (
        fake_api.failing("POST", "Deployment", status=503, message="etcd is slow"),
        pytest.raises(ApiException) as exc,
    ):
        apps.create_namespaced_deployment("default", samples.deployment())
    assert exc.value.status == 503
    assert json.loads(exc.value.body)["message"] == "etcd is slow"
    assert apps.create_namespaced_deployment("default", samples.deployment()).metadata.uid


# --- watching -------------------------------------------------------------------------------------


def test_watch_from_a_resource_version_replays_only_later_changes(kube_client, fake_api):
    apps = k8s.AppsV1Api(kube_client)
    apps.create_namespaced_deployment("default", samples.deployment("old"))
    listed = apps.list_namespaced_deployment("default")
    fake_api.create(samples.deployment("new"))
    fake_api.patch("Deployment", "default", "old", {"spec": {"replicas": 3}})
    fake_api.delete("Deployment", "default", "new")

    stream = watch.Watch().stream(
        apps.list_namespaced_deployment,
        "default",
        resource_version=listed.metadata.resource_version,
        timeout_seconds=1,
    )
    events = list(stream)
    assert [(e["type"], e["object"].metadata.name) for e in events] == [
        ("ADDED", "new"),
        ("MODIFIED", "old"),
        ("DELETED", "new"),
    ]

    last_seen = events[-1]["object"].metadata.resource_version
    stream = watch.Watch().stream(
        apps.list_namespaced_deployment, "default", resource_version=last_seen, timeout_seconds=1
    )
    assert list(stream) == []  # reconnecting replays nothing already seen


def test_watch_without_resource_version_starts_with_current_objects(kube_client, fake_api):
    apps = k8s.AppsV1Api(kube_client)
    fake_api.create(samples.deployment("a"))
    events: list[tuple[str, str]] = []

    def consume() -> None:
        for event in watch.Watch().stream(apps.list_namespaced_deployment, "default", timeout_seconds=2):
            events.append((event["type"], event["object"].metadata.name))

    thread = threading.Thread(target=consume)
    thread.start()
    wait_for(lambda: events, timeout=5, message="the initial ADDED event")
    fake_api.create(samples.deployment("b"))
    thread.join(timeout=5)
    assert events == [("ADDED", "a"), ("ADDED", "b")]


# --- kopf against the fake ------------------------------------------------------------------------


def test_kopf_handles_each_object_once_across_watch_reconnects(fake_api):
    """A minimal kopf operator: one create handler call despite watches ending every second,
    handler results written through /status, finalizer added and released on deletion."""
    registry = kopf.OperatorRegistry()
    calls: list[str] = []

    @kopf.on.login(registry=registry)
    def login(**_):
        return kopf.ConnectionInfo(server=fake_api.url, insecure=True)

    @kopf.on.startup(registry=registry)
    def configure(settings: kopf.OperatorSettings, **_):
        settings.watching.server_timeout = 1

    @kopf.on.create(GROUP, VERSION, PLURAL, registry=registry, id="created")
    def created(name, **_):
        calls.append(f"create {name}")
        return {"seen": True}

    @kopf.on.delete(GROUP, VERSION, PLURAL, registry=registry)
    def deleted(name, **_):
        calls.append(f"delete {name}")

    with KopfRunner(["run", "--standalone", "--all-namespaces"], registry=registry, timeout=15):
        fake_api.create(samples.model_deployment())
        wait_for(
            lambda: (
                (fake_api.get("ModelDeployment", "default", "iris") or {}).get("status", {}).get("created")
            ),
            message="the handler result in status",
        )
        watches = lambda: [r for r in fake_api.requests("GET", "modeldeployments") if r.params.get("watch")]  # noqa: E731
        before = len(watches())
        wait_for(lambda: len(watches()) >= before + 2, timeout=5, message="two watch reconnects")
        assert calls == ["create iris"]
        assert fake_api.get("ModelDeployment", "default", "iris")["metadata"]["finalizers"]
        fake_api.delete("ModelDeployment", "default", "iris")
        wait_for(lambda: fake_api.get("ModelDeployment", "default", "iris") is None, message="deletion")
    assert calls == ["create iris", "delete iris"]
    assert fake_api.requests("PATCH", "modeldeployments", subresource="status")
