"""Log lines a client can neither forge nor flood, optionally as JSON lines.

What a client controls ends up in logs: the URL path (percent-decoded, so ``%0A`` is a real
newline), header values, keys, the text of its validation errors. Three guards:

- :class:`EscapingFilter` (on every handler) renders each message and escapes control characters
  (``\\n`` -> ``\\\\n``, ``\\x1b`` -> ``\\\\x1b``), so one record is always one line and no terminal
  escape reaches a console. Tracebacks of our own errors keep their lines.
- :class:`ClientErrorFilter` (on the loggers where BentoML and uvicorn report refused requests):
  BentoML logs every validation 400 at ERROR with a ~25-line traceback; a client's mistake is not
  our error, so it becomes one INFO line without traceback, and at most ``rate`` per second
  (:class:`TokenBucket`; the next line says how many were dropped).
- :class:`RateLimitedLog` for our own log sites a client's traffic can trigger.

``MODELROLLOUT_LOG_FORMAT=json`` swaps the formatter of every handler for
:class:`JsonLinesFormatter`: one JSON object per line (``time``, ``level``, ``logger``,
``message``, ``component``, and ``exception`` with the traceback when there is one).
"""

from __future__ import annotations

import json
import logging
import re
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

# C0 and C1 controls, DEL, and the Unicode line/paragraph separators some viewers break lines on.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_NAMED = {"\n": "\\n", "\r": "\\r", "\t": "\\t"}
BURST = 10
# Where BentoML (log_exception of its HTTP app) and uvicorn (malformed HTTP) report refused requests.
CLIENT_ERROR_LOGGERS = ("bentoml._internal.server.http_app", "uvicorn.error")
_SUMMARY_CHARS = 300


def escape_control(text: str) -> str:
    """``text`` with every control character written as an escape sequence (one line, printable)."""
    return _CONTROL.sub(_escape_one, text)


def _escape_one(match: re.Match[str]) -> str:
    char = match.group()
    if char in _NAMED:
        return _NAMED[char]
    return f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}"


class TokenBucket:
    """``rate`` tokens per second, at most ``burst`` saved up; :meth:`take` spends one if there is one."""

    def __init__(self, *, rate: float, burst: float = BURST, clock: Callable[[], float] = time.monotonic):
        if rate <= 0 or burst < 1:
            raise ValueError(f"need rate > 0 and burst >= 1, got rate={rate}, burst={burst}")
        self.rate, self.burst, self._clock = rate, float(burst), clock
        self._tokens = float(burst)
        self._updated = clock()
        self._lock = threading.Lock()

    def take(self) -> bool:
        with self._lock:
            now = self._clock()
            self._tokens = min(self.burst, self._tokens + (now - self._updated) * self.rate)
            self._updated = now
            if self._tokens >= 1.0:
                self._tokens -= 1.0
                return True
            return False


class _Site:
    """A token bucket plus the count of lines it refused since the last one it let through."""

    def __init__(self, bucket: TokenBucket) -> None:
        self.bucket = bucket
        self.suppressed = 0
        self._lock = threading.Lock()

    def admit(self) -> int | None:
        """None when the line must be dropped, else how many were dropped before it."""
        with self._lock:
            if not self.bucket.take():
                self.suppressed += 1
                return None
            dropped, self.suppressed = self.suppressed, 0
            return dropped


def _suffix(dropped: int) -> str:
    return f" ({dropped} similar lines suppressed)" if dropped else ""


class RateLimitedLog:
    """One log site a client can trigger: at most ``rate`` lines per second, bursts of ``burst``."""

    def __init__(self, logger: logging.Logger, *, rate: float = 1.0, burst: float = BURST,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        self.logger = logger
        self._site = _Site(TokenBucket(rate=rate, burst=burst, clock=clock))

    def log(self, level: int, msg: str, *args: Any) -> bool:
        """Log ``msg % args`` unless over the rate; True when the line was written."""
        if not self.logger.isEnabledFor(level):
            return False
        dropped = self._site.admit()
        if dropped is None:
            return False
        self.logger.log(level, msg + _suffix(dropped), *args)
        return True


class EscapingFilter(logging.Filter):
    """Handler filter: render the message once and escape its control characters."""

    def filter(self, record: logging.LogRecord) -> bool:
        message = escape_control(record.getMessage())
        record.msg, record.args = message, None
        return True


def client_error_status(exc: BaseException | None) -> int | None:
    """The 4xx a logged exception stands for (a refused request), or None for a real error."""
    if exc is None:
        return None
    from pydantic import ValidationError

    if isinstance(exc, ValidationError):
        return 400
    code = getattr(getattr(exc, "error_code", None), "value", None)  # BentoMLException
    if isinstance(code, int) and 400 <= code < 500:
        return code
    if type(exc).__module__.startswith(("h11", "httptools")):  # uvicorn: malformed HTTP
        return 400
    return None


def summarize(exc: BaseException) -> str:
    """One short line saying what was wrong with the request (no input values)."""
    errors = getattr(exc, "errors", None)
    if callable(errors):
        try:
            items = errors(include_url=False, include_input=False, include_context=False)
        except TypeError:
            items = []
        parts = [
            f"{'.'.join(str(p) for p in e.get('loc', ())) or '(body)'}: {e.get('msg')}" for e in items[:3]
        ]
        more = f" (+{len(items) - 3} more)" if len(items) > 3 else ""
        text = f"{len(items)} validation error(s): " + "; ".join(parts) + more
    else:
        text = f"{type(exc).__name__}: {exc}"
    return text if len(text) <= _SUMMARY_CHARS else text[: _SUMMARY_CHARS - 3] + "..."


class ClientErrorFilter(logging.Filter):
    """Logger filter: a refused request is one rate-limited INFO line without traceback."""

    def __init__(self, *, rate: float, burst: float = BURST, clock: Callable[[], float] = time.monotonic):
        super().__init__()
        self._site = _Site(TokenBucket(rate=rate, burst=burst, clock=clock))

    def filter(self, record: logging.LogRecord) -> bool:
        exc = record.exc_info[1] if record.exc_info else None
        status = client_error_status(exc)
        if status is None:
            return True
        dropped = self._site.admit()
        if dropped is None:
            return False
        where = record.getMessage().removeprefix("Exception on ")
        record.msg = "client error %s: %s: %s%s"
        record.args = (status, where, summarize(exc), _suffix(dropped))  # type: ignore[arg-type]
        record.levelno, record.levelname = logging.INFO, "INFO"
        record.exc_info, record.exc_text, record.stack_info = None, None, None
        return True


class JsonLinesFormatter(logging.Formatter):
    """One JSON object per record; control characters and non-ASCII come out escaped by JSON."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        component = getattr(record, "component", None)
        if component:
            entry["component"] = str(component).strip("[]")
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


def install(*, json_lines: bool, client_errors_per_s: float) -> None:
    """Put the guards on every handler and client-error logger configured so far (idempotent).

    Called at import of a bento's service module: BentoML has configured its server logging by
    then, in every worker.
    """
    loggers = [logging.getLogger(), *(v for v in logging.root.manager.loggerDict.values()
                                      if isinstance(v, logging.Logger))]  # fmt: skip
    for handler in {h for lg in loggers for h in lg.handlers}:
        if not any(isinstance(f, EscapingFilter) for f in handler.filters):
            handler.addFilter(EscapingFilter())
        if json_lines and not isinstance(handler.formatter, JsonLinesFormatter):
            handler.setFormatter(JsonLinesFormatter())
    # The runtime's own INFO lines (the table version served, a replaced store file) must reach
    # BentoML's handlers: its root logger only passes WARNING and up.
    runtime_logger = logging.getLogger("modelrollout")
    if runtime_logger.level == logging.NOTSET or runtime_logger.level > logging.INFO:
        runtime_logger.setLevel(logging.INFO)
    for name in CLIENT_ERROR_LOGGERS:
        logger = logging.getLogger(name)
        if not any(isinstance(f, ClientErrorFilter) for f in logger.filters):
            logger.addFilter(ClientErrorFilter(rate=client_errors_per_s))
