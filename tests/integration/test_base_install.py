"""``pip install modelrollout`` (no extra) is the data plane: the runtime and the batch runner work
with only the base requirements, and the operator's CLI names the extra it needs.

The environment is real, not simulated: a virtualenv with the wheel (``make wheel``) installed and,
on its path, a directory holding only the distributions the base requirements pull in (resolved
from pyproject.toml's ``project.dependencies`` through this venv's installed metadata) - no kopf,
no kubernetes, no bentoml.
"""

from __future__ import annotations

import importlib.metadata as md
import subprocess
import tomllib
from pathlib import Path

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.integration.bentobuild import runtime_wheel, wheel_python
from tests.integration.bentoproc import REPO_ROOT, base_env

pytestmark = pytest.mark.integration

BASE = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
# Every runtime module but the bento glue (which needs bentoml, the bento's own dependency).
IMPORT_RUNTIME = """
import importlib, pkgutil, modelrollout.runtime as rt
names = [m.name for m in pkgutil.walk_packages(rt.__path__, 'modelrollout.runtime.')
         if not m.name.startswith('modelrollout.runtime.bento')]
for name in names:
    importlib.import_module(name)
print(len(names), rt.__file__)
"""


def distributions(requirements: list[str]) -> dict[str, md.Distribution]:
    """The installed distributions ``requirements`` need, transitively (with the extras they ask for)."""
    found: dict[tuple[str, str], md.Distribution] = {}
    todo = [(Requirement(r), "") for r in requirements]
    while todo:
        req, extra = todo.pop()
        if req.marker is not None and not req.marker.evaluate({"extra": extra}):
            continue
        dist = md.distribution(req.name)
        for wanted in ("", *req.extras):
            if (canonicalize_name(req.name), wanted) not in found:
                found[canonicalize_name(req.name), wanted] = dist
                todo += [(Requirement(r), wanted) for r in dist.requires or []]
    return {name: dist for (name, _), dist in found.items()}


def link_only(dists: dict[str, md.Distribution], target: Path) -> Path:
    """A directory with symlinks to the top-level files of ``dists`` (packages, modules, dist-info)."""
    target.mkdir()
    for dist in dists.values():
        for top in {Path(str(f)).parts[0] for f in dist.files or []}:
            source = Path(str(dist.locate_file(top)))
            if source.exists() and not (target / top).exists() and ".." not in top and top != "bin":
                (target / top).symlink_to(source)
    return target


@pytest.fixture(scope="module")
def base_python(tmp_path_factory) -> Path:
    dists = distributions(BASE)
    assert {"pydantic", "numpy", "pyarrow", "psycopg", "prometheus-client"} <= set(dists)
    assert not {"kopf", "kubernetes", "bentoml", "pyyaml"} & set(dists)
    site = link_only(dists, tmp_path_factory.mktemp("base") / "site")
    return wheel_python(runtime_wheel(), tmp_path_factory.mktemp("base-env"), site=site)


def run(python: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [*args], capture_output=True, text=True, timeout=120, check=False, cwd=python.parent.parent,
        env=base_env(PATH=f"{python.parent}:/usr/bin:/bin"),
    )  # fmt: skip


def test_the_base_install_lacks_the_operator_dependencies(base_python):
    result = run(base_python, str(base_python), "-c", "import kopf")
    assert result.returncode != 0 and "No module named 'kopf'" in result.stderr


def test_every_runtime_module_imports_with_the_base_requirements_only(base_python):
    result = run(base_python, str(base_python), "-c", IMPORT_RUNTIME)
    assert result.returncode == 0, result.stderr
    count, where = result.stdout.split()
    assert int(count) > 40 and where.startswith(str(base_python.parent.parent))


def test_the_batch_runner_command_works_with_the_base_requirements_only(base_python):
    result = run(base_python, str(base_python.parent / "modelrollout-batch"), "--help")
    assert result.returncode == 0, result.stderr
    assert "labels" in result.stdout and "run" in result.stdout


def test_the_operator_cli_names_the_extra_it_needs(base_python):
    for command in (["status", "iris"], ["operator"], ["--help"]):
        result = run(base_python, str(base_python.parent / "modelrollout"), *command)
        assert result.returncode == 1, result.stdout
        assert "pip install 'modelrollout[operator]'" in result.stderr
        assert "kopf, kubernetes, prometheus-api-client, pyyaml" in result.stderr
        assert "Traceback" not in result.stderr and result.stdout == ""
    result = run(base_python, str(base_python.parent / "kubectl-modelrollout"), "list")
    assert result.returncode == 1 and "modelrollout[operator]" in result.stderr
