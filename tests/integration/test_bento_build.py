"""`bentoml build` of bentos/iris works offline and yields a self-contained bento that serves."""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys

import pytest
import yaml

from tests.integration.bentoproc import (
    IRIS_DIR,
    SETOSA_ROW,
    BentoSpec,
    base_env,
    bento_factory,  # noqa: F401  (fixture)
    iris_store,  # noqa: F401  (fixture)
)

pytestmark = pytest.mark.integration

BENTO_VERSION = "itest"
# Any attempt to reach a package index fails fast instead of silently succeeding online.
OFFLINE_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "PIP_NO_INDEX": "1",
    "UV_OFFLINE": "1",
}


def uv_available() -> bool:
    return shutil.which("uv") is not None or importlib.util.find_spec("uv") is not None


@pytest.fixture(scope="module")
def built(iris_store):  # noqa: F811
    if not uv_available():
        pytest.skip(
            "`uv` is not installed: bentoml build runs `pip install uv` first, which needs the network"
        )
    env = base_env(
        BENTOML_HOME=str(iris_store.home), MODELROLLOUT_MODEL_TAG=iris_store.tag("v1"), **OFFLINE_ENV
    )
    result = subprocess.run(
        [sys.executable, str(IRIS_DIR / "build_bento.py"), "--version", BENTO_VERSION],
        env=env,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert result.returncode == 0, f"{result.stdout}\n{result.stderr}"
    tag = result.stdout.strip().splitlines()[-1]
    return tag, iris_store.home / "bentos" / "iris" / BENTO_VERSION


def test_build_prints_the_bento_tag_and_references_the_chosen_model(built):
    tag, path = built
    assert tag == f"iris:{BENTO_VERSION}"
    info = yaml.safe_load((path / "bento.yaml").read_text())
    assert info["service"] == "service:IrisClassifier"
    assert [m["tag"] for m in info["services"][0]["models"]] == ["iris-classifier:v1"]
    assert info["services"][0]["config"]["workers"] == 1


def test_bento_carries_the_runtime_but_nothing_of_the_operator(built):
    _, path = built
    src = path / "src"
    assert (src / "service.py").is_file()
    for module in (
        "config",
        "requestid",
        "ground_truth/writer",
        "ground_truth/feedback",
        "metrics",
        "serving",
    ):
        assert (src / "modelrollout" / "runtime" / f"{module}.py").is_file(), module
    assert sorted(p.name for p in (src / "modelrollout").iterdir()) == ["__init__.py", "py.typed", "runtime"]
    assert not list(src.rglob("__pycache__"))


def test_requirements_are_unlocked_and_name_the_serving_dependencies(built):
    _, path = built
    requirements = (path / "env" / "python" / "requirements.txt").read_text()
    for package in ("scikit-learn", "numpy", "pydantic", "prometheus-client", "bentoml=="):
        assert package in requirements
    assert not (path / "env" / "python" / "requirements.lock.txt").exists()
    assert (path / "env" / "docker" / "Dockerfile").is_file()


def test_bento_sources_import_their_own_runtime_copy(built):
    _, path = built
    src = path / "src"
    result = subprocess.run(
        [sys.executable, "-c", "import modelrollout.runtime.serving as m; print(m.__file__)"],
        cwd=src,
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert result.stdout.strip().startswith(str(src))


def test_built_bento_serves_predictions(built, iris_store, bento_factory):  # noqa: F811
    tag, _ = built
    (server,) = bento_factory(BentoSpec(iris_store, "v1", bento=tag))
    response = server.post("/predict", json={"rows": [SETOSA_ROW]})
    assert response.status_code == 200
    assert response.json()["predictions"] == ["setosa"]
    assert response.json()["version"] == "v1"
