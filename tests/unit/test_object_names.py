"""Every name the operator generates is one the API server accepts.

The fakes accept any string; the API server checks names per kind (Services want DNS-1035
labels, CronJobs at most 52 characters, label values at most 63, port names 15, events DNS
subdomains). These are its rules (k8s.io/apimachinery/pkg/util/validation), checked on every
child rendered for the shortest and the longest name the CRD admits.
"""

from __future__ import annotations

import re
from typing import Any

import pytest

from modelrollout.api.resource import MAX_NAME_LENGTH
from modelrollout.kube.client import event_name
from modelrollout.render import cronjob as B
from modelrollout.render import serving as R
from modelrollout.routing.gateway import http_route
from tests.support.samples import md

DNS1123_LABEL = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")
DNS1035_LABEL = re.compile(r"^[a-z]([-a-z0-9]*[a-z0-9])?$")
DNS1123_SUBDOMAIN = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$")
LABEL_VALUE = re.compile(r"^(([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9])?$")
QUALIFIED_NAME = re.compile(r"^([A-Za-z0-9][-A-Za-z0-9_.]*)?[A-Za-z0-9]$")


def dns_subdomain(name: str) -> bool:
    return len(name) <= 253 and bool(DNS1123_SUBDOMAIN.match(name))


def dns_label(name: str) -> bool:
    return len(name) <= 63 and bool(DNS1123_LABEL.match(name))


def service_name(name: str) -> bool:
    return len(name) <= 63 and bool(DNS1035_LABEL.match(name))


def cronjob_name(name: str) -> bool:
    return dns_subdomain(name) and len(name) <= 52  # its Jobs append an 11-character suffix


def port_name(name: str) -> bool:
    """IANA_SVC_NAME: at most 15, lowercase alphanumerics and '-', a letter, no '--'."""
    return (
        len(name) <= 15
        and bool(re.match(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$", name))
        and "--" not in name
        and bool(re.search(r"[a-z]", name))
    )


NAME_RULES = {
    "Deployment": dns_subdomain,
    "Service": service_name,
    "HorizontalPodAutoscaler": dns_subdomain,
    "PodMonitor": dns_subdomain,
    "HTTPRoute": dns_subdomain,
    "CronJob": cronjob_name,
}

SPEC = {
    "mode": "hybrid",
    "batch": {"schedule": "@daily", "input": {"path": "/data/in.parquet", "keyColumns": ["id"]}},
    "serving": {"replicas": 2, "autoscaling": {"minReplicas": 2, "maxReplicas": 4}},
    "rollout": {"router": "gatewayAPI", "gateway": {"parentRefs": [{"name": "gw"}]}},
}


def every_child(name: str) -> list[dict[str, Any]]:
    model = md(SPEC, name=name)
    canary_model = model.spec.model.model_copy(update={"version": "2.0.0-rc.1"})
    return [
        R.deployment(model, model=model.spec.model, track="stable", replicas=2),
        R.deployment(model, model=canary_model, track="canary", replicas=1),
        R.service(model),
        R.service(model, track="stable"),
        R.service(model, track="canary"),
        R.hpa(model),
        R.pod_monitor(model),
        http_route(model, weight=10),
        B.cronjob(model),
    ]


def label_problems(labels: dict[str, str]) -> list[str]:
    problems = []
    for key, value in labels.items():
        prefix, _, local = key.rpartition("/")
        if prefix and not dns_subdomain(prefix):
            problems.append(f"label key prefix {key}")
        if not (len(local) <= 63 and QUALIFIED_NAME.match(local)):
            problems.append(f"label key {key}")
        if not (len(value) <= 63 and LABEL_VALUE.match(value)):
            problems.append(f"label value {key}={value}")
    return problems


def pod_spec(obj: dict[str, Any]) -> dict[str, Any] | None:
    spec = obj.get("spec", {})
    if "jobTemplate" in spec:
        return spec["jobTemplate"]["spec"]["template"]["spec"]
    if "template" in spec:
        return spec["template"]["spec"]
    return None


NAMES = ["a", "x-1", "a" * MAX_NAME_LENGTH, "m" + "-9" * ((MAX_NAME_LENGTH - 1) // 2)]


@pytest.mark.parametrize("name", NAMES)
def test_every_child_name_is_valid_for_its_kind(name):
    children = every_child(name)
    assert {c["kind"] for c in children} == set(NAME_RULES)
    for child in children:
        child_name = child["metadata"]["name"]
        assert NAME_RULES[child["kind"]](child_name), f"{child['kind']} {child_name!r}"


@pytest.mark.parametrize("name", NAMES)
def test_every_label_of_every_child_and_pod_is_valid(name):
    for child in every_child(name):
        assert label_problems(child["metadata"].get("labels", {})) == [], child["kind"]
        template = child.get("spec", {}).get("template") or (
            child.get("spec", {}).get("jobTemplate", {}).get("spec", {}).get("template")
        )
        if template:
            assert label_problems(template["metadata"].get("labels", {})) == [], child["kind"]


@pytest.mark.parametrize("name", NAMES)
def test_container_port_and_volume_names_are_valid(name):
    for child in every_child(name):
        spec = pod_spec(child)
        if spec is None:
            continue
        for container in spec["containers"]:
            assert dns_label(container["name"]), container["name"]
            for port in container.get("ports", []):
                assert port_name(port["name"]), port["name"]
        for volume in spec.get("volumes", []):
            assert dns_label(volume["name"]), volume["name"]
    for port in R.service(md(SPEC, name=name))["spec"]["ports"]:
        assert port_name(port["name"])


@pytest.mark.parametrize("name", NAMES)
def test_event_names_are_dns_subdomains_and_unique(name):
    names = {event_name(name) for _ in range(200)}
    assert len(names) == 200
    assert all(dns_subdomain(n) for n in names)
    assert event_name(name, now_ns=1).startswith(f"{name}.")


def test_the_rules_refuse_what_the_api_server_refuses():
    assert not service_name("1iris") and not service_name("iris.v2")
    assert not cronjob_name("a" * 53) and cronjob_name("a" * 52)
    assert not dns_subdomain("iris.") and not port_name("http-metrics-port")
    assert label_problems({"modelrollout.io/model-version": "1.0.0+build"})
