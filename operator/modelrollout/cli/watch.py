"""`status --watch`: redraw the status whenever the object changes, through the API server's
watch (no polling). Bounded: it ends when the rollout does (`status_view.finished`), when the
object is deleted, after `--timeout`, or on Ctrl-C."""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from typing import Any, TextIO

from modelrollout.cli.status_view import exit_code, finished

CLEAR = "\x1b[H\x1b[2J"  # cursor home, clear screen
WATCH_CHUNK_SECONDS = 60  # one watch request at most this long; then it resumes where it was
EXPIRED = 410  # the resourceVersion is too old: read the object afresh


class Screen:
    """Where frames go: a terminal is cleared before each (a live view); a pipe or file gets
    every frame in turn, separated by a blank line."""

    def __init__(self, out: TextIO | None = None) -> None:
        self.out = out or sys.stdout  # the stdout of the moment (not of import time)
        self.live = self.out.isatty()

    def show(self, text: str) -> None:
        if self.live:
            self.out.write(CLEAR)
        self.out.write(text + "\n" + ("" if self.live else "\n"))
        self.out.flush()


def watch(
    kube,
    namespace: str,
    name: str,
    *,
    draw: Callable[[dict[str, Any]], None],
    timeout: float,
    clock: Callable[[], float] = time.monotonic,
) -> int:
    """Draw the object now and at every change until it is finished; the exit code: 0 ended
    well, 1 rolled back / failed / deleted / not found, 2 timed out."""
    from modelrollout.kube import kinds as K

    deadline = clock() + timeout
    body = kube.get(K.MODEL_DEPLOYMENT, namespace, name)
    if body is None:
        print(
            f"Error from server (NotFound): modeldeployments {name!r} not found in {namespace}",
            file=sys.stderr,
        )
        return 1
    draw(body)
    version = body["metadata"].get("resourceVersion")
    while not finished(body):
        remaining = deadline - clock()
        if remaining <= 0:
            print(f"timed out after {timeout:g}s; the rollout is still in progress", file=sys.stderr)
            return 2
        for event in kube.watch(
            K.MODEL_DEPLOYMENT,
            namespace,
            name=name,
            resource_version=version,
            timeout_seconds=max(1, int(min(remaining, WATCH_CHUNK_SECONDS))),
        ):
            obj = event.get("object") or {}
            if event.get("type") == "ERROR":
                version = None if obj.get("code") == EXPIRED else version
                break
            if (obj.get("metadata") or {}).get("name") != name:
                continue  # a server without field selectors sends its neighbours too
            if event.get("type") == "DELETED":
                print(f"modeldeployment {namespace}/{name} was deleted", file=sys.stderr)
                return 1
            if obj["metadata"].get("resourceVersion") != version:
                body, version = obj, obj["metadata"].get("resourceVersion")
                draw(body)
            if finished(body) or clock() >= deadline:
                break
        if version is None:  # expired: start over from the object as it is now
            body = kube.get(K.MODEL_DEPLOYMENT, namespace, name) or body
            version = body["metadata"].get("resourceVersion")
            draw(body)
    return exit_code(body)
