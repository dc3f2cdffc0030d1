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
a composite key. ``"42"`` finds the integer key 42 (keys come from JSON, often as strings), but only
written in canonical ASCII digits within 64 bits: ``" 42"``, ``"042"``, ``"٤٢"`` or 2**63 are not a
key of an integer column, and that one key is answered with ``status`` 400 while the others are
answered as usual.

Store calls run on their own bounded pool with a deadline (``modelrollout.runtime.storecalls``):
when the store is down or slow, hybrid mode answers every key that came with a feature row from
the model (``modelrollout_lookup_fallback_total``), batch mode answers 503.

Bookkeeping is the runtime's, so labels and accuracy work for lookups as for ``/predict``: every
answered key is a logged prediction, with its key (``/feedback`` with the lookup's request id and
the key's index as ``row``, or ``modelrollout-batch labels import --by key``) and counts in
``modelrollout_predictions_total{path="lookup"|"model"}``; an unanswered key is not logged, so a
label for it is ``unknown_request``, never an "incorrect".
:class:`modelrollout.runtime.lookup.LookupService` adds ``modelrollout_lookup_total{result}``.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Literal

from pydantic import BaseModel, Field, StrictInt, StrictStr

from modelrollout.runtime.config import ConfigError
from modelrollout.runtime.logsafe import RateLimitedLog
from modelrollout.runtime.lookup import Answer, LookupService, overall_status
from modelrollout.runtime.serving import ServingRuntime
from modelrollout.runtime.store.base import PublishedVersion
from modelrollout.runtime.store.factory import open_store, redact, resolve_store_url
from modelrollout.runtime.store.naming import InvalidName, validate_table_name
from modelrollout.runtime.storecalls import StoreCalls, StoreUnavailable

log = logging.getLogger("bentoml.iris.lookup")
store_failures = RateLimitedLog(log, rate=0.2)

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
    status: Literal[200, 400, 404, 503] = Field(
        description="this key's own outcome: 200 answered, 400 cannot be a key of the table, "
        "404 not in the table (and no model answer), 503 the prediction store could not be asked"
    )


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


def open_lookup(
    settings: LookupSettings, *, model: Any, model_version: str, wait_timeout_s: float
) -> tuple[LookupService | None, str]:
    """The lookup service for ``settings`` (None in online mode) and a line describing its state.

    Never fails because of the store's contents or reachability: a table nothing was published to
    yet, or a database that is down, is what each lookup then reports, so the server still starts
    (and serves ``/predict``) and picks the table up once a batch run publishes it. The store is
    opened for serving: no statement waits longer than ``wait_timeout_s`` for a lock.
    """
    if settings.mode == "online":
        return None, "lookup serving disabled (MODELROLLOUT_MODE=online)"
    store = open_store(settings.store_url, wait_timeout_s=wait_timeout_s)
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
    return service, f"lookup serving {where}: run {version.run_id} ({version.rows} rows, model {version.model_version})"  # fmt: skip


async def answer_all(
    service: LookupService, calls: StoreCalls, keys: Sequence[Any], rows: Sequence[Sequence[float]] | None
) -> list[LookupAnswer]:
    """Every key's answer: the store on its own pool (with a deadline), the model on the model's
    threads (hybrid misses, or every key with a row when the store could not be asked)."""
    try:
        found, failure = await calls.run(service.find, keys), None
    except StoreUnavailable as exc:
        found, failure = None, exc
        store_failures.log(logging.WARNING, "lookup in %s without the store: %s", service.table, exc)
    features = rows if service.mode == "hybrid" else None
    indices = service.model_rows(keys, found, features)
    predicted = await asyncio.to_thread(service.predict, features, indices) if indices else {}
    answers = service.answers(keys, found, predicted, failure=failure)
    published = found.version if found is not None else service.cached_version()
    return [to_wire(answer, published=published) for answer in answers]


def to_wire(answer: Answer, *, published: PublishedVersion | None) -> LookupAnswer:
    message = answer.message
    if answer.status == 404 and published is None:
        message = f"{NOTHING_PUBLISHED}: {message}" if message else NOTHING_PUBLISHED
    return LookupAnswer(
        key=answer.key,
        found=answer.found,
        prediction=answer.prediction,
        source=answer.source,
        model_version=answer.model_version,
        run_id=answer.run_id,
        message=message,
        status=answer.status,
    )


def record(
    runtime: ServingRuntime,
    request_id: str,
    answers: Sequence[LookupAnswer],
    *,
    client_request_id: str | None,
) -> None:
    """Log the answers (with their keys) for the ground-truth join and count them by path
    (unanswered keys are neither logged nor counted)."""
    for path in ("lookup", "model"):
        runtime.metrics.count_predictions(
            runtime.origin, path=path, rows=sum(1 for a in answers if a.found and a.source == path)
        )
    predictions = [a.prediction if a.found and a.prediction is not None else None for a in answers]
    runtime.log_predictions(
        request_id, predictions, keys=[a.key for a in answers], client_request_id=client_request_id
    )


def http_status(answers: Sequence[LookupAnswer]) -> int:
    """200 when any key was answered; else 503 (the store's fault), 404 (not found), 400 (all malformed)."""
    return overall_status(answers)  # type: ignore[arg-type]
