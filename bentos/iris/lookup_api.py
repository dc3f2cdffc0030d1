"""``/lookup`` of the iris bento: static (batch) and hybrid serving from a published prediction table.

What the operator sets on serving pods (see ``operator/modelrollout/render/batch.py``):

``MODELROLLOUT_MODE``       ``online`` (default: ``/lookup`` answers 400), ``batch`` (table only) or
                            ``hybrid`` (table first, the model for keys the table lacks).
``MODELROLLOUT_STORE_DSN``  the prediction store: ``sqlite:////data/predictions.sqlite`` or a
                            PostgreSQL DSN (default: the runner's, a SQLite file in the working dir).
``MODELROLLOUT_TABLE``      the logical prediction table the batch runner publishes (required in
                            batch and hybrid mode).

A lookup key is what a row's key columns hold: a scalar (an integer or a string) for a one-column
key such as the sample's ``id``, or an object ``{"column": value, ...}`` naming every key column of
a composite key. ``"42"`` finds the integer key 42 (keys come from JSON, often as strings).

Bookkeeping is the runtime's, so feedback and accuracy work for lookups as for ``/predict``: every
answered key is a logged prediction (``/feedback`` with the lookup's request id and the key's index
as ``row``) and counts in ``modelrollout_predictions_total{path="lookup"|"model"}``; an unanswered
key is logged as unanswered, so feedback for it is ``unknown_request``, never an "incorrect".
:class:`modelrollout.runtime.lookup.LookupService` adds ``modelrollout_lookup_total{result}``.
"""

from __future__ import annotations

import logging
import sqlite3
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from modelrollout.runtime.config import ConfigError
from modelrollout.runtime.lookup import Answer, LookupService
from modelrollout.runtime.prediction_log import FeedbackVerdict, InMemoryPredictionLog, Origin
from modelrollout.runtime.serving import ServingRuntime
from modelrollout.runtime.store.base import PublishedVersion
from modelrollout.runtime.store.factory import open_store, redact, resolve_store_url
from modelrollout.runtime.store.naming import InvalidName, StoreError, validate_table_name

log = logging.getLogger("bentoml.iris.lookup")

ServingMode = Literal["online", "batch", "hybrid"]
MODES: tuple[ServingMode, ...] = ("online", "batch", "hybrid")
MODE_ENV, STORE_ENV, TABLE_ENV = "MODELROLLOUT_MODE", "MODELROLLOUT_STORE_DSN", "MODELROLLOUT_TABLE"
NOT_ENABLED = "lookup serving is not enabled (MODELROLLOUT_MODE=online)"
NOTHING_PUBLISHED = "no published predictions yet"

KeyPart = StrictInt | Annotated[StrictStr, Field(min_length=1, max_length=256)]
LookupKey = (
    KeyPart
    | Annotated[dict[Annotated[StrictStr, Field(max_length=63)], KeyPart], Field(min_length=1, max_length=8)]
)


class LookupAnswer(BaseModel):
    key: LookupKey
    found: bool
    prediction: str | int | float | bool | None = None
    source: Literal["lookup", "model"] | None = None
    model_version: str | None = None
    run_id: str | None = None
    message: str | None = None


class LookupResponse(BaseModel):
    request_id: str
    mode: ServingMode
    answers: list[LookupAnswer]
    model: str
    version: str
    track: str
    message: str | None = None


@dataclass(frozen=True)
class LookupSettings:
    mode: ServingMode
    store_url: str
    table: str | None

    @classmethod
    def from_env(cls, environ: Mapping[str, str]) -> LookupSettings:
        """Parse the three variables; a bad value stops the server with a message naming it."""
        mode = environ.get(MODE_ENV, "").strip() or "online"
        if mode not in MODES:
            raise ConfigError(
                f"invalid serving environment: {MODE_ENV}={mode!r}: expected one of {', '.join(MODES)}"
            )
        table = environ.get(TABLE_ENV, "").strip() or None
        if mode != "online":
            if table is None:
                raise ConfigError(
                    f"invalid serving environment: {TABLE_ENV} is required with {MODE_ENV}={mode}"
                )
            try:
                validate_table_name(table)
            except InvalidName as exc:
                raise ConfigError(f"invalid serving environment: {TABLE_ENV}={table!r}: {exc}") from None
        store_url = resolve_store_url(environ.get(STORE_ENV, "").strip() or None, environ={})
        return cls(mode=mode, store_url=store_url, table=table)  # type: ignore[arg-type]


class UnansweredRowsLog:
    """The runtime's in-memory prediction log, plus rows a lookup could not answer (label ``None``).

    Keeping unanswered keys as rows keeps ``row`` = the key's index in the request for feedback;
    judging one reports ``unknown_request`` (no prediction was made) instead of comparing with None.
    """

    def __init__(self, *, capacity: int) -> None:
        self.inner = InMemoryPredictionLog(capacity=capacity)

    def record(self, request_id: str, labels: Sequence[str | None], *, origin: Origin) -> None:
        self.inner.record(request_id, labels, origin=origin)  # type: ignore[arg-type]

    def judge(self, request_id: str, *, row: int, actual: str) -> FeedbackVerdict:
        verdict = self.inner.judge(request_id, row=row, actual=actual)
        if verdict.outcome != "unknown_request" and verdict.predicted is None:
            return FeedbackVerdict(outcome="unknown_request")
        return verdict


def open_lookup(
    settings: LookupSettings, *, model: Any, model_version: str
) -> tuple[LookupService | None, str]:
    """The lookup service for ``settings`` (None in online mode) and a line describing its state.

    Never fails because of the store's contents or reachability: a table nothing was published to
    yet, or a database that is down, is what each lookup then reports, so the server still starts
    (and serves ``/predict``) and picks the table up once a batch run publishes it.
    """
    if settings.mode == "online":
        return None, "lookup serving disabled (MODELROLLOUT_MODE=online)"
    store = open_store(settings.store_url)
    service = LookupService(
        store,
        settings.table or "",
        mode=settings.mode,
        model=model if settings.mode == "hybrid" else None,
        model_version=model_version,
    )
    where = f"mode={settings.mode} table={settings.table} store={redact(settings.store_url)}"
    try:
        version = service.version()
    except Exception as exc:  # noqa: BLE001 - reported per request until the store answers
        return service, f"lookup serving {where}: store not reachable yet ({type(exc).__name__}: {exc})"
    if version is None:
        return service, f"lookup serving {where}: {NOTHING_PUBLISHED}"
    return (
        service,
        f"lookup serving {where}: run {version.run_id} ({version.rows} rows, model {version.model_version})",
    )


def answer_all(
    service: LookupService, keys: Sequence[Any], rows: Sequence[Sequence[float]] | None
) -> list[LookupAnswer]:
    """Look every key up (hybrid: misses with rows go to the model); blocking, run it in a thread."""
    published = service.version()
    answers = service.lookup(keys, rows if service.mode == "hybrid" else None)
    return [to_wire(answer, published=published) for answer in answers]


def to_wire(answer: Answer, *, published: PublishedVersion | None) -> LookupAnswer:
    message = answer.message
    if not answer.found and published is None:
        message = f"{NOTHING_PUBLISHED}: {message}" if message else NOTHING_PUBLISHED
    return LookupAnswer(
        key=answer.key,
        found=answer.found,
        prediction=answer.prediction,
        source=answer.source,
        model_version=answer.model_version,
        run_id=answer.run_id,
        message=message,
    )


def record(runtime: ServingRuntime, request_id: str, answers: Sequence[LookupAnswer]) -> None:
    """Log the answers for the feedback join and count them by path (unanswered keys count nowhere)."""
    for path in ("lookup", "model"):
        runtime.metrics.count_predictions(
            runtime.origin, path=path, rows=sum(1 for a in answers if a.found and a.source == path)
        )
    labels = [str(a.prediction) if a.found else None for a in answers]
    runtime.log.record(request_id, labels, origin=runtime.origin)  # type: ignore[arg-type]


def http_status(answers: Sequence[LookupAnswer]) -> int:
    """200 when at least one key was answered, 404 when none was (the body still says why, per key)."""
    return 200 if any(a.found for a in answers) else 404


def failure(exc: Exception) -> tuple[int, str]:
    """(HTTP status, message) for a lookup that raised: 503 when the store could not be read (the
    DSN's password never appears: drivers do not echo it), 500 for anything else (a bug, not an outage).
    """
    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, StoreError):
        return 503, f"prediction store error: {text}"
    if isinstance(exc, (sqlite3.Error, OSError)) or type(exc).__module__.startswith("psycopg"):
        return 503, f"prediction store unavailable: {text}"
    return 500, f"lookup failed: {type(exc).__name__}: {text}"
