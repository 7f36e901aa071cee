"""Real-time predictions over REST: `POST /api/v1/models/{name}/predict` (MLflow-style bodies or CSV).

Every answer, errors included, says what is known: X-Model-Version (once resolved), X-Cache,
Server-Timing (auth, resolve, validate, cache, model, total in milliseconds), RateLimit-* (once
the limiter ran; the 429 too), Deprecation for deprecated versions; X-Request-ID comes from the
edge middleware.
"""

from __future__ import annotations

from datetime import timezone
from email.utils import format_datetime
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel
from starlette.datastructures import Headers, QueryParams

from mlplatform.api.deps import CREDENTIALS_SECURITY, deferred_from_headers
from mlplatform.api.errors import documented, domain_error_response
from mlplatform.errors import InvalidInput, MLPlatformError
from mlplatform.services import predictions, rate_limits
from mlplatform.services.predictions import Trace
from mlplatform.services.principals import Principal

router = APIRouter(prefix="/api/v1/models", tags=["predictions"])

ROUTE = "/api/v1/models/{name}/predict"  # the route template (metrics, access log)
PREDICT_PATH = r"/api/v1/models/(?P<name>[^/]+)/predict"  # takes bodies up to predictions.body_limit()
SERVER_TIMING_PHASES = ("auth", "resolve", "validate", "cache", "model")
ALWAYS_TIMED = ("auth", "cache", "model")  # listed even when the call never got there (0)

DESCRIPTION = """Runs the model on the rows in the body and answers one prediction per row.

**Version**: `?version=3` (a number) or `?version=staging` (an alias); without it the
`production` alias if set, else the newest active version. Archived versions never serve (409);
deprecated ones do, with a `Deprecation` header (`@<unix time>` of the deprecation) and, when the
owner set one, a `Sunset` header (an HTTP date); after the sunset time the version answers 410
`version_sunset`.

**Body** (`application/json`, MLflow's scoring-server shapes), columns as in the version's
signature (`GET /api/v1/models/{name}/versions/{version}`; array models take `f0`, `f1`, ...):
- `{"dataframe_split": {"columns": ["a", "b"], "data": [[1.0, "x"], [2.0, "y"]]}}`: `columns` may
  be left out when the values are in the model's column order
- `{"dataframe_records": [{"a": 1.0, "b": "x"}, {"a": 2.0, "b": "y"}]}`
- `{"instances": [[1.0, "x"], [2.0, "y"]]}` (or objects per row, or single values for a
  one-column model such as a text model: `{"instances": ["good movie", "bad movie"]}`)
- `{"inputs": {"a": [1.0, 2.0], "b": ["x", "y"]}}` (or rows, like `instances`)

or **`text/csv`** (UTF-8) with a header row naming the columns.

Values are checked against the signature before the model runs: a missing or unknown column, a
value of the wrong type, a missing value (null, NaN, an empty CSV cell) for a model without an
imputer, an infinite number, no rows or more than the configured maximum (10 000 by default) is
422 with `details: {"column", "row"}` (row counted from 0 within the request). Whole numbers may
be written `1` or `1.0` alike.

**Answer**: `{"predictions": [...], "model": {"name", "version"}, "cached": bool}`; with
`?proba=true`, also `"probabilities"` (one list per row, in the order of `"classes"`) when the
model has `predict_proba` (otherwise they are left out).

**Errors**: 401/403 (credentials, or a key without the `predict` scope), 404 (no such model or
version, or not yours), 409 (archived version), 410 (past its sunset time), 415 (another content type), 422 (invalid input;
`resource_limit` when the model hit a model-host limit on this input: send fewer rows), 429
(rate limit; `Retry-After`), 503 `model_unavailable` (the model host crashed or timed out; it is
replaced, retry after `Retry-After`)."""

TRUE, FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}
QUERY_PARAMETERS = [
    {"name": "version", "in": "query", "required": False, "description": "A version number or an alias",
     "schema": {"type": "string", "maxLength": 64}},
    {"name": "proba", "in": "query", "required": False,
     "description": "Also answer class probabilities (classifiers)", "schema": {"type": "boolean", "default": False}},
    {"name": "owner", "in": "query", "required": False, "description": "Administrators only: the owner's email",
     "schema": {"type": "string", "maxLength": 320}},
]

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
REQUEST_BODY = {
    "required": True,
    "content": {
        "application/json": {
            "schema": {"type": "object"},
            "examples": {
                "dataframe_split": {"summary": "Columns and rows", "value": {
                    "dataframe_split": {"columns": ["f0", "f1", "f2", "f3"], "data": [IRIS_ROW]}}},
                "dataframe_records": {"summary": "One object per row", "value": {
                    "dataframe_records": [dict(zip(["f0", "f1", "f2", "f3"], IRIS_ROW))]}},
                "instances": {"summary": "Rows by position", "value": {"instances": [IRIS_ROW]}},
                "inputs": {"summary": "Column -> values", "value": {
                    "inputs": {"f0": [5.1], "f1": [3.5], "f2": [1.4], "f3": [0.2]}}},
                "text": {"summary": "A text model", "value": {"instances": ["a great movie"]}},
            },
        },
        "text/csv": {"schema": {"type": "string"}, "example": "f0,f1,f2,f3\n5.1,3.5,1.4,0.2\n"},
    },
}


class ModelRef(BaseModel):
    name: str
    version: int


class PredictionAnswer(BaseModel):
    predictions: list
    model: ModelRef
    cached: bool
    probabilities: list[list[float]] | None = None
    classes: list | None = None


@router.post(
    "/{name}/predict",
    summary="Predict with a model",
    description=DESCRIPTION,
    response_model=None,
    responses={200: {"model": PredictionAnswer, "description": "One prediction per row"},
               **documented(400, 401, 403, 404, 409, 410, 413, 415, 422, 429, 503)},
    openapi_extra={"requestBody": REQUEST_BODY, "parameters": QUERY_PARAMETERS,
                   "security": CREDENTIALS_SECURITY},
)
async def predict(name: str, request: Request) -> Response:
    return await respond(name, request.headers, request.query_params, await request.body())


async def respond(name: str, headers: Headers, query: QueryParams, body: bytes) -> Response:
    """The answer to one prediction request, as this route and the prediction edge
    (mlplatform.api.prediction_edge, which serves it in production) both give it."""
    # credentials and query are read by hand, not as FastAPI dependencies: this is the hot path
    authenticate = deferred_from_headers(headers)
    trace = Trace(source="rest", model=name, body=body)
    content_type = headers.get("content-type")

    async def call(principal: Principal) -> predictions.PredictionResult:
        version, proba, owner = query_options(query)
        return await predictions.predict(principal, name, body, version_ref=version, proba=proba,
                                         content_type=content_type, owner=owner, trace=trace)

    try:
        result = await predictions.logged(trace, authenticate, call)
    except MLPlatformError as exc:
        return domain_error_response(exc, answer_headers(trace, exc))
    return JSONResponse(result.body(), headers=answer_headers(trace))


def query_options(query) -> tuple[str | None, bool, str | None]:
    """`version`, `proba` and `owner` from the query string, checked as QUERY_PARAMETERS says."""
    version, owner = _bounded(query, "version", 64), _bounded(query, "owner", 320)
    proba = query.get("proba", "false").lower()
    if proba not in TRUE | FALSE:
        raise InvalidInput("proba must be true or false", details={"field": "proba"})
    return version, proba in TRUE, owner


def _bounded(query, field: str, most: int) -> str | None:
    value = query.get(field)
    if value is not None and not 1 <= len(value) <= most:
        raise InvalidInput(f"{field} must be 1 to {most} characters", details={"field": field})
    return value


def answer_headers(trace: Trace, error: MLPlatformError | None = None) -> dict[str, str]:
    headers = {"X-Cache": "hit" if trace.cached else "miss", "Server-Timing": server_timing(trace)}
    if trace.version is not None:
        headers["X-Model-Version"] = str(trace.version)
    if trace.deprecated:
        headers.update(deprecation_headers(trace))
    state = getattr(error, "state", None) or trace.rate_limit  # a 429 carries the full window
    if isinstance(state, rate_limits.RateLimitState):
        headers.update(rate_limits.headers(state))
    return headers


def deprecation_headers(trace: Trace) -> dict[str, str]:
    """RFC 9745's Deprecation (a structured-field date; `true` for versions deprecated before the
    time was recorded) and RFC 8594's Sunset (an HTTP date)."""
    deprecated_at, sunset_at = trace.deprecated_at, trace.sunset_at
    headers = {"Deprecation": f"@{int(deprecated_at.timestamp())}" if deprecated_at else "true"}
    if sunset_at is not None:
        headers["Sunset"] = format_datetime(sunset_at.astimezone(timezone.utc), usegmt=True)
    return headers


def server_timing(trace: Trace) -> str:
    phases = [p for p in SERVER_TIMING_PHASES if p in trace.timings or p in ALWAYS_TIMED]
    parts = [f"{p};dur={trace.timings.get(p, 0.0):.3f}" for p in phases]
    parts.append(f"total;dur={trace.elapsed_ms():.3f}")
    return ", ".join(parts)
