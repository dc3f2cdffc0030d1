"""The CLI's kubectl habits, without a cluster: usage named as invoked, -n/--context/--kubeconfig
before or after the subcommand, `list` columns and AGE, `-o json|yaml`, the values `promote`
writes, `undo`'s patch, and when `status --watch` ends."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import pytest
import yaml

from modelrollout.cli import status_view as V
from modelrollout.cli.kubeopts import prog_name
from modelrollout.cli.main import build_parser, main
from modelrollout.cli.request_cmd import request_target, request_value, undo_patch
from modelrollout.rollout.requests import parse

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def body(*, phase="Progressing", rollout=None, generation=4, observed=4, spec_model=None, created=None):
    status = {"observedGeneration": observed, "phase": phase, "stableVersion": "1.0.0", "canaryWeight": 10}
    if rollout is not None:
        status["rollout"] = rollout
        status["canaryVersion"] = rollout.get("canaryVersion")
    return {
        "apiVersion": "modelrollout.io/v1alpha1",
        "kind": "ModelDeployment",
        "metadata": {
            "name": "iris",
            "namespace": "ml",
            "generation": generation,
            "resourceVersion": "7",
            "creationTimestamp": created or "2026-12-06T11:00:00Z",
        },
        "spec": {
            "mode": "online",
            "model": spec_model or {"name": "iris", "version": "2.0.0", "image": "reg/iris:2"},
        },
        "status": status,
    }


ROLLING = {
    "phase": "Progressing",
    "canaryVersion": "2.0.0",
    "canaryImage": "reg/iris:2",
    "fromVersion": "1.0.0",
    "fromImage": "reg/iris:1",
    "step": 1,
    "desiredWeight": 50,
    "observedWeight": 50,
}


@pytest.mark.parametrize(
    ("argv0", "prog"),
    [
        ("/usr/local/bin/kubectl-modelrollout", "kubectl modelrollout"),
        ("kubectl-modelrollout", "kubectl modelrollout"),
        ("/venv/bin/modelrollout", "modelrollout"),
        ("python -m modelrollout", "modelrollout"),
    ],
)
def test_usage_is_named_as_invoked(argv0, prog):
    assert prog_name(argv0) == prog
    assert build_parser(prog_name(argv0)).format_usage().startswith(f"usage: {prog} ")


def test_the_plugins_usage_line_says_kubectl_modelrollout(capsys):
    with pytest.raises(SystemExit):
        main(["status", "--help"], prog="kubectl modelrollout")
    assert capsys.readouterr().out.startswith("usage: kubectl modelrollout status")


@pytest.mark.parametrize(
    "argv",
    [
        ["status", "--context", "prod", "-n", "ml", "--kubeconfig", "/k", "iris"],
        ["--context", "prod", "-n", "ml", "--kubeconfig", "/k", "status", "iris"],
        ["--context", "prod", "status", "iris", "-n", "ml", "--kubeconfig=/k"],
    ],
)
def test_kube_options_are_accepted_before_and_after_the_subcommand(argv):
    args = build_parser("modelrollout").parse_args(argv)
    assert (args.context, args.namespace, args.kubeconfig, args.name) == ("prod", "ml", "/k", "iris")


@pytest.mark.parametrize(
    "command", ["status", "list", "promote", "abort", "retry", "undo", "pause", "resume"]
)
def test_every_cluster_command_takes_the_kube_options(command):
    argv = (
        [command]
        + ([] if command == "list" else ["iris"])
        + ["--context", "c", "-n", "ns", "--kubeconfig", "k"]
    )
    args = build_parser("modelrollout").parse_args(argv)
    assert (args.context, args.namespace, args.kubeconfig) == ("c", "ns", "k")


def test_operator_takes_a_namespace_before_the_subcommand_as_one_to_watch():
    args = build_parser("modelrollout").parse_args(["-n", "ml", "operator", "--log-format", "json"])
    assert args.watch_namespaces == [] and args.namespace == "ml" and args.log_format == "json"
    args = build_parser("modelrollout").parse_args(["operator", "-n", "a", "-n", "b"])
    assert args.watch_namespaces == ["a", "b"]


def test_list_shows_kubectl_columns_and_namespaces_with_all():
    items = [
        body(rollout=ROLLING),
        {**body(phase="Ready"), "metadata": {**body()["metadata"], "name": "ads", "namespace": "team-b"}},
    ]
    lines = V.list_rows(items, all_namespaces=True, now=NOW).splitlines()
    assert lines[0].split() == [
        "NAMESPACE",
        "NAME",
        "MODE",
        "PHASE",
        "STABLE",
        "CANARY",
        "WEIGHT",
        "STEP",
        "AGE",
    ]
    assert lines[1].split() == ["ml", "iris", "online", "Progressing", "1.0.0", "2.0.0", "10", "2", "60m"]
    assert lines[2].split()[:4] == ["team-b", "ads", "online", "Ready"]
    one_namespace = V.list_rows(items[:1], all_namespaces=False, now=NOW).splitlines()
    assert one_namespace[0].split()[0] == "NAME"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [(5, "5s"), (119, "119s"), (120, "2m"), (7199, "119m"), (7200, "2h"), (3 * 86400, "3d")],
)
def test_age_is_shown_as_kubectl_does(seconds, shown):
    created = (NOW - timedelta(seconds=seconds)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert V.age(created, NOW) == shown


def test_output_json_and_yaml_are_the_object():
    obj = body(rollout=ROLLING)
    assert json.loads(V.as_output(obj, "json")) == obj
    assert yaml.safe_load(V.as_output(obj, "yaml")) == obj
    listed = json.loads(V.as_output(V.as_list([obj]), "json"))
    assert listed["kind"] == "List" and listed["items"] == [obj]


def test_promote_writes_the_step_it_was_made_at_and_full_writes_full():
    b = body(rollout=ROLLING)
    target, why = request_target("promote", b)
    assert (target, why) == ("2.0.0", "")
    one = parse("promote", request_value("promote", target, b, full=False, token="t"))
    assert (one.target, one.full, one.step) == ("2.0.0", False, 2)  # status step 1 is "step 2"
    full = parse("promote", request_value("promote", target, b, full=True, token="t"))
    assert (full.target, full.full) == ("2.0.0", True)
    assert request_value("abort", target, b, full=False, token="t") == "t@2.0.0"


def test_nothing_to_promote_is_said_before_writing_anything():
    assert request_target("promote", body(phase="Ready")) == (
        None,
        "nothing to promote: no rollout is in progress",
    )


def test_undo_goes_back_to_the_version_and_image_the_rollout_started_from():
    patch, what = undo_patch(body(rollout=ROLLING))
    assert patch == {"spec": {"model": {"version": "1.0.0", "image": "reg/iris:1"}}}
    assert what == "spec.model 2.0.0 -> 1.0.0 (reg/iris:1)"


@pytest.mark.parametrize(
    ("rollout", "model", "why"),
    [
        (None, None, "nothing to undo: no rollout has run yet"),
        ({**ROLLING, "fromImage": None}, None, "its image was not recorded"),
        (ROLLING, {"name": "iris", "version": "1.0.0", "image": "reg/iris:1"}, "already 1.0.0"),
    ],
)
def test_undo_refuses_when_there_is_nothing_to_go_back_to(rollout, model, why):
    patch, what = undo_patch(body(rollout=rollout, spec_model=model))
    assert patch is None and why in what


@pytest.mark.parametrize(
    ("rollout", "generation", "observed", "phase", "over", "code"),
    [
        (ROLLING, 4, 4, "Progressing", False, None),
        ({**ROLLING, "phase": "Succeeded"}, 4, 4, "Ready", True, 0),
        ({**ROLLING, "phase": "RolledBack"}, 4, 4, "RolledBack", True, 1),
        ({**ROLLING, "phase": "Failed"}, 4, 4, "Failed", True, 1),
        (None, 5, 4, "Ready", False, None),  # a new spec the operator has not seen: not over yet
        (None, 4, 4, "Ready", True, 0),
    ],
)
def test_a_watch_ends_when_the_rollout_does(rollout, generation, observed, phase, over, code):
    b = body(rollout=rollout, generation=generation, observed=observed, phase=phase)
    assert V.finished(b) == over
    if over:
        assert V.exit_code(b) == code


def test_the_status_view_names_where_each_check_came_from():
    checks = [
        {
            "metric": "p99",
            "verdict": "pass",
            "value": 0.1,
            "time": "t",
            "source": {"kind": "ModelAnalysisTemplate", "name": "slo", "generation": 3},
        },
        {"metric": "own", "verdict": "fail", "value": 2.0, "message": "own = 2", "time": "t"},
    ]
    text = V.render_status(body(rollout={**ROLLING, "checks": checks, "analysisBlocked": None}), now=NOW)
    assert "mat/slo@3" in text and "inline" in text and "own: own = 2" in text
    text = V.render_status(
        body(rollout={**ROLLING, "analysisBlocked": "ModelAnalysisTemplate slo not found"}), now=NOW
    )
    assert "Waiting: ModelAnalysisTemplate slo not found" in text


def test_the_status_view_counts_analysis_runs_not_checks():
    """One run whose two checks erred is one error run (what errorLimit counts): the line must
    not read as a count of checks (it said `Checks: ... 1 errors` above two checks in error)."""
    checks = [
        {"metric": m, "verdict": "error", "message": "Prometheus at p unreachable", "time": "t"}
        for m in ("p99", "errors")
    ]
    counts = {"passes": 0, "failures": 0, "errors": 1, "inconclusives": 0}
    text = V.render_status(body(rollout={**ROLLING, "checks": checks, "counts": counts}), now=NOW)
    assert "Analysis runs: 0 passed, 0 failed, 1 error, 0 inconclusive" in text
    assert "Checks:" not in text


STEPS_SPEC = {
    "mode": "online",
    "model": {"name": "iris", "version": "2.0.0", "image": "reg/iris:2"},
    "rollout": {"steps": [{"setWeight": 10, "pause": "2m"}, {"setWeight": 50, "pause": "5m"}]},
}


@pytest.mark.parametrize(
    ("started", "analysis", "shown"),
    [
        (None, False, "Step 2 of 2: 50%, waiting for the weight to be live on ready canary pods"),
        ("2026-12-06T11:58:30Z", False, "Step 2 of 2: 50%, pause ends 2026-12-06T12:03:30Z (in 3m30s)"),
        ("2026-12-06T11:50:00Z", False, "Step 2 of 2: 50%, pause over: moving on"),
        (
            "2026-12-06T11:50:00Z",
            True,
            "Step 2 of 2: 50%, pause over: moves on once the latest analysis passes",
        ),
    ],
)
def test_the_status_view_says_when_the_steps_pause_ends(started, analysis, shown):
    spec = STEPS_SPEC
    if analysis:
        checks = [{"name": "p99", "template": "latency-p99", "max": 0.5}]
        prometheus = {"address": "http://127.0.0.1:9090"}
        spec = {
            **spec,
            "rollout": {**spec["rollout"], "analysis": {"prometheus": prometheus, "metrics": checks}},
        }
    md = {**body(rollout={**ROLLING, "stepStartedAt": started}), "spec": spec}
    lines = V.render_status(md, now=NOW).splitlines()
    assert lines[lines.index(shown) - 1].startswith("Rollout of 2.0.0 (from 1.0.0): Progressing, step 2")


def test_no_step_line_once_the_rollout_is_not_progressing_or_the_spec_does_not_parse():
    paused = {**body(rollout={**ROLLING, "phase": "Paused"}), "spec": STEPS_SPEC}
    broken = {**body(rollout=ROLLING), "spec": {**STEPS_SPEC, "mode": "sideways"}}
    assert all("Step " not in V.render_status(md, now=NOW) for md in (paused, broken))


class FakeWatchKube:
    """get() answers the scripted bodies in turn (the last one from then on); each watch() call
    yields the next scripted list of events."""

    def __init__(self, first, streams, later=()):
        self.bodies, self.streams, self.calls = [first, *later], list(streams), []

    def get(self, kind, namespace, name):
        return self.bodies.pop(0) if len(self.bodies) > 1 else self.bodies[0]

    def watch(self, kind, namespace, *, name, resource_version, timeout_seconds):
        self.calls.append((name, resource_version, timeout_seconds))
        yield from self.streams.pop(0) if self.streams else []


def event(kind, b, version):
    return {"type": kind, "object": {**b, "metadata": {**b["metadata"], "resourceVersion": version}}}


def test_watch_redraws_on_every_change_and_ends_with_the_rollout():
    from modelrollout.cli.watch import watch

    rolling = body(rollout=ROLLING)
    step2 = body(rollout={**ROLLING, "step": 1, "desiredWeight": 50})
    done = body(rollout={**ROLLING, "phase": "Succeeded"}, phase="Ready")
    neighbour = {**done, "metadata": {**done["metadata"], "name": "other"}}
    kube = FakeWatchKube(
        rolling,
        [
            [event("ADDED", rolling, "7"), event("MODIFIED", neighbour, "8")],  # replayed; a neighbour
            [event("MODIFIED", step2, "9"), event("MODIFIED", done, "10"), event("MODIFIED", step2, "11")],
        ],
    )
    frames = []
    code = watch(kube, "ml", "iris", draw=frames.append, timeout=600)
    assert code == 0
    assert [f["status"]["rollout"]["phase"] for f in frames] == ["Progressing", "Progressing", "Succeeded"]
    assert [c[1] for c in kube.calls] == ["7", "7"]  # resumes from the last version it drew


def test_watch_exits_1_on_a_rollback_or_deletion():
    from modelrollout.cli.watch import watch

    rolling = body(rollout=ROLLING)
    back = body(rollout={**ROLLING, "phase": "RolledBack"}, phase="RolledBack")
    assert (
        watch(
            FakeWatchKube(rolling, [[event("MODIFIED", back, "8")]]),
            "ml",
            "iris",
            draw=lambda b: None,
            timeout=60,
        )
        == 1
    )
    gone = FakeWatchKube(rolling, [[event("DELETED", rolling, "8")]])
    assert watch(gone, "ml", "iris", draw=lambda b: None, timeout=60) == 1


def test_watch_starts_over_when_its_version_expired():
    from modelrollout.cli.watch import watch

    rolling = body(rollout=ROLLING)
    done = body(rollout={**ROLLING, "phase": "Succeeded"}, phase="Ready")
    kube = FakeWatchKube(rolling, [[{"type": "ERROR", "object": {"code": 410}}]], later=[done])
    frames = []
    assert watch(kube, "ml", "iris", draw=frames.append, timeout=60) == 0
    assert frames == [rolling, done]  # read afresh after the expired watch


def test_watch_is_bounded_by_its_timeout():
    from modelrollout.cli.watch import watch

    now = [0.0]

    def clock():
        now[0] += 20.0
        return now[0]

    kube = FakeWatchKube(body(rollout=ROLLING), [])
    assert watch(kube, "ml", "iris", draw=lambda b: None, timeout=100, clock=clock) == 2
    assert 1 <= len(kube.calls) <= 5 and all(t <= 100 for _, _, t in kube.calls)


def test_screen_redraws_a_terminal_and_appends_to_a_pipe():
    import io

    from modelrollout.cli.watch import CLEAR, Screen

    pipe = io.StringIO()
    Screen(pipe).show("frame")
    assert pipe.getvalue() == "frame\n\n"

    class Tty(io.StringIO):
        def isatty(self):
            return True

    tty = Tty()
    Screen(tty).show("frame")
    assert tty.getvalue() == CLEAR + "frame\n"


def test_ctrl_c_ends_a_watch_with_130(monkeypatch):
    from modelrollout.cli import status_cmd

    class Interrupted(FakeWatchKube):
        def watch(self, *args, **kwargs):
            raise KeyboardInterrupt
            yield  # pragma: no cover - a generator

    monkeypatch.setattr(status_cmd, "connect", lambda args: (Interrupted(body(rollout=ROLLING), []), "ml"))
    assert main(["status", "iris", "--watch"], prog="modelrollout") == 130


def test_an_unusable_kubeconfig_is_a_clear_error_not_a_fallback(tmp_path, monkeypatch):
    monkeypatch.delenv("MODELROLLOUT_KUBE_SERVER", raising=False)
    with pytest.raises(SystemExit, match="error: cannot use the kubeconfig"):
        main(["status", "iris", "--kubeconfig", str(tmp_path / "missing")], prog="modelrollout")
    config = tmp_path / "config"
    config.write_text(
        "apiVersion: v1\nkind: Config\nclusters: [{name: c, cluster: {server: 'https://127.0.0.1:1'}}]\n"
        "users: [{name: u, user: {token: t}}]\ncontexts: [{name: dev, context: {cluster: c, user: u}}]\n"
        "current-context: dev\n"
    )
    with pytest.raises(SystemExit, match="context 'prod' not found"):
        main(["--context", "prod", "status", "iris", "--kubeconfig", str(config)], prog="modelrollout")
