"""create_api: the FastAPI app that carries REST, health and metrics (Reflex mounts inside it)."""

from __future__ import annotations

from fastapi import FastAPI, Request
from starlette.exceptions import HTTPException

from mlplatform import logs
from mlplatform.api import errors
from mlplatform.api.middleware import BodyLimitMiddleware, EdgeMiddleware
from mlplatform.api.routing import METHODS, allowed_methods
from mlplatform.api.routes import api_keys, auth, browser_session, health, models, oip, predict, users
from mlplatform.config import Settings
from mlplatform.errors import NotFound
from mlplatform.services import prediction_log, predictions

DESCRIPTION = """Upload scikit-learn models and call them over HTTP.

Authenticate with `Authorization: Bearer <access token or API key>` or `X-API-Key: <key>`.
Errors are always `{"error": {"code", "message", "details"}}`."""

def unknown_api_route(rest: str, request: Request) -> None:
    """Catches every method on unknown /api paths, so it also answers 405 for known paths."""
    allowed = allowed_methods(request, request.app.router.routes, unknown_api_route)
    if allowed:
        raise HTTPException(405, "Method Not Allowed", headers={"Allow": ", ".join(allowed)})
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
        lifespan=prediction_log.flushed_at_shutdown,  # when served on its own (in Reflex: mlplatform.py)
    )
    errors.install(api)
    # the prediction routes first: the router tries routes in order, on every request
    for module in (predict, oip, health, auth, browser_session, api_keys, users, models):
        api.include_router(module.router)
    # last: unknown /api paths answer JSON 404 (or 405), not the UI
    api.add_api_route("/api/{rest:path}", unknown_api_route, methods=METHODS, include_in_schema=False)
    # model uploads may be bigger: the REST route, and the dashboard's (Reflex posts to /_upload)
    upload_limit = settings.max_model_bytes + models.MULTIPART_OVERHEAD_BYTES
    uploads = [("POST", models.UPLOAD_PATH, upload_limit), ("POST", "/_upload", upload_limit)]
    # prediction bodies carry up to predict_max_rows rows
    bigger = [*uploads, ("POST", predict.PREDICT_PATH, predictions.body_limit(settings)),
              ("POST", oip.INFER_PATH, predictions.body_limit(settings))]
    api.add_middleware(BodyLimitMiddleware, limit=settings.max_body_bytes, overrides=bigger)
    api.add_middleware(EdgeMiddleware, hsts=settings.cookie_secure)
    return api
