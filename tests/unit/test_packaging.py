"""The package's two installs: the base (the data plane bentos list as a wheel) and the `operator`
extra; the CLI names the extra when it is missing; the example bentos list the wheel this
checkout builds and the runtime's requirements."""

from __future__ import annotations

import tomllib
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from modelrollout.cli import deps
from modelrollout.cli import main as cli_main

ROOT = Path(__file__).resolve().parents[2]
PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
BENTOS = ("iris", "churn")


def names(requirements: list[str]) -> set[str]:
    return {canonicalize_name(Requirement(r).name) for r in requirements}


def test_the_operator_extra_is_what_the_cli_checks_for():
    assert names(PROJECT["optional-dependencies"]["operator"]) == set(deps.OPERATOR_MODULES)


def test_the_base_install_has_none_of_the_operator_dependencies():
    base = names(PROJECT["dependencies"])
    assert base == {"pydantic", "prometheus-client", "numpy", "pyarrow", "psycopg"}
    assert not base & set(deps.OPERATOR_MODULES) and "bentoml" not in base


def test_the_dev_extra_installs_everything_ci_needs():
    dev = PROJECT["optional-dependencies"]["dev"]
    assert any(r.startswith("modelrollout[") and "operator" in r and "serving" in r for r in dev)


def test_the_operator_image_installs_the_operator_extra():
    dockerfile = (ROOT / "operator" / "Dockerfile").read_text()
    assert 'pip install --no-cache-dir -c constraints.txt ".[operator]"' in dockerfile


@pytest.mark.parametrize("bento", BENTOS)
def test_a_bentofile_lists_the_wheel_of_this_version_and_the_runtime_requirements(bento):
    bentofile = yaml.safe_load((ROOT / "bentos" / bento / "bentofile.yaml").read_text())
    python = bentofile["python"]
    assert python["wheels"] == [f"../../dist/modelrollout-{PROJECT['version']}-py3-none-any.whl"]
    assert python["lock_packages"] is False
    listed = {str(Requirement(r)) for r in python["packages"]}
    assert {str(Requirement(r)) for r in PROJECT["dependencies"]} <= listed
    assert not any(
        path.startswith("modelrollout") for path in bentofile.get("include", [])
    )  # no vendored copy


def test_a_missing_operator_module_is_reported_by_its_distribution_name():
    present = {"kopf", "kubernetes", "tzdata"}

    def find_spec(module: str):
        if module == "yaml":
            raise ValueError("yaml.__spec__ is None")  # blocked or half installed
        return object() if module in present else None

    assert deps.missing_operator_modules(find_spec) == ["prometheus-api-client", "pyyaml"]
    assert deps.missing_operator_modules() == []  # this venv has the dev extra


def test_the_cli_without_the_operator_extra_says_which_pip_command_fixes_it(monkeypatch, capsys):
    monkeypatch.setattr(cli_main, "missing_operator_modules", lambda: ["kopf", "kubernetes"])
    assert cli_main.main(["status", "iris"]) == 1
    out, err = capsys.readouterr()
    assert out == ""
    assert "kopf, kubernetes are not installed" in err
    assert "pip install 'modelrollout[operator]'" in err
