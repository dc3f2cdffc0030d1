"""Plain `bentoml build bentos/iris` works offline: the bento carries the runtime as the modelrollout
wheel (no copy of its sources), and serves with the runtime installed from that wheel."""

from __future__ import annotations

import subprocess
import zipfile

import pytest
import yaml

from tests.integration.bentobuild import (
    WHEEL_NAME,
    bento_wheel,
    bentoml_build,
    runtime_wheel,
    site_packages,
    uv_available,
    wheel_python,
)
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
BASE_REQUIREMENTS = ("pydantic", "prometheus-client", "numpy", "pyarrow", "psycopg[binary]")


@pytest.fixture(scope="module")
def built(iris_store, tmp_path_factory):  # noqa: F811
    if not uv_available():
        pytest.skip(
            "`uv` is not installed: bentoml build runs `pip install uv` first, which needs the network"
        )
    runtime_wheel()
    tag = bentoml_build(
        IRIS_DIR, home=iris_store.home, version=BENTO_VERSION, MODELROLLOUT_MODEL_TAG=iris_store.tag("v1")
    )
    path = iris_store.home / "bentos" / "iris" / BENTO_VERSION
    return (
        tag,
        path,
        wheel_python(bento_wheel(path), tmp_path_factory.mktemp("iris-wheel-env"), site=site_packages()),
    )


def test_build_prints_the_bento_tag_and_references_the_chosen_model(built):
    tag, path, _ = built
    assert tag == f"iris:{BENTO_VERSION}"
    info = yaml.safe_load((path / "bento.yaml").read_text())
    assert info["service"] == "service:IrisClassifier"
    assert [m["tag"] for m in info["services"][0]["models"]] == ["iris-classifier:v1"]
    config = info["services"][0]["config"]
    assert config["workers"] == 1
    assert config["metrics"]["duration"]["buckets"][0] == 0.001  # instrument()'s default, recorded at build


def test_bento_carries_the_runtime_as_its_wheel_not_as_sources(built):
    _, path, _ = built
    src = path / "src"
    assert (src / "service.py").is_file() and (src / "lookup_api.py").is_file()
    assert not (src / "modelrollout").exists()
    assert not list(src.rglob("__pycache__"))
    wheels = sorted(p.name for p in (path / "env" / "python" / "wheels").iterdir())
    assert wheels == [WHEEL_NAME]
    with zipfile.ZipFile(path / "env" / "python" / "wheels" / WHEEL_NAME) as wheel:
        names = set(wheel.namelist())
        metadata = wheel.read(next(n for n in names if n.endswith(".dist-info/METADATA"))).decode()
    for module in ("bento/mixin", "bento/wiring", "requestid", "ground_truth/writer", "serving", "batch/cli"):
        assert f"modelrollout/runtime/{module}.py" in names, module
    requires = [
        line.split(":", 1)[1].strip() for line in metadata.splitlines() if line.startswith("Requires-Dist:")
    ]
    base = [r for r in requires if "extra ==" not in r]
    assert sorted(r.split("<")[0].split(">")[0] for r in base) == sorted(BASE_REQUIREMENTS)
    assert any(r.startswith("kopf") and 'extra == "operator"' in r for r in requires)


def test_requirements_are_unlocked_and_name_the_runtime_and_model_dependencies(built):
    _, path, _ = built
    requirements = (path / "env" / "python" / "requirements.txt").read_text()
    for package in ("scikit-learn", *BASE_REQUIREMENTS, "bentoml=="):
        assert package in requirements
    assert "kopf" not in requirements and "kubernetes" not in requirements
    assert not (path / "env" / "python" / "requirements.lock.txt").exists()
    dockerfile = (path / "env" / "docker" / "Dockerfile").read_text()
    assert "install.sh" in dockerfile  # which installs requirements.txt, then env/python/wheels/*.whl
    install = (path / "env" / "python" / "install.sh").read_text()
    assert 'WHEELS_DIR="$BASEDIR/wheels"' in install and "wheels=($WHEELS_DIR/*.whl)" in install


def test_the_wheel_environment_imports_the_runtime_from_the_wheel_only(built):
    _, path, python = built
    code = "import modelrollout.runtime.bento as m, sys; print(m.__file__); print('\\n'.join(sys.path))"
    result = subprocess.run(
        [str(python), "-c", code],
        cwd=path / "src",
        env=base_env(),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    where, *path_entries = result.stdout.splitlines()
    assert where.startswith(str(python.parent.parent)) and "/site-packages/modelrollout/" in where
    assert not any(entry.endswith("/operator") for entry in path_entries)  # not this checkout's sources


def test_built_bento_serves_with_the_runtime_from_its_wheel(built, iris_store, bento_factory):  # noqa: F811
    tag, _, python = built
    (server,) = bento_factory(BentoSpec(iris_store, "v1", bento=tag, python=str(python)))
    assert server.get("/readyz").status_code == 200
    response = server.post("/predict", json={"rows": [SETOSA_ROW]})
    assert response.status_code == 200
    assert response.json()["predictions"] == ["setosa"]
    assert response.json()["version"] == "v1"
    assert response.headers["x-request-id"] == response.json()["request_id"]
    assert server.metric("modelrollout_predictions_total", version="v1", path="model") == 1
