"""Pure ASGI middleware around the whole app (REST, UI pages and the Reflex websocket)."""

from __future__ import annotations

import logging
import re
import time
import uuid
from collections.abc import Sequence

from mlplatform import logs
from mlplatform.api import metrics
from mlplatform.api.errors import BodyTooLarge, body_too_large

access_log = logging.getLogger("mlplatform.access")
_SAFE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._-]{1,64}$")
_BASE_HEADERS = [
    (b"x-content-type-options", b"nosniff"),
    (b"referrer-policy", b"strict-origin-when-cross-origin"),
]
# Reflex's client needs inline scripts and eval (rx.call_script); what this buys is no framing,
# no plugins, no foreign form targets and no foreign connections.
_CSP = (
    "default-src 'self'; script-src 'self' 'unsafe-inline' 'unsafe-eval'; "
    "style-src 'self' 'unsafe-inline'; img-src 'self' data: blob:; font-src 'self' data:; "
    "connect-src 'self' ws: wss:; object-src 'none'; base-uri 'self'; form-action 'self'; "
    "frame-ancestors 'none'"
)
_HTML_HEADERS = [
    (b"content-security-policy", _CSP.encode()),
    (b"x-frame-options", b"DENY"),
    (b"cross-origin-opener-policy", b"same-origin"),
    (b"permissions-policy", b"camera=(), microphone=(), geolocation=()"),
]


class EdgeMiddleware:
    """Request id, JSON access log, Prometheus metrics and security headers."""

    def __init__(self, app, hsts: bool = False):
        self.app = app
        self.extra_html = [(b"strict-transport-security", b"max-age=31536000")] if hsts else []

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        rid = _request_id(scope)
        token = logs.request_id.set(rid)
        started = time.perf_counter()
        status = 500

        async def send_with_headers(message):
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = list(message.get("headers", []))
                headers.append((b"x-request-id", rid.encode()))
                headers.extend(_BASE_HEADERS)
                if _is_html(headers):
                    headers.extend(_HTML_HEADERS + self.extra_html)
                message = {**message, "headers": headers}
            await send(message)

        try:
            await self.app(scope, receive, send_with_headers)
        finally:
            elapsed = time.perf_counter() - started
            route = metrics.route_label(scope)
            metrics.observe(scope["method"], route, status, elapsed)
            access_log.info(
                "request",
                extra={
                    "method": scope["method"],
                    "path": scope["path"],
                    "route": route,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 2),
                    "client": (scope.get("client") or ("", 0))[0],
                },
            )
            logs.request_id.reset(token)


class BodyLimitMiddleware:
    """413 for bodies over the limit, by declared length or by counting a streamed body.
    `overrides` are (method, path regex, limit) for the few routes that take bigger bodies
    (model uploads); the first full match wins."""

    def __init__(self, app, limit: int, overrides: Sequence[tuple[str, str, int]] = ()):
        self.app = app
        self.limit = limit
        self.overrides = [(method, re.compile(pattern), n) for method, pattern, n in overrides]

    def limit_for(self, scope) -> int:
        return next(
            (n for method, pattern, n in self.overrides
             if scope["method"] == method and pattern.fullmatch(scope["path"])),
            self.limit,
        )

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        limit = self.limit_for(scope)
        declared = _header(scope, b"content-length")
        if declared is not None and (not declared.isdigit() or int(declared) > limit):
            return await body_too_large(limit)(scope, receive, send)
        received = 0
        started = False

        async def counting_receive():
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise BodyTooLarge(limit)
            return message

        async def tracking_send(message):
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counting_receive, tracking_send)
        except BodyTooLarge:  # raised outside FastAPI's handlers (the Reflex mount)
            if not started:
                await body_too_large(limit)(scope, receive, send)


def _request_id(scope) -> str:
    given = _header(scope, b"x-request-id")
    return given if given and _SAFE_REQUEST_ID.match(given) else uuid.uuid4().hex


def _header(scope, name: bytes) -> str | None:
    for key, value in scope.get("headers", []):
        if key == name:
            return value.decode("latin-1")
    return None


def _is_html(headers: list[tuple[bytes, bytes]]) -> bool:
    return any(k.lower() == b"content-type" and v.startswith(b"text/html") for k, v in headers)
