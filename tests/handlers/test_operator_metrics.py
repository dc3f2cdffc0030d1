"""The operator's per-object metrics as the running operator keeps them: written at every
reconcile with the object's namespace and name, gone once the object is deleted."""

from __future__ import annotations

from prometheus_client import REGISTRY

from tests.handlers import samples
from tests.handlers.fakeapi import wait_for
from tests.handlers.test_operator_online import act_as_deployment_controller, create_md

NS = "default"


def phase(name: str, value: str) -> float | None:
    return REGISTRY.get_sample_value("modelrollout_phase", {"namespace": NS, "name": name, "phase": value})


def test_an_objects_series_follow_its_phase_and_go_with_it(operator, fake_api):
    create_md(fake_api, samples.model_deployment("metrics-iris"))
    wait_for(
        lambda: phase("metrics-iris", "Progressing") == 1, message="the Progressing series (pods starting)"
    )
    act_as_deployment_controller(fake_api, "metrics-iris-stable")
    wait_for(lambda: phase("metrics-iris", "Ready") == 1, message="the Ready series")
    assert phase("metrics-iris", "Progressing") == 0 and phase("metrics-iris", "Degraded") == 0
    info = {
        "namespace": NS,
        "name": "metrics-iris",
        "mode": "online",
        "stable_version": "1.0.0",
        "canary_version": "",
    }
    wait_for(lambda: REGISTRY.get_sample_value("modelrollout_info", info) == 1, message="release info")

    fake_api.delete("ModelDeployment", NS, "metrics-iris")
    wait_for(lambda: fake_api.get("ModelDeployment", NS, "metrics-iris") is None, message="the deletion")
    wait_for(lambda: phase("metrics-iris", "Ready") is None, message="its series removed")
    assert REGISTRY.get_sample_value("modelrollout_info", info) is None
