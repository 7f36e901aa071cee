"""Catch-all routes answer JSON for unknown paths: 405 with `Allow` when another method is routed
there, else 404 (REST's /api and OIP's /v2 each have one, so neither path falls through to the UI)."""

from __future__ import annotations

from fastapi import Request
from starlette.routing import Match

METHODS = ["GET", "POST", "PUT", "PATCH", "DELETE"]


def allowed_methods(request: Request, routes: list, catch_all) -> list[str]:
    """The methods a route in `routes` before `catch_all` (an endpoint) answers at this path;
    routes after it (the UI mounted last) do not count. `routes`: the router that holds the
    catch-all (an app's router lists an included router as one entry)."""
    return [method for method in METHODS if _answers(request, method, routes, catch_all)]


def _answers(request: Request, method: str, routes: list, catch_all) -> bool:
    scope = {**request.scope, "method": method}
    for route in routes:
        if getattr(route, "endpoint", None) is catch_all:
            return False
        if route.matches(scope)[0] == Match.FULL:
            return True
    return False
