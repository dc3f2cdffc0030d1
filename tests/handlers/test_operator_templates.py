"""The real operator against the fake API: analysis templates looked up at every reconcile of a
rollout. Several ModelDeployments share one template and change Prometheus with one edit; a
missing template degrades and holds the rollout until it exists; a cluster template's token is
read in the operator's namespace; a time zone the IANA database lacks is refused before
anything is applied."""

from __future__ import annotations

import time
from typing import Any

import pytest

from tests.handlers import samples
from tests.handlers.fake_prometheus import FakePrometheus
from tests.handlers.fakeapi import FakeCluster, wait_for
from tests.handlers.test_operator_online import condition, create_md, events_about, status_of
from tests.handlers.test_operator_rollout import V2

NS = "default"
MD = "ModelDeployment"
TEMPLATE = "ModelAnalysisTemplate"
CLUSTER_TEMPLATE = "ClusterModelAnalysisTemplate"
HELD = {"steps": [{"setWeight": 50, "pause": "1h"}], "scaleDownDelay": "1s", "progressDeadline": "1h"}
QUICK = {"steps": [{"setWeight": 50, "pause": "2s"}], "scaleDownDelay": "1s"}


def healthy(query: str) -> float:
    return 120.0 if "increase(" in query else 0.05


def template(
    address: str, *, kind: str = TEMPLATE, name: str = "slo", auth: dict | None = None
) -> dict[str, Any]:
    prometheus: dict[str, Any] = {"address": address} | ({"authSecretRef": auth} if auth else {})
    metadata = {"name": name} | ({"namespace": NS} if kind == TEMPLATE else {})
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": kind,
        "metadata": metadata,
        "spec": {
            "prometheus": prometheus,
            "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
        },
    }


def uses(name: str = "slo", kind: str = TEMPLATE, **rollout: Any) -> dict[str, Any]:
    return {
        **rollout,
        "analysis": {"interval": "1s", "minSamples": 20, "templates": [{"name": name, "kind": kind}]},
    }


def rollout_of(api: FakeCluster, name: str) -> dict[str, Any]:
    return status_of(api, name).get("rollout") or {}


def serve_v1_then_start_v2(api: FakeCluster, name: str, rollout: dict[str, Any]) -> None:
    create_md(api, samples.model_deployment(name, rollout=rollout))
    wait_for(
        lambda: status_of(api, name).get("stableVersion") == "1.0.0", message=f"{name} v1 Ready", timeout=15
    )
    api.patch(MD, NS, name, {"spec": {"model": V2}})


def asked_about(prometheus: FakePrometheus, name: str) -> bool:
    return any(f'modelrollout_deployment="{name}"' in q for q in prometheus.queries)


def test_model_deployments_share_one_template_and_change_prometheus_with_one_edit(
    operator, fake_api, deployment_controller
):
    names = ["iris-a", "iris-b", "iris-c"]
    with FakePrometheus(healthy) as old, FakePrometheus(healthy) as new:
        fake_api.create(template(old.url))
        for name in names:
            serve_v1_then_start_v2(fake_api, name, uses(**HELD))
        for name in names:
            wait_for(
                lambda n=name: asked_about(old, n),
                message=f"{name} analysed on the old Prometheus",
                timeout=20,
            )
        checks = rollout_of(fake_api, "iris-a")["checks"]
        assert checks[0]["source"] == {"kind": TEMPLATE, "name": "slo", "generation": 1}

        fake_api.patch(TEMPLATE, NS, "slo", {"spec": {"prometheus": {"address": new.url}}})  # the one edit
        for name in names:
            wait_for(
                lambda n=name: asked_about(new, n),
                message=f"{name} analysed on the new Prometheus",
                timeout=10,
            )
        time.sleep(1.5)  # reconciles in flight when the edit landed have finished
        before = len(old.queries)
        time.sleep(2.5)
        assert len(old.queries) == before  # nobody asks the old Prometheus any more
        for name in names:
            sources = [c["source"] for c in rollout_of(fake_api, name)["checks"]]
            assert sources == [{"kind": TEMPLATE, "name": "slo", "generation": 2}]


def test_a_missing_template_degrades_holds_the_canary_and_the_rollout_goes_on_once_it_exists(
    operator, fake_api, deployment_controller
):
    with FakePrometheus(healthy) as prometheus:
        create_md(fake_api, samples.model_deployment(rollout=uses(**QUICK)))
        degraded = wait_for(
            lambda: (
                (c := condition(status_of(fake_api, "iris"), "Degraded")).get("reason")
                == "AnalysisTemplateInvalid"
                and c
            ),
            message="Degraded at once: the spec names a template that does not exist",
        )
        assert (
            degraded["status"] == "True"
            and "ModelAnalysisTemplate slo not found in namespace default" in degraded["message"]
        )
        (event,) = wait_for(
            lambda: events_about(fake_api, "iris", "AnalysisTemplateInvalid"), message="a Warning event"
        )
        assert event["type"] == "Warning" and "slo not found" in event["note"]
        wait_for(
            lambda: status_of(fake_api, "iris").get("stableVersion") == "1.0.0",
            message="v1 still serves",
            timeout=15,
        )

        fake_api.patch(MD, NS, "iris", {"spec": {"model": V2}})
        held = wait_for(
            lambda: rollout_of(fake_api, "iris").get("analysisBlocked"), message="the rollout waits"
        )
        assert "slo not found" in held
        time.sleep(3)  # QUICK's 2s pause is long over: without a valid analysis nothing moves on
        status = status_of(fake_api, "iris")
        assert status["phase"] == "Degraded" and status["canaryWeight"] == 0
        assert rollout_of(fake_api, "iris")["phase"] == "Progressing" and prometheus.queries == []
        assert len(events_about(fake_api, "iris", "AnalysisTemplateInvalid")) == 1  # said once

        fake_api.create(template(prometheus.url))
        done = wait_for(
            lambda: rollout_of(fake_api, "iris").get("phase") == "Succeeded" and status_of(fake_api, "iris"),
            message="the promotion once the template exists",
            timeout=20,
        )
    assert done["stableVersion"] == "2.0.0" and condition(done, "Degraded")["status"] == "False"
    assert prometheus.queries and all('track="' in q for q in prometheus.queries)


@pytest.mark.fake_api(namespaces=("default", "modelrollout-system"))
def test_a_cluster_templates_token_is_read_in_the_operators_namespace(
    operator, fake_api, deployment_controller, monkeypatch
):
    monkeypatch.setenv("MODELROLLOUT_NAMESPACE", "modelrollout-system")
    fake_api.create(
        {
            "apiVersion": "v1",
            "kind": "Secret",
            "metadata": {"name": "central-token", "namespace": "modelrollout-system"},
            "data": {"token": "czNjcmV0"},  # "s3cret"
        }
    )
    with FakePrometheus(healthy) as prometheus:
        fake_api.create(
            template(prometheus.url, kind=CLUSTER_TEMPLATE, name="org", auth={"name": "central-token"})
        )
        serve_v1_then_start_v2(fake_api, "iris", uses("org", CLUSTER_TEMPLATE, **HELD))
        wait_for(lambda: prometheus.queries, message="an analysis with the cluster template", timeout=20)
        assert set(prometheus.authorizations) == {"Bearer s3cret"}
    (check,) = wait_for(lambda: rollout_of(fake_api, "iris").get("checks"), message="checks in status")
    assert check["source"] == {"kind": CLUSTER_TEMPLATE, "name": "org", "generation": 1}


def test_an_unknown_time_zone_is_refused_before_anything_is_applied(operator, fake_api):
    batch = {**samples.BATCH, "timeZone": "Mars/Olympus"}
    create_md(fake_api, samples.model_deployment(mode="batch", batch=batch))
    status = status_of(fake_api, "iris")
    degraded = condition(status, "Degraded")
    assert status["phase"] == "Degraded" and degraded["reason"] == "InvalidSpec"
    assert "spec.batch.timeZone" in degraded["message"] and "IANA" in degraded["message"]
    (event,) = wait_for(lambda: events_about(fake_api, "iris", "InvalidSpec"), message="a Warning event")
    assert "spec.batch.timeZone" in event["note"]
    assert fake_api.get("CronJob", NS, "iris-batch") is None
    assert fake_api.get("Deployment", NS, "iris-stable") is None
