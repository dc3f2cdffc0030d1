"""`modelrollout operator --log-format json`: every log line is a JSON object (kopf's formatter)."""

from __future__ import annotations

import json
import logging

import pytest


@pytest.fixture
def restore_root_logger():
    root = logging.getLogger()
    handlers, level = list(root.handlers), root.level
    yield
    root.handlers[:] = handlers
    root.setLevel(level)


def test_json_log_lines_parse(capsys, restore_root_logger):
    from modelrollout import handlers

    handlers.configure_logging(log_format="json", verbose=False)
    logging.getLogger("modelrollout.handlers").warning("reconcile of %s failed: %s", "iris", "503: busy")
    lines = [line for line in capsys.readouterr().err.splitlines() if line.strip()]
    assert lines, "nothing was logged"
    record = json.loads(lines[-1])
    assert record["message"] == "reconcile of iris failed: 503: busy"
    assert (
        record["severity"] == "warn" or record.get("levelname") == "WARNING" or "warn" in json.dumps(record)
    )


def test_plain_logs_are_text(capsys, restore_root_logger):
    from modelrollout import handlers

    logging.getLogger().handlers[:] = []  # basicConfig only configures an unconfigured root
    handlers.configure_logging(log_format="plain", verbose=False)
    logging.getLogger("modelrollout.handlers").warning("hello %s", "world")
    err = capsys.readouterr().err
    assert "WARNING modelrollout.handlers: hello world" in err
