"""The one table from domain errors to HTTP answers: {"error": {"code", "message", "details"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel
from starlette.exceptions import HTTPException as StarletteHTTPException

from mlplatform import errors

log = logging.getLogger(__name__)

STATUS: dict[type[errors.MLPlatformError], int] = {
    errors.InvalidInput: 422,
    errors.AuthenticationFailed: 401,
    errors.PermissionDenied: 403,
    errors.NotFound: 404,
    errors.Conflict: 409,
    errors.Gone: 410,
    errors.PayloadTooLarge: 413,
    errors.UnsupportedMediaType: 415,
    errors.RateLimited: 429,
    errors.ServiceUnavailable: 503,
    errors.ModelRejected: 422,
    errors.ModelUnavailable: 503,
}
_HTTP_CODES = {400: "bad_request", 404: "not_found", 405: "method_not_allowed"}


class ErrorDetail(BaseModel):
    code: str
    message: str
    details: Any = None


class ErrorBody(BaseModel):
    error: ErrorDetail


def error_response(status: int, code: str, message: str, details: Any = None, headers=None) -> JSONResponse:
    body = {"error": {"code": code, "message": message, "details": details}}
    return JSONResponse(body, status_code=status, headers=headers)


class BodyTooLarge(StarletteHTTPException):
    """Raised while a body streams in; an HTTPException because FastAPI's body parsing re-raises
    those (it turns any other error into a 400)."""

    def __init__(self, limit: int):
        super().__init__(413, f"Request body exceeds {limit} bytes")
        self.limit = limit


def body_too_large(limit: int) -> JSONResponse:
    """The one 413 answer, whether the declared length or the streamed bytes went over."""
    return error_response(
        413, "payload_too_large", f"Request body exceeds {limit} bytes", {"limit_bytes": limit}
    )


def status_for(exc: errors.MLPlatformError) -> int:
    for cls in type(exc).__mro__:
        if cls in STATUS:
            return STATUS[cls]
    return 400


def documented(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The `responses=` entry that documents a route's error answers in OpenAPI."""
    return {s: {"model": ErrorBody, "description": _describe(s)} for s in statuses}


def _describe(status: int) -> str:
    return {
        400: "Malformed request body",
        401: "Missing, invalid, expired or revoked credentials",
        403: "Credentials lack the rights or scope for this action",
        404: "Not found (or not yours)",
        409: "Conflicts with the current state",
        410: "Retired on purpose (e.g. a version past its sunset time)",
        413: "Request body too large",
        415: "Unsupported content type",
        422: "Invalid input",
        429: "Too many requests; see Retry-After",
        503: "A dependency is unavailable",
    }.get(status, "Error")


def domain_error_response(exc: errors.MLPlatformError, extra_headers: dict[str, str] | None = None) -> JSONResponse:
    """The answer to a domain error; routes that add their own headers to errors call it."""
    status = status_for(exc)
    headers = dict(extra_headers or {})
    if isinstance(exc, (errors.RateLimited, errors.ModelUnavailable)):
        headers["Retry-After"] = str(exc.retry_after)
    if status == 401:
        headers["WWW-Authenticate"] = "Bearer"
    return error_response(status, exc.code, exc.message, exc.details, headers or None)


async def _domain_error(_request: Request, exc: errors.MLPlatformError) -> JSONResponse:
    return domain_error_response(exc)


async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
    problems = [
        {"loc": list(e.get("loc", ())), "message": e.get("msg", ""), "type": e.get("type", "")}
        for e in exc.errors()
    ]
    if any(p["type"] == "json_invalid" for p in problems):
        return error_response(400, "malformed_json", "Request body is not valid JSON", problems)
    return error_response(422, "validation_error", "Request is invalid", problems)


async def _body_too_large(_request: Request, exc: BodyTooLarge) -> JSONResponse:
    return body_too_large(exc.limit)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    code = _HTTP_CODES.get(exc.status_code, "http_error")
    return error_response(exc.status_code, code, str(exc.detail), headers=exc.headers)


async def _unexpected(request: Request, exc: Exception) -> JSONResponse:
    log.exception("unhandled error on %s %s", request.method, request.url.path)
    return error_response(500, "internal_error", "Internal server error")


def install(api: FastAPI) -> None:
    api.add_exception_handler(errors.MLPlatformError, _domain_error)
    api.add_exception_handler(RequestValidationError, _validation_error)
    api.add_exception_handler(BodyTooLarge, _body_too_large)
    api.add_exception_handler(StarletteHTTPException, _http_error)
    api.add_exception_handler(Exception, _unexpected)
