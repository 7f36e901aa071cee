"""The prediction log: one `prediction_logs` row per prediction call, whatever its outcome
(answers, cache hits, refusals, errors), for the usage analytics built on it.

Every transport wraps its call in `predictions.logged`, which calls `record` with the call's
Trace and its result or error. `record` turns them into a row and queues it; the process's
writer thread bulk-inserts the queue (prediction_log_writer.py), so the request never waits on
the database and never fails because of the log: `record` does not raise and does not block.

A row holds when, which transport, the model as asked and the version that answered (when
resolved), who called (user, API key; null when the credentials were refused), the status
("ok" or the error's code), the error kind ("client" for refusals, "server" when the platform
failed), the cache flag, time in the model host and in all, the row count, and per the
`prediction_log_payload` setting the input and output: nothing (`off`), `sha256:<hex>` of the
body as sent and of the answer's canonical JSON (`hashes`, the default), or the text itself
capped at `prediction_log_max_payload_bytes` and marked when cut (`full`).

Nothing is lost on a graceful stop: the web app flushes in its lifespan shutdown
(`flushed_at_shutdown`, registered by the composition root), and every process flushes at
exit. Rows are counted in Prometheus by outcome: written, dropped (the queue was full),
rejected (the database refused the row's content), unwritten (still queued when the process
exited with the database unreachable).
"""

from __future__ import annotations

import atexit
import hashlib
import json
import logging
import os
import threading
from contextlib import asynccontextmanager

from prometheus_client import Counter
from sqlalchemy import insert

from mlplatform import cache
from mlplatform.config import Settings, get_settings
from mlplatform.db import get_engine
from mlplatform.errors import MLPlatformError, ModelUnavailable, ServiceUnavailable
from mlplatform.models import MAX_LOGGED_NAME, PredictionLog
from mlplatform.services.prediction_log_writer import Writer

log = logging.getLogger(__name__)
ROWS = Counter("mlplatform_prediction_log_rows", "Prediction log rows by outcome", ["outcome"])
OUTCOMES = ("written", "dropped", "rejected", "unwritten")
for _outcome in OUTCOMES:
    ROWS.labels(_outcome)
SERVER_FAULTS = (ModelUnavailable, ServiceUnavailable)  # the platform failed, not the caller
SHUTDOWN_FLUSH_SECONDS = 10.0  # within the runner's 20 s stop timeout, with room for in-flight calls
_warn_dropped = cache.ThrottledLog(log)
_warn_failing = cache.ThrottledLog(log)
_warn_record = cache.ThrottledLog(log)
_writer: Writer | None = None
_writer_lock = threading.Lock()
_gave_up = False  # the process is exiting with rows the database would not take


def record(trace, *, result=None, error: BaseException | None = None) -> None:
    """Queues the log row of one call (`trace`: predictions.Trace; `result`: its
    PredictionResult, or `error`: what it raised). Never raises, never waits on the database."""
    try:
        row = build_row(trace, result, error, get_settings())
        if not _get_writer().add(row):
            ROWS.labels("dropped").inc()
            _warn_dropped.warning("prediction log queue full (%d rows): rows dropped",
                                  get_settings().prediction_log_queue_rows)
    except Exception as exc:  # noqa: BLE001  (the log must never fail a prediction)
        ROWS.labels("dropped").inc()
        _warn_record.warning("prediction log row not recorded: %r", exc)


def flush(timeout: float = SHUTDOWN_FLUSH_SECONDS) -> bool:
    """Writes this process's queued rows now; True once none wait (False if the database
    still failed when `timeout` ran out)."""
    writer = _writer
    return writer is None or writer.flush(timeout)


def pending() -> int:
    """Rows this process has queued and not yet written."""
    writer = _writer
    return 0 if writer is None else writer.pending()


@asynccontextmanager
async def flushed_at_shutdown(*_args, **_kwargs):
    """An ASGI lifespan (for Starlette's `lifespan=` or Reflex's `register_lifespan_task`)
    whose shutdown writes the queued rows. Flushing blocks the loop, on purpose: at that point
    the server takes no more requests and should not exit before the rows are in."""
    yield
    _flush_before_exit()


def build_row(trace, result, error: BaseException | None, settings: Settings) -> dict:
    status, error_kind = outcome(error)
    input_payload, output_payload = payloads(trace.body, result, error, status, settings)
    return {
        "at": trace.at,
        "source": trace.source[:8],
        "model_name": (trace.model or "")[:MAX_LOGGED_NAME],
        "model_id": trace.model_id,
        "version_id": trace.version_id,
        "version": trace.version,
        "user_id": trace.user_id,
        "api_key_id": trace.api_key_id,
        "status": status,
        "error_kind": error_kind,
        "cached": trace.cached,
        "model_ms": trace.timings.get("model", 0.0),
        "total_ms": trace.elapsed_ms(),
        "n_rows": trace.n_rows,
        "input_payload": input_payload,
        "output_payload": output_payload,
    }


def outcome(error: BaseException | None) -> tuple[str, str | None]:
    """(status, error kind): "ok"; a domain error's code, "client" for refusals and "server"
    for an unavailable model or service; "internal_error" for anything unexpected."""
    if error is None:
        return "ok", None
    if isinstance(error, MLPlatformError):
        return error.code[:64], "server" if isinstance(error, SERVER_FAULTS) else "client"
    return "internal_error", "server"


def payloads(body: bytes, result, error, status: str, settings: Settings) -> tuple[str | None, str | None]:
    """The input and output columns per the prediction_log_payload setting. An error's output is
    its code and message (kept in `full` only: the status column already has the code)."""
    mode = settings.prediction_log_payload
    if mode == "off":
        return None, None
    answer = None if result is None else canonical_json(answer_document(result))
    if mode == "hashes":
        return sha256_of(body), None if answer is None else sha256_of(answer)
    if answer is None and error is not None:
        message = error.message if isinstance(error, MLPlatformError) else None  # internals stay out
        answer = canonical_json({"error": {"code": status, "message": message}})
    cap = settings.prediction_log_max_payload_bytes
    return capped(body, cap), None if answer is None else capped(answer, cap)


def answer_document(result) -> dict:
    """What a caller got, whatever the transport: the predictions (and probabilities with their
    classes); the model and version have their own columns."""
    document = {"predictions": result.predictions}
    if result.probabilities is not None:
        document.update(probabilities=result.probabilities, classes=result.classes)
    return document


def canonical_json(document) -> bytes:
    return json.dumps(document, sort_keys=True, separators=(",", ":"), default=str).encode()


def sha256_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def capped(data: bytes, cap: int) -> str:
    """The bytes as text, at most `cap` of them, with a marker when cut. PostgreSQL text cannot
    hold NUL, so NUL (and undecodable bytes) become U+FFFD."""
    text = data[:cap].decode("utf-8", errors="replace").replace("\x00", "\ufffd")
    if len(data) > cap:
        text += f"\n[truncated: first {cap} of {len(data)} bytes]"
    return text


def _insert(rows: list[dict]) -> None:
    with get_engine().begin() as connection:  # one transaction per batch
        connection.execute(insert(PredictionLog.__table__), rows)


def _report(outcome_: str, rows: int, error: Exception | None) -> None:
    if outcome_ == "retrying":
        _warn_failing.warning("prediction log rows not written yet (%d kept, retried): %r", rows, error)
        return
    ROWS.labels(outcome_).inc(rows)
    if outcome_ == "rejected":
        log.warning("prediction log row refused by the database, dropped: %r", error)


def _get_writer() -> Writer:
    global _writer
    if _writer is None:
        with _writer_lock:
            if _writer is None:
                settings = get_settings()
                _writer = Writer(_insert, _report, batch_rows=settings.prediction_log_batch_rows,
                                 flush_seconds=settings.prediction_log_flush_seconds,
                                 max_rows=settings.prediction_log_queue_rows)
    return _writer


def _flush_before_exit() -> None:
    """Both the lifespan shutdown and atexit call this; after one gave up on an unreachable
    database, the other does not wait (and count) again."""
    global _gave_up
    if _gave_up:
        return
    if not flush(SHUTDOWN_FLUSH_SECONDS):
        _gave_up = True
        lost = pending()
        ROWS.labels("unwritten").inc(lost)
        log.error("prediction log: %d rows could not be written before exit", lost)


def _forget_inherited_writer() -> None:
    # a forked child starts with a copy of the parent's queue (which the parent writes) and no
    # writer thread: it gets its own, empty writer
    global _writer, _writer_lock
    _writer, _writer_lock = None, threading.Lock()


atexit.register(_flush_before_exit)  # inherited by forked children, where it flushes their writer
os.register_at_fork(after_in_child=_forget_inherited_writer)
