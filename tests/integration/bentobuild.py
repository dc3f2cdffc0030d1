"""Build bentos as their README says, and run them on the runtime from their own wheel.

- :func:`runtime_wheel`: what ``make wheel`` does (``pip wheel --no-deps --no-build-isolation``
  into ``dist/``, from a clean ``build/``), once per session: a bento's bentofile.yaml lists
  ``../../dist/modelrollout-<version>-py3-none-any.whl``.
- :func:`bentoml_build`: plain ``bentoml build bentos/<name>`` from the repository root (BentoML
  refuses files outside its working directory, and the wheel is outside the bento's folder),
  offline: any attempt to reach a package index fails fast.
- :func:`wheel_python`: a virtualenv holding only a modelrollout wheel (:func:`bento_wheel`: the one
  a built bento carries in ``env/python/wheels``, installed as the image's ``install.sh`` does), with the other
  packages visible through a ``.pth`` line (``site``: this venv's site-packages, or a directory with
  only some of them). A ``.pth`` line adds a directory without processing the ``.pth`` files in it,
  so the editable install of this checkout is not visible there: ``import modelrollout`` finds
  the wheel's copy or nothing.
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
import sysconfig
import tomllib
from pathlib import Path

from tests.integration.bentoproc import REPO_ROOT, base_env

DIST = REPO_ROOT / "dist"
VERSION = tomllib.loads((REPO_ROOT / "pyproject.toml").read_text())["project"]["version"]
WHEEL_NAME = f"modelrollout-{VERSION}-py3-none-any.whl"
BUILD_TIMEOUT_S = 180
# Any attempt to reach a package index fails fast instead of silently succeeding online.
OFFLINE_ENV = {
    "HTTP_PROXY": "http://127.0.0.1:9",
    "HTTPS_PROXY": "http://127.0.0.1:9",
    "ALL_PROXY": "http://127.0.0.1:9",
    "PIP_NO_INDEX": "1",
    "UV_OFFLINE": "1",
}
_built: dict[str, Path] = {}


def uv_available() -> bool:
    """bentoml build runs `pip install uv` first unless uv is there (which needs the network)."""
    return (
        shutil.which("uv") is not None
        or Path(sys.executable).with_name("uv").exists()
        or importlib.util.find_spec("uv") is not None
    )


def run(cmd: list[str], **kwargs) -> subprocess.CompletedProcess:
    result = subprocess.run(cmd, capture_output=True, text=True, check=False, **kwargs)
    assert result.returncode == 0, f"{cmd} failed ({result.returncode}):\n{result.stdout}\n{result.stderr}"
    return result


def runtime_wheel() -> Path:
    """``make wheel``: the package's wheel in dist/, built once per session from this checkout."""
    if "wheel" not in _built:
        shutil.rmtree(REPO_ROOT / "build", ignore_errors=True)
        run(
            [sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation", ".", "-w", str(DIST)],
            cwd=REPO_ROOT, env=base_env(**OFFLINE_ENV), timeout=BUILD_TIMEOUT_S,
        )  # fmt: skip
        _built["wheel"] = DIST / WHEEL_NAME
    assert _built["wheel"].is_file(), f"no {WHEEL_NAME} in {DIST}"
    return _built["wheel"]


def bentoml_build(bento_dir: Path, *, home: Path, version: str, **env: str) -> str:
    """Plain ``bentoml build <bento_dir>`` from the repository root; returns the bento tag."""
    result = run(
        [sys.executable, "-m", "bentoml", "build", str(bento_dir.relative_to(REPO_ROOT)),
         "--version", version, "--output", "tag"],
        cwd=REPO_ROOT, env=base_env(BENTOML_HOME=str(home), **OFFLINE_ENV, **env), timeout=BUILD_TIMEOUT_S,
    )  # fmt: skip
    # `--output tag` prints e.g. "__tag__:iris:abc123" on its own line.
    tags = [line.split("__tag__:", 1)[1].strip() for line in result.stdout.splitlines() if "__tag__:" in line]
    assert tags, f"bentoml build printed no tag:\n{result.stdout}\n{result.stderr}"
    return tags[-1]


def site_packages() -> Path:
    """This interpreter's site-packages (every installed dependency)."""
    return Path(sysconfig.get_paths()["purelib"])


def bento_wheel(built: Path) -> Path:
    """The modelrollout wheel a built bento carries (``env/python/wheels``)."""
    wheels = sorted((built / "env" / "python" / "wheels").glob("modelrollout-*.whl"))
    assert len(wheels) == 1, f"the bento carries {wheels}, not one modelrollout wheel"
    return wheels[0]


def wheel_python(wheel: Path, workdir: Path, *, site: Path | None) -> Path:
    """A virtualenv with ``wheel`` installed (no dependencies) and ``site`` on its path; its python."""
    venv = workdir / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)], timeout=60)
    python = venv / "bin" / "python"
    run(
        [sys.executable, "-m", "pip", "--python", str(python), "install", "-q", "--no-deps", "--no-index", str(wheel)],
        env=base_env(**OFFLINE_ENV), timeout=120,
    )  # fmt: skip
    if site is not None:
        purelib = run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"], timeout=30
        )
        (Path(purelib.stdout.strip()) / "_deps.pth").write_text(f"{site}\n")
    return python
