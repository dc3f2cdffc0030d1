"""Late ground truth, for the bake tests and the demo: labels a load generator kept back
(``LoadGenerator.hold_labels``), delivered later the two ways a deployment receives them -
through ``/feedback`` on another pod than the one that predicted (with the bearer token), or in
bulk with ``modelrollout-batch labels import`` from a CSV of request ids and labels, whose
``--now`` says when the import happens (hours after the predictions, as a warehouse load would).
"""

from __future__ import annotations

import csv
import json
import subprocess
import sys
import time
from collections.abc import Collection, Sequence
from dataclasses import dataclass
from pathlib import Path

import httpx

from tests.integration.bentoproc import base_env, feedback_headers
from tests.integration.loadgen import HeldLabel

UNKNOWN_RETRIES = 5  # a prediction reaches the shared log ~0.1 s after its answer
IMPORT_TIMEOUT_S = 60.0


@dataclass(frozen=True)
class Delivered:
    """One label sent through /feedback: where it went, and what that pod answered."""

    label: HeldLabel
    to: str  # the pod that received it (never the one that predicted)
    status: int
    body: dict


def predicted_by(held: Sequence[HeldLabel], urls: Collection[str]) -> list[HeldLabel]:
    """The labels of predictions these servers made (e.g. every pod of one version)."""
    return [h for h in held if h.url in urls]


def send_feedback(
    labels: Sequence[HeldLabel], *, pods: Sequence[str], token: str, timeout_s: float = 10.0
) -> list[Delivered]:
    """Each label to a pod of ``pods`` other than the one that predicted, in turn."""
    out = []
    with httpx.Client(timeout=timeout_s, trust_env=False) as client:
        for index, held in enumerate(labels):
            others = [p for p in pods if p != held.url]
            if not others:
                raise ValueError(f"no pod other than {held.url} to send the label to")
            to = others[index % len(others)]
            body = {"request_id": held.request_id, "row": 0, "label": held.label}
            for _ in range(UNKNOWN_RETRIES):
                answer = client.post(f"{to}/feedback", json=body, headers=feedback_headers(token))
                if answer.status_code != 404:
                    break
                time.sleep(0.2)
            out.append(Delivered(held, to, answer.status_code, answer.json()))
    return out


def write_csv(labels: Sequence[HeldLabel], path: Path) -> Path:
    """``request_id,row,label`` - the by-request-id format of ``labels import``."""
    with path.open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["request_id", "row", "label"])
        writer.writerows([h.request_id, 0, h.label] for h in labels)
    return path


def import_command(path: Path, *, store_url: str, now: float) -> list[str]:
    """The command line (after ``modelrollout-batch``) that imports ``path`` as of ``now``."""
    return ["labels", "import", "--input", str(path), "--by", "request_id", "--store", store_url,
            "--now", f"{now:.0f}"]  # fmt: skip


def import_labels(path: Path, *, store_url: str, now: float) -> dict:
    """Run ``modelrollout-batch labels import`` (a process of its own, as a Job would); its report."""
    argv = [
        sys.executable,
        "-m",
        "modelrollout.runtime.batch.cli",
        *import_command(path, store_url=store_url, now=now),
    ]
    result = subprocess.run(
        argv, env=base_env(), capture_output=True, text=True, timeout=IMPORT_TIMEOUT_S, check=False
    )  # fmt: skip
    lines = result.stdout.strip().splitlines()
    if result.returncode != 0 or not lines:
        raise RuntimeError(f"labels import exited {result.returncode}: {result.stdout}\n{result.stderr}")
    return json.loads(lines[-1])
