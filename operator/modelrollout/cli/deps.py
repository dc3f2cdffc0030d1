"""The operator's own dependencies: the `operator` extra of the package.

`pip install modelrollout` is the data plane only (`modelrollout.runtime`, what a bento lists in
its bentofile.yaml); the operator and this CLI need kopf, the Kubernetes client, the Prometheus
client and YAML on top: `pip install 'modelrollout[operator]'`. Without
them every command would fail somewhere deep with a bare ModuleNotFoundError; `main()` checks
first and names the command that fixes it. The list below is the `operator` extra of
pyproject.toml (a unit test keeps the two equal).
"""

from __future__ import annotations

import importlib.util
from collections.abc import Callable
from typing import Any

INSTALL_HINT = "pip install 'modelrollout[operator]'"
# distribution name (as in pyproject.toml's `operator` extra) -> the module it provides
OPERATOR_MODULES: dict[str, str] = {
    "kopf": "kopf",
    "kubernetes": "kubernetes",
    "prometheus-api-client": "prometheus_api_client",
    "pyyaml": "yaml",
}


def missing_operator_modules(find_spec: Callable[[str], Any] = importlib.util.find_spec) -> list[str]:
    """The distributions of the `operator` extra whose module cannot be found (nothing is imported)."""
    missing = []
    for distribution, module in OPERATOR_MODULES.items():
        try:
            found = find_spec(module) is not None
        except (ImportError, ValueError):  # a blocked or half-installed module counts as missing
            found = False
        if not found:
            missing.append(distribution)
    return missing


def missing_message(missing: list[str]) -> str:
    return (
        f"error: the modelrollout command needs the operator's dependencies, and {', '.join(missing)} "
        f"{'is' if len(missing) == 1 else 'are'} not installed (this is the data-plane install "
        f"that bentos use). Install them with:\n    {INSTALL_HINT}"
    )
