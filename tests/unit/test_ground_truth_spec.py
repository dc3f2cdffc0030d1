"""spec.groundTruth: validated at apply time, and rendered as the runtime's environment."""

from __future__ import annotations

import pytest

from modelrollout.api.spec import SpecError, parse_spec
from modelrollout.render import serving as R
from tests.support.crdschema import model_deployment, validate
from tests.support.samples import md

TRUTH = {
    "store": {"type": "postgres", "dsnSecretRef": {"name": "pg", "key": "dsn"}},
    "retention": "48h",
    "feedbackTokenSecretRef": {"name": "feedback", "key": "token"},
    "positiveClass": "fraud",
}
MODEL = {"name": "iris", "version": "1.0.0", "image": "example.com/iris:1.0.0"}


def env_of(spec_overrides) -> dict[str, dict]:
    m = md(spec_overrides)
    container = R.deployment(m, model=m.spec.model, track="stable", replicas=1)["spec"]["template"]["spec"][
        "containers"
    ][0]
    return {e["name"]: e for e in container["env"]}


def test_ground_truth_reaches_the_serving_pods_with_secrets_by_reference():
    env = env_of({"groundTruth": TRUTH})
    assert env["MODELROLLOUT_GROUND_TRUTH_RETENTION_SECONDS"]["value"] == str(48 * 3600)
    assert env["MODELROLLOUT_GROUND_TRUTH_DSN"]["valueFrom"] == {"secretKeyRef": {"name": "pg", "key": "dsn"}}
    assert env["MODELROLLOUT_FEEDBACK_TOKEN"]["valueFrom"] == {
        "secretKeyRef": {"name": "feedback", "key": "token"}
    }
    assert env["MODELROLLOUT_POSITIVE_CLASS"]["value"] == "fraud"
    assert "value" not in env["MODELROLLOUT_FEEDBACK_TOKEN"]  # the token itself is never in the pod spec


def test_without_ground_truth_no_token_is_rendered_so_feedback_stays_disabled():
    env = env_of({})
    assert not {k for k in env if "FEEDBACK" in k or "GROUND_TRUTH" in k}


def test_sqlite_ground_truth_store_is_a_path_on_a_volume_every_pod_mounts():
    truth = {"store": {"type": "sqlite", "path": "/data/log.sqlite"}, "volumeClaimName": "shared-log"}
    env = env_of({"groundTruth": truth})
    assert env["MODELROLLOUT_GROUND_TRUTH_DSN"]["value"] == "sqlite:////data/log.sqlite"
    m = md({"groundTruth": truth})
    spec = R.deployment(m, model=m.spec.model, track="stable", replicas=2)["spec"]["template"]["spec"]
    assert {"name": "data", "persistentVolumeClaim": {"claimName": "shared-log"}} in spec["volumes"]
    assert {"name": "data", "mountPath": "/data"} in spec["containers"][0]["volumeMounts"]


def test_a_sqlite_log_without_a_shared_volume_is_refused_by_schema_and_operator():
    spec = {"model": MODEL, "groundTruth": {"store": {"type": "sqlite", "path": "/data/log.sqlite"}}}
    _, errors = validate(model_deployment(spec))
    assert any("needs a volume every serving pod shares" in e for e in errors), errors
    with pytest.raises(SpecError, match="volume every serving pod shares"):
        parse_spec(spec)


CLASS_CHECK = {
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "recall", "template": "recall", "min": 0.5}],
}


@pytest.mark.parametrize("truth", [None, {"retention": "24h"}])
def test_class_checks_without_a_positive_class_are_refused_by_schema_and_operator(truth):
    spec = {"model": MODEL, "rollout": {"analysis": CLASS_CHECK}}
    if truth is not None:
        spec["groundTruth"] = truth
    _, errors = validate(model_deployment(spec))
    assert any("positiveClass" in e for e in errors), errors
    with pytest.raises(SpecError, match="positiveClass"):
        parse_spec(spec)


def test_class_checks_with_a_positive_class_are_accepted():
    spec = {"model": MODEL, "rollout": {"analysis": CLASS_CHECK}, "groundTruth": {"positiveClass": "fraud"}}
    _, errors = validate(model_deployment(spec))
    assert errors == []
    assert parse_spec(spec).ground_truth.positive_class == "fraud"


def test_min_labels_is_at_least_one():
    spec = {"model": MODEL, "rollout": {"analysis": {**CLASS_CHECK, "minLabels": 0}}, "groundTruth": TRUTH}
    _, errors = validate(model_deployment(spec))
    assert any("minLabels" in e for e in errors)
