"""Real-time predictions: one call from an authenticated principal to an answer.

The path (DESIGN.md, "Request path for a real-time prediction"): scope `predict` -> resolve the
version (explicit number > alias > `production` > latest active; cached per process) -> parse
and validate the body against the version's signature -> rate limit and prediction cache lookup
in one Redis round trip (after resolving, because a model may set its own limit; a refused input
is charged too, so a caller over the limit hears 429 either way) -> the model host that holds the
version -> cache store.

The path is async and runs on the caller's event loop: Redis and the model host are awaited, and
the cached lookups (the caller's credentials, which version serves) run inline, reaching for a
worker thread only when they must query the database (cache.inline_or_in_thread). A web worker
thus serves many calls at once without a thread per call.

A Trace records what is known as the call goes (version, deprecation, cache flag, rate-limit
state, time per phase), so the transport can describe failed calls too.

Errors the host reports, mapped:
- a crashed, timed-out or unreachable host: ModelUnavailable (503 with Retry-After); the host is
  replaced and the next call succeeds;
- the model refusing the input (predict_failed): InvalidInput (422) with the model's message,
  naming the column and row when a value outside a column's training categories explains it;
- a host limit (CPU seconds, memory) stopping the call: ModelRejected `resource_limit` (422):
  the same input would hit it again, so retrying does not help, fewer rows do;
- any other refusal of a version that passed the upload gate before (pins or the allowlist
  changed since): ServiceUnavailable (503) with that code; the version needs a re-upload.
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from email.message import Message

import numpy as np

from mlplatform.config import Settings, get_settings
from mlplatform.errors import InvalidInput, MLPlatformError, ModelRejected, ServiceUnavailable, UnsupportedMediaType
from mlplatform.inference.batch import Batch
from mlplatform.inference.async_client import get_async_host_client
from mlplatform.models import Scope, VersionStatus
from mlplatform import cache
from mlplatform.services import prediction_cache, prediction_log, rate_limits, registry
from mlplatform.services.prediction_columns import model_columns, to_batch, unknown_category
from mlplatform.services.prediction_inputs import Limits, Table, charset_ok, parse_csv, parse_json
from mlplatform.services.principals import Principal
from mlplatform.services.rate_limits import RateLimitState

# A predict body may be bigger than other bodies: this much per row allowed (20 float features
# in `dataframe_records` with long column names take ~800 bytes a row).
BODY_BYTES_PER_ROW = 1024
JSON, CSV = "json", "csv"


def body_limit(settings: Settings) -> int:
    """Largest predict body: room for predict_max_rows rows, never less than max_body_bytes."""
    return max(settings.max_body_bytes, settings.predict_max_rows * BODY_BYTES_PER_ROW)


def input_limits(settings: Settings) -> Limits:
    # every cell takes at least two bytes of a body (a digit and a separator), so a body within
    # body_limit never needs more cells than this; the cap bounds what validation allocates
    return Limits(max_rows=settings.predict_max_rows, max_cells=body_limit(settings) // 2)


@dataclass
class Trace:
    """What is known about a call so far: what the transport answers in headers and what the
    prediction log records, also for calls that fail. Times are milliseconds per phase."""

    source: str = "rest"  # the transport: "rest", "oip" or "ui"
    model: str | None = None  # the model name as asked for
    body: bytes = b""  # the input as sent (the log keeps it, or its hash, when configured to)
    at: datetime = field(default_factory=lambda: datetime.now(timezone.utc))
    started: float = field(default_factory=time.perf_counter)
    timings: dict[str, float] = field(default_factory=dict)
    user_id: uuid.UUID | None = None
    api_key_id: uuid.UUID | None = None
    model_id: uuid.UUID | None = None
    version_id: uuid.UUID | None = None
    version: int | None = None
    deprecated: bool = False
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None
    cached: bool = False
    n_rows: int | None = None
    rate_limit: RateLimitState | None = None

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    @contextmanager
    def timed(self, phase: str) -> Iterator[None]:
        started = time.perf_counter()
        try:
            yield
        finally:
            spent = (time.perf_counter() - started) * 1000
            self.timings[phase] = self.timings.get(phase, 0.0) + spent


@dataclass
class PredictionResult:
    model: str
    version: int
    predictions: list
    cached: bool
    deprecated: bool
    n_rows: int
    probabilities: list | None = None
    classes: list | None = None

    def body(self) -> dict:
        answer = {"predictions": self.predictions, "model": {"name": self.model, "version": self.version},
                  "cached": self.cached}
        if self.probabilities is not None:
            answer["probabilities"] = self.probabilities
            answer["classes"] = self.classes
        return answer


def input_format(content_type: str | None) -> str:
    """JSON or CSV from the Content-Type header; anything else is 415."""
    message = Message()
    message["content-type"] = content_type or ""
    kind = message.get_content_type() if content_type else ""
    subtype = message.get_content_subtype()
    if message.get_content_maintype() == "application" and (subtype == "json" or subtype.endswith("+json")):
        return JSON
    if kind == "text/csv":
        if not charset_ok(message.get_param("charset")):
            raise UnsupportedMediaType("CSV must be UTF-8 (charset=utf-8)", code="unsupported_charset")
        return CSV
    raise UnsupportedMediaType("Send the input as application/json (MLflow's dataframe_split, "
                               "dataframe_records, instances or inputs) or text/csv with a header row",
                               code="unsupported_media_type")


# parses a body into the model's columns: (the version's signature, size limits) -> Table
Parser = Callable[[dict, Limits], Table]


async def predict(
    principal: Principal,
    name: str,
    body: bytes,
    *,
    version_ref: str | None = None,
    proba: bool = False,
    content_type: str | None = "application/json",
    owner: str | None = None,
    trace: Trace | None = None,
) -> PredictionResult:
    """A call with an MLflow-style JSON body or CSV (content_type says which)."""
    fmt = input_format(content_type)
    return await predict_with(principal, name, body_parser(body, fmt), version_ref=version_ref, proba=proba,
                              owner=owner, trace=trace)


async def predict_with(
    principal: Principal,
    name: str,
    parse: Parser,
    *,
    version_ref: str | None = None,
    proba: bool = False,
    owner: str | None = None,
    trace: Trace | None = None,
) -> PredictionResult:
    """A call whose body the transport parses (`parse` gets the version's signature)."""
    trace = trace if trace is not None else Trace()
    trace.model = trace.model or name
    principal.require_scope(Scope.predict.value)
    with trace.timed("resolve"):
        resolved = await cache.inline_or_in_thread(
            lambda: registry.resolve_version(principal, name, version_ref, owner=owner))
    trace.model_id, trace.version_id = resolved.model_id, resolved.version_id
    trace.version, trace.deprecated = resolved.version, resolved.status == VersionStatus.deprecated
    trace.deprecated_at, trace.sunset_at = resolved.deprecated_at, resolved.sunset_at
    settings = get_settings()
    try:
        with trace.timed("validate"):
            batch = to_batch(parse(resolved.signature, input_limits(settings)), resolved.signature)
    except MLPlatformError:  # refused input costs quota too, and a caller over the limit hears 429
        trace.rate_limit = await rate_limits.check_predict(principal, resolved.rate_limit_per_minute,
                                                           model_id=resolved.model_id)
        raise
    trace.n_rows = batch.n_rows
    want_proba = bool(proba and resolved.signature.get("methods", {}).get("predict_proba"))
    outputs = await _cached_or_predicted(principal, resolved, batch, want_proba, trace, settings)
    probabilities = outputs.get("probabilities") if want_proba else None
    return PredictionResult(
        model=resolved.model, version=resolved.version, predictions=outputs["predictions"],
        cached=trace.cached, deprecated=trace.deprecated, n_rows=batch.n_rows,
        probabilities=probabilities,
        classes=resolved.signature.get("classes") if probabilities is not None else None,
    )


async def logged(trace: Trace, authenticate: Callable[[], Principal],
                 call: Callable[[Principal], Awaitable[PredictionResult]]) -> PredictionResult:
    """How every transport runs a prediction: authenticates the caller (timed as `auth`, and
    recorded on the trace; on the event loop unless a lookup has to reach the database),
    awaits `call` for them and records the call in the prediction log whatever its outcome
    (refused credentials and malformed bodies included); an error is raised on after it is
    recorded."""
    try:
        with trace.timed("auth"):
            principal = await cache.inline_or_in_thread(authenticate)
        trace.user_id, trace.api_key_id = principal.user_id, principal.api_key_id
        result = await call(principal)
    except BaseException as exc:
        prediction_log.record(trace, error=exc)
        raise
    prediction_log.record(trace, result=result)
    return result


def body_parser(body: bytes, fmt: str) -> Parser:
    def parse(signature: dict, limits: Limits) -> Table:
        names = [name for name, _ in model_columns(signature)]
        return parse_csv(body, names, limits) if fmt == CSV else parse_json(body, names, limits)
    return parse


async def _cached_or_predicted(principal: Principal, resolved, batch: Batch, proba: bool, trace: Trace,
                               settings: Settings) -> dict:
    """Rate limit and cache lookup share one Redis round trip (timed as `cache`)."""
    ttl = prediction_cache.ttl_for(resolved.cache_ttl_seconds)
    key = prediction_cache.cache_key(resolved.sha256, batch, proba=proba) if ttl > 0 else None
    with trace.timed("cache"):
        trace.rate_limit, fetched = await rate_limits.check_predict_and_fetch(
            principal, resolved.rate_limit_per_minute, model_id=resolved.model_id, fetch=key)
        found = prediction_cache.read(key, fetched) if key else prediction_cache.count_off()
    if _usable(found, proba):
        trace.cached = True
        return found
    with trace.timed("model"):
        outputs = await _host_predict(resolved, batch, proba, settings)
    answer = {"predictions": plain(outputs["predictions"])}
    if proba and "probabilities" in outputs:
        answer["probabilities"] = plain(outputs["probabilities"])
    if key:
        with trace.timed("cache"):
            await prediction_cache.put(key, answer, ttl)
    return answer


def _usable(found, proba: bool) -> bool:
    """A cached answer of the expected shape (anything else counts as a miss)."""
    return (isinstance(found, dict) and isinstance(found.get("predictions"), list)
            and (not proba or isinstance(found.get("probabilities"), list)))


async def _host_predict(resolved, batch: Batch, proba: bool, settings: Settings) -> dict:
    try:
        return await get_async_host_client(settings).predict(resolved.sha256, resolved.path, batch, proba=proba)
    except InvalidInput as exc:
        raise _explained(exc, resolved.signature, batch) from None
    except ModelRejected as exc:
        if exc.code == "resource_limit":
            raise ModelRejected(f"The model hit a model-host limit on this input ({exc.message}); "
                                "send fewer rows", code=exc.code, details=exc.details) from None
        raise ServiceUnavailable(
            f"Version {resolved.version} of '{resolved.model}' can no longer be loaded ({exc.message}); "
            "upload it again", code=exc.code, details=exc.details) from None


def _explained(exc: InvalidInput, signature: dict, batch: Batch) -> InvalidInput:
    culprit = unknown_category(signature, batch)
    if culprit is None:
        return InvalidInput(f"The model refused the input: {exc.message}", code=exc.code,
                            details={"column": None, "row": None})
    column, row, value = culprit
    return InvalidInput(
        f"The model refused the input: column {column!r}, row {row}: {str(value)[:80]!r} is not one of "
        f"the categories seen in training ({exc.message})",
        code=exc.code, details={"column": column, "row": row})


def plain(array) -> list:
    """A model output as JSON lists: floats stay floats, ints ints, labels strings; NaN and
    infinities (which JSON cannot carry) become null."""
    array = np.asarray(array)
    if array.dtype.kind == "f":
        bad = ~np.isfinite(array)
        if bad.any():
            held = array.astype(object)
            held[bad] = None
            return held.tolist()
    return array.tolist()
