"""Static and hybrid serving of the iris bento: the real batch runner CLI, then ``/lookup`` on ``bentoml serve``.

Servers (started together, before anything is published, sharing one SQLite store): ``batch``
(lookup only), ``hybrid`` (lookup, then the model), ``online`` (``/lookup`` disabled) and
``unreachable`` (batch mode against a PostgreSQL port nobody listens on). The batch runs are
``modelrollout-batch run --predictor batch:predictor`` subprocesses, as the operator's CronJob
runs them; the servers pick each published run up without a restart. The last test runs the
runner through the wrapper a built bento ships, in the layout of its container image.

Tests build on each other in file order (nothing published, first run, lookups, second run);
counters accumulate, so metric assertions compare before/after values.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.integration.batchrun import RUN_TIMEOUT_S, run_batch, write_input
from tests.integration.bentobuild import (
    bento_wheel,
    bentoml_build,
    run,
    runtime_wheel,
    site_packages,
    uv_available,
    wheel_python,
)
from tests.integration.bentoproc import (
    IRIS_DIR,
    SETOSA_ROW,
    VIRGINICA_ROW,
    BentoServer,
    BentoSpec,
    base_env,
    bento_servers,
    feedback_headers,
    iris_store,  # noqa: F401  (fixture)
)
from tests.support.waiting import wait_until

pytestmark = pytest.mark.integration

TABLE = "iris"
SAMPLE_INPUT = IRIS_DIR / "data" / "iris-input.csv"
PICKUP_TIMEOUT_S = 20.0  # the lookup service re-reads the published version every 5 s
NEW_KEY = 175  # not in the sample input (ids 1..150); in the second run's input (ids 1..200)
LABELS = {"model": "iris-classifier", "version": "v1", "track": "stable"}
SECRET = "sekret-pw"


def lookup(server: BentoServer, keys, rows=None, **headers):
    body = {"keys": keys} if rows is None else {"keys": keys, "rows": rows}
    return server.post("/lookup", json=body, headers=headers)


@pytest.fixture(scope="module")
def db_url(tmp_path_factory) -> str:
    return f"sqlite:///{tmp_path_factory.mktemp('lookup-store')}/predictions.sqlite"


@pytest.fixture(scope="module")
def servers(iris_store, db_url, tmp_path_factory):  # noqa: F811
    lookup_env = {"MODELROLLOUT_STORE_DSN": db_url, "MODELROLLOUT_TABLE": TABLE}
    specs = {
        "batch": BentoSpec(iris_store, "v1", env={**lookup_env, "MODELROLLOUT_MODE": "batch"}),
        "hybrid": BentoSpec(iris_store, "v1", env={**lookup_env, "MODELROLLOUT_MODE": "hybrid"}),
        "online": BentoSpec(iris_store, "v1", env={**lookup_env, "MODELROLLOUT_MODE": "online"}),
        "unreachable": BentoSpec(iris_store, "v1", env={
            "MODELROLLOUT_MODE": "batch", "MODELROLLOUT_TABLE": TABLE,
            "MODELROLLOUT_STORE_DSN": f"postgresql://modelrollout:{SECRET}@127.0.0.1:9/predictions?connect_timeout=2",
            "MODELROLLOUT_STORE_UNREADY_AFTER_S": "3600",  # stays in rotation for this module's checks
        }),
    }  # fmt: skip
    with bento_servers(list(specs.values()), workdir=tmp_path_factory.mktemp("lookup-bentos")) as running:
        yield dict(zip(specs, running, strict=True))


@pytest.fixture(scope="module")
def first_run(servers, iris_store, db_url) -> dict:  # noqa: F811
    """Run r1 on the sample input; the servers were started before it (nothing was published)."""
    report = run_batch(iris_store, db_url, run_id="r1", input_path=SAMPLE_INPUT)
    for name in ("batch", "hybrid"):
        server = servers[name]
        wait_until(
            lambda server=server: lookup(server, [1]).status_code == 200,
            timeout=PICKUP_TIMEOUT_S,
            what=f"{name}: r1",
        )
    return report


def test_before_any_batch_run_the_server_is_ready_and_says_nothing_is_published(servers):
    batch = servers["batch"]
    assert batch.get("/readyz").status_code == 200
    response = lookup(batch, [1, 2])
    assert response.status_code == 404
    body = response.json()
    assert body["mode"] == "batch" and [a["found"] for a in body["answers"]] == [False, False]
    for answer in body["answers"]:
        assert answer["message"].startswith("no published predictions yet")
        assert "'iris'" in answer["message"]
    assert batch.post("/predict", json={"rows": [SETOSA_ROW]}).json()["predictions"] == ["setosa"]


def test_the_runner_publishes_the_sample_input_and_reports_it(first_run):
    assert first_run["status"] == "published" and first_run["run_id"] == "r1"
    assert first_run["rows_in"] == first_run["rows_written"] == 150
    assert first_run["published"]["model_version"] == "1.0.0"
    assert first_run["verification"]["passed"] is True


def test_batch_mode_answers_every_published_key_as_the_model_would(servers, first_run):
    batch = servers["batch"]
    lines = SAMPLE_INPUT.read_text().splitlines()[1:]
    ids = [int(line.split(",")[0]) for line in lines]
    rows = [[float(x) for x in line.split(",")[1:]] for line in lines]
    response = lookup(batch, ids)
    assert response.status_code == 200
    answers = response.json()["answers"]
    online = batch.post("/predict", json={"rows": rows}).json()["predictions"]
    assert [a["prediction"] for a in answers] == online  # precomputed = what the model says now
    assert {(a["found"], a["source"], a["run_id"], a["model_version"]) for a in answers} == {
        (True, "lookup", "r1", "1.0.0")
    }
    assert [a["key"] for a in answers] == ids


def test_keys_may_be_scalars_strings_or_objects_and_unknown_keys_say_so(servers, first_run):
    batch = servers["batch"]
    response = lookup(batch, [1, "150", {"id": 51}, NEW_KEY, {"user": 1}])
    assert response.status_code == 200
    answers = response.json()["answers"]
    assert [a["found"] for a in answers] == [True, True, True, False, False]
    assert answers[0]["prediction"] == "setosa" and answers[2]["key"] == {"id": 51}
    unknown, wrong_shape = answers[3], answers[4]
    assert unknown["prediction"] is None and unknown["source"] is None
    assert unknown["message"] == f"key {NEW_KEY} is not in table 'iris' (run r1)"
    assert "lacks column(s) ['id']" in wrong_shape["message"]


def test_batch_mode_is_a_404_with_the_answers_when_no_key_is_known(servers, first_run):
    response = lookup(servers["batch"], [NEW_KEY, "nope"])
    assert response.status_code == 404
    assert [a["found"] for a in response.json()["answers"]] == [False, False]
    assert all("not in table 'iris'" in a["message"] for a in response.json()["answers"])


def test_hits_and_misses_are_counted_and_answers_count_as_lookup_predictions(servers, first_run):
    batch = servers["batch"]
    hits0 = batch.metric("modelrollout_lookup_total", result="hit")
    misses0 = batch.metric("modelrollout_lookup_total", result="miss")
    rows0 = batch.metric("modelrollout_predictions_total", **LABELS, path="lookup")
    assert lookup(batch, [1, 2, 3, NEW_KEY]).status_code == 200
    assert batch.metric("modelrollout_lookup_total", result="hit") - hits0 == 3
    assert batch.metric("modelrollout_lookup_total", result="miss") - misses0 == 1
    assert batch.metric("modelrollout_predictions_total", **LABELS, path="lookup") - rows0 == 3
    assert batch.metric("modelrollout_lookup_duration_seconds_count", path="lookup") >= 1


def test_feedback_joins_lookup_answers_and_ignores_unanswered_keys(servers, first_run, db_url):
    batch = servers["batch"]
    response = lookup(batch, [NEW_KEY, 1], **{"X-Request-ID": "lookup-fb-1"})
    request_id = response.headers["X-Request-ID"]
    assert request_id == response.json()["request_id"] != "lookup-fb-1"
    predicted = response.json()["answers"][1]["prediction"]
    accepted0 = batch.metric("modelrollout_labels_total", outcome="accepted")
    verdict = batch.post("/feedback", json={"request_id": request_id, "row": 1, "label": predicted},
                         headers=feedback_headers())  # fmt: skip
    assert (
        verdict.status_code == 200 and verdict.json()["outcome"] == "accepted" and verdict.json()["correct"]
    )
    assert batch.metric("modelrollout_labels_total", outcome="accepted") - accepted0 == 1
    unanswered = batch.post("/feedback", json={"request_id": request_id, "row": 0, "label": "setosa"},
                            headers=feedback_headers())  # fmt: skip
    assert unanswered.status_code == 404 and unanswered.json()["outcome"] == "unknown_request"
    from modelrollout.runtime.store.factory import open_log_store

    with open_log_store(db_url, wait_timeout_s=5.0) as store:  # the log shares the batch store here
        _, chunks = store.iter_query(
            f"SELECT \"key\", prediction, client_request_id FROM modelrollout_predictions WHERE request_id = '{request_id}'",
            chunk_rows=10,
        )  # fmt: skip
        assert [tuple(r) for c in chunks for r in c] == [("1", predicted, "lookup-fb-1")]


def test_hybrid_mode_answers_misses_with_rows_from_the_model(servers, first_run):
    hybrid = servers["hybrid"]
    model0 = hybrid.metric("modelrollout_predictions_total", **LABELS, path="model")
    lookup0 = hybrid.metric("modelrollout_predictions_total", **LABELS, path="lookup")
    misses0 = hybrid.metric("modelrollout_lookup_total", result="miss")
    response = lookup(hybrid, [1, NEW_KEY], rows=[SETOSA_ROW, VIRGINICA_ROW])
    assert response.status_code == 200
    hit, miss = response.json()["answers"]
    assert (hit["source"], hit["run_id"], hit["model_version"]) == ("lookup", "r1", "1.0.0")
    assert (miss["found"], miss["source"], miss["prediction"]) == (True, "model", "virginica")
    assert miss["model_version"] == "v1" and miss["run_id"] is None
    assert hybrid.metric("modelrollout_predictions_total", **LABELS, path="model") - model0 == 1
    assert hybrid.metric("modelrollout_predictions_total", **LABELS, path="lookup") - lookup0 == 1
    assert hybrid.metric("modelrollout_lookup_total", result="miss") - misses0 == 1

    without_rows = lookup(hybrid, [NEW_KEY])
    assert without_rows.status_code == 404
    assert "no features were given" in without_rows.json()["answers"][0]["message"]
    mismatch = lookup(hybrid, [1, 2], rows=[SETOSA_ROW])
    assert mismatch.status_code == 400 and "1 rows for 2 keys" in mismatch.json()["message"]


def test_a_new_batch_run_is_served_without_a_restart(servers, iris_store, db_url, first_run, tmp_path):  # noqa: F811
    batch = servers["batch"]
    pid = batch.process.pid
    report = run_batch(iris_store, db_url, run_id="r2", input_path=write_input(tmp_path / "in.csv", rows=200))
    assert report["status"] == "published" and report["rows_written"] == 200

    def served_by_r2() -> bool:
        answer = lookup(batch, [NEW_KEY]).json()["answers"][0]
        return answer["found"] and answer["run_id"] == "r2"

    wait_until(served_by_r2, timeout=PICKUP_TIMEOUT_S, what=f"key {NEW_KEY} answered from r2")
    assert lookup(batch, [1]).json()["answers"][0]["run_id"] == "r2"
    assert batch.process.pid == pid and batch.process.poll() is None


def test_online_mode_rejects_lookups(servers):
    online = servers["online"]
    response = lookup(online, [1])
    assert response.status_code == 400
    assert response.json()["message"] == "lookup serving is not enabled (MODELROLLOUT_MODE=online)"
    assert response.json()["answers"] == []
    assert online.post("/predict", json={"rows": [SETOSA_ROW]}).status_code == 200


def test_an_unreachable_store_is_a_503_that_names_no_password(servers):
    server = servers["unreachable"]
    assert server.get("/readyz").status_code == 200  # started anyway; /predict keeps working
    response = lookup(server, [1])
    assert response.status_code == 503
    assert response.json()["message"].startswith("prediction store unavailable")
    assert SECRET not in response.text
    assert server.post("/predict", json={"rows": [SETOSA_ROW]}).status_code == 200


def test_a_built_bento_runs_the_batch_runner_as_its_image_would(iris_store, tmp_path):  # noqa: F811
    """Build the bento (plain ``bentoml build``; the runtime comes from its wheel), lay it out as
    ``bentoml containerize`` does (``$BENTO_PATH/src``, the models in ``$BENTO_PATH/models``, an
    empty ``$BENTOML_HOME``, the wheel installed in the image's Python) and run the CronJob's
    command through the wrapper the image puts in place of ``modelrollout-batch``, with the
    operator's environment."""
    if not uv_available():
        pytest.skip(
            "`uv` is not installed: bentoml build runs `pip install uv` first, which needs the network"
        )
    runtime_wheel()
    bentoml_build(
        IRIS_DIR, home=iris_store.home, version="lookup-itest", MODELROLLOUT_MODEL_TAG=iris_store.tag("v1")
    )
    built = iris_store.home / "bentos" / "iris" / "lookup-itest"
    info = yaml.safe_load((built / "bento.yaml").read_text())
    assert info["docker"]["setup_script"] == "setup-image.sh"
    # python.wheels makes it a BentoML "v1" image: install.sh (requirements, then the wheel), then the script
    dockerfile = (built / "env" / "docker" / "Dockerfile").read_text()
    assert dockerfile.index("env/python/install.sh") < dockerfile.index(
        "RUN /home/bentoml/bento/env/docker/setup_script"
    )
    requirements = (built / "env" / "python" / "requirements.txt").read_text()
    assert "pyarrow" in requirements and "psycopg[binary]" in requirements
    assert not (built / "src" / "modelrollout").exists()  # the runtime is the wheel's, not a copy
    python = wheel_python(bento_wheel(built), tmp_path, site=site_packages())

    bento_path = tmp_path / "bento"
    shutil.copytree(built, bento_path)
    models = bento_path / "models" / "iris-classifier"
    shutil.copytree(iris_store.home / "models" / "iris-classifier" / "v1", models / "v1")
    (models / "latest").write_text("v1")
    wrapper = bento_path / "src" / "bin" / "modelrollout-batch"
    assert os.access(wrapper, os.X_OK)
    # the image's setup script (after the packages): the wheel's console script becomes the wrapper
    console_script = python.parent / "modelrollout-batch"
    assert console_script.is_file() and not console_script.is_symlink()
    setup = bento_path / "env" / "docker" / "setup_script"
    run(
        [str(setup)],
        env={"PATH": f"{python.parent}:/usr/bin:/bin", "BENTO_PATH": str(bento_path)},
        timeout=30,
    )
    assert console_script.resolve() == wrapper.resolve()
    (tmp_path / "home").mkdir()
    env = base_env(
        PATH=f"{python.parent}{os.pathsep}{os.environ.get('PATH', '')}",  # the image's python: the wheel's runtime
        HOME=str(tmp_path / "home"), BENTOML_HOME=str(tmp_path / "home"), BENTO_PATH=str(bento_path),
        BENTOML_CONTAINERIZED="true", MODELROLLOUT_MODEL_TAG="iris:1.0.0", MODELROLLOUT_RUN_ID="iris-batch-29000000",
        MODELROLLOUT_TABLE="iris_batch", MODELROLLOUT_STORE_DSN=f"sqlite:///{tmp_path}/data/predictions.sqlite",
    )  # fmt: skip
    env.pop("PYTHONPATH", None)
    args = ["run", "--key-columns", "id", "--report-file", str(tmp_path / "termination-log"),
            "--model-version", "1.0.0", "--input", str(bento_path / "src" / "data" / "iris-input.csv"),
            "--format", "csv", "--predictor", "batch:predictor"]  # fmt: skip
    result = subprocess.run(  # the CronJob's command, found on the image's PATH
        ["modelrollout-batch", *args],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=RUN_TIMEOUT_S,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    report = json.loads((tmp_path / "termination-log").read_text())
    assert report["status"] == "published" and report["rows_written"] == 150
    assert report["run_id"] == "iris-batch-29000000" and report["model_version"] == "1.0.0"
    assert "using iris-classifier:latest" in result.stderr  # the deployment's model name is not a store name


# --- the bento's pure pieces (no server) -----------------------------------------------------------


def bento_module(name: str):
    """Import ``bentos/iris/<name>.py`` under a private name (``batch`` is too generic for sys.modules)."""
    import importlib.util

    qualified = f"iris_bento_{name}"
    if qualified not in sys.modules:  # dataclasses look their module up in sys.modules
        spec = importlib.util.spec_from_file_location(qualified, IRIS_DIR / f"{name}.py")
        sys.modules[qualified] = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(sys.modules[qualified])
    return sys.modules[qualified]


@pytest.mark.parametrize(
    ("environ", "problem"),
    [
        (
            {"MODELROLLOUT_MODE": "static"},
            "MODELROLLOUT_MODE='static': expected one of online, batch, hybrid",
        ),
        ({"MODELROLLOUT_MODE": "batch"}, "MODELROLLOUT_TABLE is required with MODELROLLOUT_MODE=batch"),
        (
            {"MODELROLLOUT_MODE": "hybrid", "MODELROLLOUT_TABLE": "Iris-Table"},
            "MODELROLLOUT_TABLE='Iris-Table'",
        ),
    ],
)
def test_a_bad_lookup_environment_is_refused_naming_the_variable(environ, problem):
    from modelrollout.runtime.config import ConfigError

    with pytest.raises(ConfigError, match="invalid serving environment") as error:
        bento_module("lookup_api").LookupSettings.from_env(environ)
    assert problem in str(error.value)


def test_lookup_settings_default_to_online_and_the_runners_store():
    settings = bento_module("lookup_api").LookupSettings.from_env({})
    assert (settings.mode, settings.table) == ("online", None)
    assert settings.store_url == "sqlite:///modelrollout-predictions.sqlite"


def test_the_batch_predictor_uses_the_requested_model_or_the_served_one_when_the_name_is_unknown():
    resolve = bento_module("batch").resolve_tag
    known = {"iris-classifier"}
    assert resolve("iris-classifier:v2", known_names=known) == "iris-classifier:v2"
    assert resolve("iris:1.0.0", known_names=known) == "iris-classifier:latest"  # the operator's name:version
    assert resolve(None, known_names=known) == "iris-classifier:latest"
