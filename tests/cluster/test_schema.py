"""The CRD as the real API server judges it: installed and Established, every sample and good
spec accepted, every malformed spec of the unit tier refused with the field named."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from modelrollout.api.cron import iana_time_zones
from tests.cluster.conftest import ROOT, dry_run, kubectl, run_kubectl
from tests.support.crdschema import model_deployment
from tests.unit.test_bad_input import BAD, BATCH, GOOD_BATCH, GOOD_ROLLOUTS, VALID
from tests.unit.test_object_names import SPEC as EVERY_CHILD_SPEC
from tests.unit.test_render_serving import VARIANTS

SAMPLES = sorted((ROOT / "bentos").rglob("*modeldeployment*.yaml"))


def test_crd_is_accepted_and_established(crd):
    status = json.loads(kubectl("get", "crd", crd, "-o", "json"))["status"]
    conditions = {c["type"]: c["status"] for c in status["conditions"]}
    assert conditions["Established"] == "True" and conditions["NamesAccepted"] == "True"
    assert status["acceptedNames"]["shortNames"] == ["mdep"]
    # the printer columns work: `kubectl get mdep` answers (no objects yet is fine)
    kubectl("get", "mdep", "-A")


def test_crd_as_committed_before_the_fix_would_be_refused_for_the_reason_the_unit_tier_checks():
    """The unit-tier check of CEL rules on defaults mirrors what this server does at creation."""
    from tests.support.crdschema import cel_errors_on_defaults

    schema = yaml.safe_load((ROOT / "crds" / "modelrollout.io_modeldeployments.yaml").read_text())
    schema = schema["spec"]["versions"][0]["schema"]["openAPIV3Schema"]
    assert cel_errors_on_defaults(schema) == []


@pytest.mark.parametrize("path", SAMPLES, ids=lambda p: p.name)
def test_every_sample_is_accepted(path: Path, namespace):
    for doc in yaml.safe_load_all(path.read_text()):
        if doc and doc.get("kind") == "ModelDeployment":
            result = dry_run(doc, namespace)
            assert result.returncode == 0, result.stderr


GOOD = (
    {"valid": VALID, "every-child": {**VALID, **EVERY_CHILD_SPEC}}
    | {f"variant-{k}": {**VALID, **v} for k, v in VARIANTS.items()}
    | {f"rollout-{k}": {**VALID, "rollout": v} for k, v in GOOD_ROLLOUTS}
    | {f"batch-{k}": {**VALID, "mode": "batch", "batch": {**BATCH, **v}} for k, v in GOOD_BATCH}
)


@pytest.mark.parametrize("spec", list(GOOD.values()), ids=list(GOOD))
def test_every_good_spec_of_the_unit_tier_is_accepted(spec, namespace):
    result = dry_run(model_deployment(spec, name="good"), namespace)
    assert result.returncode == 0, result.stderr


@pytest.mark.parametrize(("spec", "fragment"), [(s, f) for _, s, f in BAD], ids=[i for i, _, _ in BAD])
def test_every_malformed_spec_of_the_unit_tier_is_refused_naming_the_field(spec, fragment, namespace):
    result = dry_run(model_deployment(spec, name="bad"), namespace)
    assert result.returncode != 0, "the API server accepted a malformed spec"
    assert fragment in result.stderr, result.stderr


@pytest.mark.parametrize("name", ["1iris", "iris.v2", "a" * 46])
def test_names_children_could_not_carry_are_refused(name, namespace):
    """The refusal names the field as the API server's own rules do (`metadata.name: Invalid
    value: ...`), not `<nil>:` as a root rule without a fieldPath reports it."""
    result = dry_run(model_deployment(VALID, name=name), namespace)
    assert result.returncode != 0 and "metadata.name: Invalid value" in result.stderr, result.stderr
    assert "<nil>" not in result.stderr, result.stderr


def test_longest_name_is_accepted(namespace):
    result = dry_run(model_deployment(VALID, name="a" * 45), namespace)
    assert result.returncode == 0, result.stderr


def test_a_duration_beyond_gos_range_is_refused(namespace):
    """cel-python accepts it; the API server's duration() does not (the operator's parse
    refuses it too: tests/unit/test_bad_input.py)."""
    spec = {**VALID, "rollout": {"progressDeadline": "3000000h", "analysis": BAD_ANALYSIS}}
    result = dry_run(model_deployment(spec, name="dur"), namespace)
    assert result.returncode != 0 and "spec.rollout" in result.stderr, result.stderr


BAD_ANALYSIS = {
    "prometheus": {"address": "http://prometheus:9090"},
    "metrics": [{"name": "errors", "template": "error-rate", "max": 0.01}],
}


def test_every_time_zone_the_crd_accepts_the_api_server_takes_for_a_cronjob(namespace):
    """The CRD's list of IANA names (api/time_zones.txt) against the API server's own check of
    CronJob.spec.timeZone (Go's time.LoadLocation): a name we accept never fails at apply."""
    template = {
        "spec": {
            "template": {"spec": {"restartPolicy": "Never", "containers": [{"name": "c", "image": "x"}]}}
        }
    }
    cronjobs = [
        {"apiVersion": "batch/v1", "kind": "CronJob", "metadata": {"name": f"tz-{i}", "namespace": namespace},
         "spec": {"schedule": "0 2 * * *", "timeZone": zone, "jobTemplate": template}}
        for i, zone in enumerate(iana_time_zones())
    ]  # fmt: skip
    listed = json.dumps({"apiVersion": "v1", "kind": "List", "items": cronjobs})
    result = run_kubectl("create", "--dry-run=server", "-f", "-", input=listed, timeout=300)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.count("created (server dry run)") == len(cronjobs)
