"""The runtime is imported inside bentos: no operator dependencies, and prometheus_client lazily."""

from __future__ import annotations

import json
import subprocess
import sys

MODULES = [
    "modelrollout.runtime",
    "modelrollout.runtime.config",
    "modelrollout.runtime.requestid",
    "modelrollout.runtime.ground_truth",
    "modelrollout.runtime.ground_truth.records",
    "modelrollout.runtime.ground_truth.settings",
    "modelrollout.runtime.ground_truth.metrics",
    "modelrollout.runtime.ground_truth.figures",
    "modelrollout.runtime.ground_truth.writer",
    "modelrollout.runtime.ground_truth.exporter",
    "modelrollout.runtime.ground_truth.feedback",
    "modelrollout.runtime.ground_truth.serving",
    "modelrollout.runtime.faults",
    "modelrollout.runtime.metrics",
    "modelrollout.runtime.serving",
    "modelrollout.runtime.guard",
    "modelrollout.runtime.logsafe",
    "modelrollout.runtime.openapi",
    "modelrollout.runtime.routes",
    "modelrollout.runtime.storecalls",
    "modelrollout.runtime.lookup",
    "modelrollout.runtime.lookup_metrics",
]


def test_runtime_modules_import_neither_kopf_kubernetes_bentoml_nor_prometheus_client():
    """prometheus_client must wait until BentoML set PROMETHEUS_MULTIPROC_DIR in the worker."""
    code = (
        "import importlib, json, sys\n"
        f"for m in {MODULES!r}: importlib.import_module(m)\n"
        "print(json.dumps(sorted(k for k in sys.modules if k.split('.')[0] in "
        "('kopf', 'kubernetes', 'bentoml', 'prometheus_client'))))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == []


def test_the_bento_glue_imports_bentoml_but_neither_the_operator_nor_prometheus_client():
    """`modelrollout.runtime.bento` is imported by a service module, before BentoML's worker set
    PROMETHEUS_MULTIPROC_DIR: a prometheus_client imported then would hide the runtime's metrics."""
    code = (
        "import json, sys\n"
        "import modelrollout.runtime.bento\n"
        "print(json.dumps(sorted({k.split('.')[0] for k in sys.modules} & "
        "{'kopf', 'kubernetes', 'bentoml', 'prometheus_client'})))\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True
    )
    assert json.loads(result.stdout) == ["bentoml"]
