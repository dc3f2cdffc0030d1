"""Moved: the rollout commands are `status_cmd.py` (status, list) and `request_cmd.py` (promote,
abort, retry, undo, pause, resume), the view is `status_view.py`. This name stays for code that
imports `render_status` from here (bentos/demo_canary.py)."""

from modelrollout.cli.status_view import render_status

__all__ = ["render_status"]
