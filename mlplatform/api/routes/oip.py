"""Open Inference Protocol v2 under /v2: health, server and model metadata, model readiness, infer.

Authentication as everywhere (`Authorization: Bearer <token or key>` or `X-API-Key`): infer needs
the `predict` scope; model metadata and readiness `predict` or `models:read`. Versions in the path
are numbers or aliases, as in REST; without one the `production` alias, else the newest version.

Errors answer the protocol's `{"error": "<message>"}` (OIP clients read `error` as a string:
tritonclient formats it into its exception's text), with the platform's `code` and `details`
beside it. Infer answers carry the REST predict headers: X-Model-Version, X-Cache,
Server-Timing, RateLimit-*, Deprecation/Sunset.
"""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel

from mlplatform import logs
from mlplatform.api.deps import DeferredPrincipal
from mlplatform.api.errors import domain_error_response
from mlplatform.api.routing import METHODS, allowed_methods
from mlplatform.api.routes.predict import answer_headers
from mlplatform.config import get_settings
from mlplatform.errors import MLPlatformError, NotFound
from mlplatform.services import oip, predictions
from mlplatform.services.predictions import Trace
from mlplatform.services.principals import Principal

router = APIRouter(prefix="/v2", tags=["open inference protocol"])

INFER_PATH = r"/v2/models/[^/]+(/versions/[^/]+)?/infer"  # takes bodies up to predictions.body_limit()
# no length limit here: the registry refuses a bad alias itself, in OIP's error body
Version = Annotated[str, Path(description="A version number or an alias")]


class OipError(BaseModel):
    """OIP v2's error answer: `error` is the message (a string, as OIP clients expect); `code` and
    `details` are the platform's (e.g. details {"column", "row"} for invalid input)."""

    error: str
    code: str
    details: Any = None


class Live(BaseModel):
    live: bool


class Ready(BaseModel):
    ready: bool


class ModelReady(BaseModel):
    name: str
    ready: bool


class ServerMetadata(BaseModel):
    name: str
    version: str
    extensions: list[str]


class MetadataTensor(BaseModel):
    name: str
    datatype: str
    shape: list[int]


class ModelMetadata(BaseModel):
    name: str
    versions: list[str]
    platform: str
    inputs: list[MetadataTensor]
    outputs: list[MetadataTensor]


class OutputTensor(MetadataTensor):
    data: list


class InferAnswer(BaseModel):
    model_name: str
    model_version: str
    id: str
    outputs: list[OutputTensor]


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    return {s: {"model": OipError, "description": DESCRIBED.get(s, "Error")} for s in statuses}


DESCRIBED = {400: "Malformed request body", 401: "Missing, invalid, expired or revoked credentials",
             403: "Credentials lack the scope", 404: "No such model or version (or not yours)",
             409: "Archived version", 410: "Version past its sunset time", 413: "Request body too large",
             415: "Unsupported Content-Encoding", 422: "Invalid input (details name the column and row)",
             429: "Too many requests; see Retry-After", 503: "Not ready, or the model host is unavailable"}
MODEL_ERRORS = (401, 403, 404, 409, 410)


def oip_error(exc: MLPlatformError, headers: dict[str, str] | None = None) -> JSONResponse:
    """The platform's status and headers (Retry-After, WWW-Authenticate, ...), OIP's body."""
    standard = domain_error_response(exc, headers)
    kept = {k: v for k, v in standard.headers.items() if k not in ("content-length", "content-type")}
    return JSONResponse({"error": exc.message, "code": exc.code, "details": exc.details},
                        status_code=standard.status_code, headers=kept)


# ---- health and server metadata -------------------------------------------------------------------

@router.get("/health/live", summary="OIP: the server is live", response_model=Live)
def live() -> Live:
    return Live(live=True)


@router.get("/health/ready", summary="OIP: the server is ready to infer (database, Redis, model hosts)",
            response_model=Ready, responses={503: {"model": Ready, "description": "Not ready"}})
def ready() -> JSONResponse:
    ok = oip.server_ready()
    return JSONResponse({"ready": ok}, status_code=200 if ok else 503)


@router.get("", summary="OIP: server metadata", response_model=ServerMetadata)
def server_metadata(request: Request) -> ServerMetadata:
    return ServerMetadata(name="mlplatform", version=request.app.version, extensions=[])


# ---- models ---------------------------------------------------------------------------------------

METADATA_DESCRIPTION = """The tensors the model takes and answers (from the version's signature).
Array models take one 2-D tensor `input-0` [-1, n_features]; DataFrame models one tensor per column
(FP64, INT64, BOOL, or BYTES for strings); text models one BYTES tensor `text`. Outputs: `predict`,
and `predict_proba` [-1, n_classes] for models that have it. Scope `predict` or `models:read`."""


@router.get("/models/{name}", summary="OIP: model metadata", description=METADATA_DESCRIPTION,
            response_model=ModelMetadata, responses=documented(*MODEL_ERRORS))
def model_metadata(name: str, authenticate: DeferredPrincipal) -> JSONResponse:
    return _answer(lambda: oip.model_metadata(authenticate(), name))


@router.get("/models/{name}/versions/{version}", summary="OIP: model version metadata",
            description=METADATA_DESCRIPTION, response_model=ModelMetadata, responses=documented(*MODEL_ERRORS))
def version_metadata(name: str, version: Version, authenticate: DeferredPrincipal) -> JSONResponse:
    return _answer(lambda: oip.model_metadata(authenticate(), name, version))


READY_DESCRIPTION = """200 `{"name", "ready": true}` when the version serves and the model hosts
are up; 503 with `"ready": false` when the hosts are down; errors as for metadata."""


@router.get("/models/{name}/ready", summary="OIP: model readiness", description=READY_DESCRIPTION,
            response_model=ModelReady, responses=documented(*MODEL_ERRORS, 503))
def model_ready(name: str, authenticate: DeferredPrincipal) -> JSONResponse:
    return _readiness(name, lambda: oip.model_ready(authenticate(), name))


@router.get("/models/{name}/versions/{version}/ready", summary="OIP: model version readiness",
            description=READY_DESCRIPTION, response_model=ModelReady, responses=documented(*MODEL_ERRORS, 503))
def version_ready(name: str, version: Version, authenticate: DeferredPrincipal) -> JSONResponse:
    return _readiness(name, lambda: oip.model_ready(authenticate(), name, version))


def _answer(call) -> JSONResponse:
    try:
        return JSONResponse(call())
    except MLPlatformError as exc:
        return oip_error(exc)


def _readiness(name: str, call) -> JSONResponse:
    try:
        ok = call()
    except MLPlatformError as exc:
        return oip_error(exc)
    return JSONResponse({"name": name, "ready": ok}, status_code=200 if ok else 503)


# ---- infer ----------------------------------------------------------------------------------------

INFER_DESCRIPTION = """Runs the model on the request's tensors (OIP v2 inference request JSON).

**Inputs**: one 2-D tensor `[rows, n_columns]` (any name, values in column order, `data` row-major,
flat or nested), or one tensor per column named like the columns (`[rows]` or `[rows, 1]`); see the
model metadata. Datatypes FP16/FP32/FP64, INT8-64, UINT8-64, BOOL, BYTES (JSON strings); `null`
stands for a missing value (taken only by models that impute or handle NaN). Binary tensor data
(`parameters.binary_data_size` and the `Inference-Header-Content-Length` header, tritonclient's
default) is accepted; bodies may be gzip- or deflate-encoded.

**Outputs**: `predict` by default; list `outputs` (e.g. `[{"name": "predict"}, {"name":
"predict_proba"}]`) to get class probabilities too. Answers are JSON tensors (also when binary
output is asked for: clients read either). `id` echoes the request's, else the X-Request-ID.

**Errors** (`{"error": "<message>", "code", "details"}`): 401/403 (credentials, or no `predict`
scope), 404, 409 (archived), 410 (sunset), 413, 415, 422 (invalid input: details name the
`column` and `row`, or the `output`), 429 (rate limit; `Retry-After`), 503 (model host
unavailable; `Retry-After`). Every answer carries X-Model-Version (once resolved), X-Cache,
Server-Timing and RateLimit-* like `POST /api/v1/models/{name}/predict`."""

IRIS_ROW = [5.1, 3.5, 1.4, 0.2]
INFER_BODY = {
    "required": True,
    "content": {"application/json": {"schema": {"type": "object"}, "examples": {
        "matrix": {"summary": "One 2-D tensor (array models)", "value": {
            "id": "42", "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [1, 4], "data": IRIS_ROW}]}},
        "columns": {"summary": "One tensor per column, with probabilities", "value": {
            "inputs": [{"name": "size", "datatype": "FP64", "shape": [2], "data": [1.0, 2.5]},
                       {"name": "color", "datatype": "BYTES", "shape": [2], "data": ["red", "blue"]}],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}},
        "text": {"summary": "A text model", "value": {
            "inputs": [{"name": "text", "datatype": "BYTES", "shape": [1], "data": ["a great movie"]}]}},
    }}},
}
INFER_RESPONSES = {200: {"model": InferAnswer, "description": "The requested outputs"},
                   **documented(400, *MODEL_ERRORS, 413, 415, 422, 429, 503)}


@router.post("/models/{name}/infer", summary="OIP: infer", description=INFER_DESCRIPTION, response_model=None,
             responses=INFER_RESPONSES, openapi_extra={"requestBody": INFER_BODY})
async def infer(name: str, request: Request, authenticate: DeferredPrincipal) -> JSONResponse:
    return await _infer(name, None, request, authenticate)


@router.post("/models/{name}/versions/{version}/infer", summary="OIP: infer with a model version",
             description=INFER_DESCRIPTION, response_model=None, responses=INFER_RESPONSES,
             openapi_extra={"requestBody": INFER_BODY})
async def infer_version(name: str, version: Version, request: Request, authenticate: DeferredPrincipal) -> JSONResponse:
    return await _infer(name, version, request, authenticate)


async def _infer(name: str, version: str | None, request: Request, authenticate) -> JSONResponse:
    trace = Trace(source="oip", model=name)
    trace.body = await request.body()
    header_length = request.headers.get("inference-header-content-length")
    encoding = request.headers.get("content-encoding")
    request_id = logs.request_id.get()
    parsed: oip.InferRequest | None = None

    async def call(principal: Principal) -> predictions.PredictionResult:
        nonlocal parsed
        with trace.timed("validate"):
            parsed = oip.read_request(trace.body, header_length, encoding,
                                      max_bytes=predictions.body_limit(get_settings()))
        return await oip.infer(principal, name, parsed, version_ref=version, trace=trace)

    try:
        result = await predictions.logged(trace, authenticate, call)
    except MLPlatformError as exc:
        return oip_error(exc, answer_headers(trace, exc))
    return JSONResponse(oip.infer_response(result, parsed, request_id), headers=answer_headers(trace))


# ---- anything else under /v2 ----------------------------------------------------------------------

@router.api_route("/{rest:path}", methods=METHODS, include_in_schema=False)
def unknown(rest: str, request: Request) -> JSONResponse:
    """OIP clients get the protocol's JSON error for a wrong path (not the UI), and 405 for a known
    path with another method."""
    allowed = allowed_methods(request, router.routes, unknown)
    if allowed:
        return JSONResponse({"error": "Method Not Allowed", "code": "method_not_allowed", "details": None},
                            status_code=405, headers={"Allow": ", ".join(allowed)})
    return oip_error(NotFound(f"No OIP v2 route /v2/{rest[:200]}", code="route_not_found"))
