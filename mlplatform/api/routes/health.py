"""Liveness, readiness and Prometheus metrics."""

from __future__ import annotations

from fastapi import APIRouter, Response
from fastapi.responses import JSONResponse

from mlplatform.api import metrics
from mlplatform.config import get_settings
from mlplatform.services import health

router = APIRouter(tags=["operations"])


@router.get("/health", summary="The process is alive")
def live() -> dict[str, str]:
    return {"status": "ok"}


@router.get(
    "/health/ready",
    summary="Database, Redis, a worker heartbeat and the model hosts, each reported",
    responses={503: {"description": "At least one dependency is not ready"}},
)
def ready() -> JSONResponse:
    checks = health.readiness()
    ok = all(c.ok for c in checks)
    body = {
        "status": "ready" if ok else "not_ready",
        "checks": {c.name: {"ok": c.ok, "detail": c.detail} for c in checks},
    }
    return JSONResponse(body, status_code=200 if ok else 503)


@router.get("/metrics", summary="Prometheus metrics", response_class=Response)
def prometheus() -> Response:
    payload, content_type = metrics.render(get_settings().prometheus_multiproc_dir)
    return Response(payload, media_type=content_type)
