"""create_api: the FastAPI app that carries REST, health and metrics (Reflex mounts inside it)."""

from __future__ import annotations

from fastapi import APIRouter, FastAPI

from mlplatform import logs
from mlplatform.api import errors
from mlplatform.api.middleware import BodyLimitMiddleware, EdgeMiddleware
from mlplatform.api.routes import api_keys, auth, browser_session, health, users
from mlplatform.config import Settings
from mlplatform.errors import NotFound

DESCRIPTION = """Upload scikit-learn models and call them over HTTP.

Authenticate with `Authorization: Bearer <access token or API key>` or `X-API-Key: <key>`.
Errors are always `{"error": {"code", "message", "details"}}`."""

_unknown = APIRouter()


@_unknown.api_route(
    "/api/{rest:path}",
    methods=["GET", "POST", "PUT", "PATCH", "DELETE"],
    include_in_schema=False,
)
def unknown_api_route(rest: str) -> None:
    raise NotFound(f"No API route /api/{rest}", code="route_not_found")


def create_api(settings: Settings) -> FastAPI:
    logs.configure(settings.log_level)
    api = FastAPI(
        title="mlplatform",
        version="1",
        description=DESCRIPTION,
        docs_url="/api/v1/docs",
        redoc_url=None,
        openapi_url="/api/v1/openapi.json",
    )
    errors.install(api)
    for module in (health, auth, browser_session, api_keys, users):
        api.include_router(module.router)
    api.include_router(_unknown)  # last: unknown /api paths answer JSON 404, not the UI
    api.add_middleware(BodyLimitMiddleware, default_limit=settings.max_body_bytes)
    api.add_middleware(EdgeMiddleware, hsts=settings.cookie_secure)
    return api
