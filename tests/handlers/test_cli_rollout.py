"""The CLI against the operator on the fake API, as an Argo Rollouts user would drive it:
`promote` advances one step and `--full` the rest, `status --watch` follows a rollout through
the watch API until it ends, `-o json`, `list -A`, `undo`."""

from __future__ import annotations

import json

from modelrollout.cli.main import main
from tests.handlers import samples
from tests.handlers.fake_prometheus import FakePrometheus
from tests.handlers.fakeapi import FakeCluster, wait_for
from tests.handlers.test_operator_online import create_md, status_of
from tests.handlers.test_operator_rollout import V2

NS = "default"
MD = "ModelDeployment"
TWO_HELD_STEPS = {
    "steps": [{"setWeight": 25, "pause": "1h"}, {"setWeight": 50, "pause": "1h"}],
    "scaleDownDelay": "1s",
    "progressDeadline": "1h",
}
QUICK = {"steps": [{"setWeight": 50, "pause": "2s"}], "scaleDownDelay": "1s"}


def rollout(api: FakeCluster) -> dict:
    return status_of(api, "iris").get("rollout") or {}


def start_v2(api: FakeCluster, spec_rollout: dict) -> None:
    create_md(api, samples.model_deployment(rollout=spec_rollout))
    wait_for(lambda: status_of(api, "iris").get("stableVersion") == "1.0.0", message="v1 Ready", timeout=15)
    api.patch(MD, NS, "iris", {"spec": {"model": V2}})
    wait_for(lambda: rollout(api).get("stepStartedAt"), message="the first step", timeout=15)


def test_promote_advances_one_step_and_full_promotes(operator, fake_api, deployment_controller, capsys):
    start_v2(fake_api, TWO_HELD_STEPS)
    assert rollout(fake_api)["step"] == 0

    assert main(["promote", "iris", "--wait", "20"]) == 0
    assert "promote accepted: promote of 2.0.0 from step 1" in capsys.readouterr().out
    value = fake_api.get(MD, NS, "iris")["metadata"]["annotations"]["modelrollout.io/promote"]
    assert value.endswith("@2.0.0#step=1")
    wait_for(lambda: rollout(fake_api).get("stepStartedAt"), message="the second step", timeout=15)
    assert rollout(fake_api)["step"] == 1 and rollout(fake_api)["phase"] == "Progressing"  # not promoted

    assert main(["promote", "iris", "--full", "--wait", "20"]) == 0
    wait_for(lambda: rollout(fake_api).get("phase") == "Succeeded", message="the promotion", timeout=20)
    assert status_of(fake_api, "iris")["stableVersion"] == "2.0.0"


def test_status_watch_follows_the_rollout_until_it_ends(operator, fake_api, deployment_controller, capsys):
    def healthy(query):
        return 120.0 if "increase(" in query else 0.05

    with FakePrometheus(healthy) as prometheus:
        analysis = {
            "prometheus": {"address": prometheus.url},
            "interval": "1s",
            "metrics": [{"name": "p99", "template": "latency-p99", "max": 0.5}],
        }
        create_md(fake_api, samples.model_deployment(rollout={**QUICK, "analysis": analysis}))
        wait_for(
            lambda: status_of(fake_api, "iris").get("stableVersion") == "1.0.0", message="v1", timeout=15
        )
        fake_api.patch(MD, NS, "iris", {"spec": {"model": V2}})
        code = main(["status", "iris", "--watch", "--timeout", "60"])
    captured = capsys.readouterr()
    out = captured.out
    assert code == 0, captured
    frames = ["NAMESPACE" + f for f in out.split("NAMESPACE")[1:]]  # a pipe gets every frame in turn
    assert len(frames) >= 3, out
    assert "Progressing" in out and "Rollout of 2.0.0 (from 1.0.0): Succeeded" in out, out
    assert "Succeeded" in frames[-1] and rollout(fake_api)["phase"] == "Succeeded", out


def test_output_json_and_list_all_namespaces(operator, fake_api, capsys):
    create_md(fake_api, samples.model_deployment())
    assert main(["status", "iris", "-o", "json"]) == 0
    obj = json.loads(capsys.readouterr().out)
    assert obj["kind"] == "ModelDeployment" and obj["metadata"]["name"] == "iris" and "status" in obj
    assert main(["list", "-A"]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert header.split()[:3] == ["NAMESPACE", "NAME", "MODE"] and row.split()[:2] == ["default", "iris"]
    assert main(["-n", "default", "list", "-o", "yaml"]) == 0
    assert "kind: List" in capsys.readouterr().out
    assert main(["status", "nope"]) == 1
    assert "not found" in capsys.readouterr().err


def test_undo_goes_back_to_the_version_before_the_last_rollout(
    operator, fake_api, deployment_controller, capsys
):
    start_v2(fake_api, QUICK)
    wait_for(lambda: rollout(fake_api).get("phase") == "Succeeded", message="v2 promoted", timeout=20)
    assert rollout(fake_api)["fromImage"] == "example.com/iris:1.0.0"

    assert main(["undo", "iris"]) == 0
    assert "spec.model 2.0.0 -> 1.0.0 (example.com/iris:1.0.0)" in capsys.readouterr().out
    assert fake_api.get(MD, NS, "iris")["spec"]["model"]["version"] == "1.0.0"
    wait_for(lambda: rollout(fake_api).get("canaryVersion") == "1.0.0", message="a rollout back to 1.0.0")
    wait_for(
        lambda: status_of(fake_api, "iris").get("stableVersion") == "1.0.0",
        message="1.0.0 stable",
        timeout=20,
    )
