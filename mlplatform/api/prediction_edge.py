"""PredictionEdge: serves `POST /api/v1/models/{name}/predict` in front of the framework stacks.

In production every request crosses Reflex's Starlette app and the FastAPI app inside it: two
rounds of middleware (errors, CORS, exceptions, the exit stack), FastAPI's router trying every
route, and the request object built for them. For the one hot route that was about a third of a
small model's cost per call (bench/RESULTS.md). This ASGI middleware, installed by Reflex's
`api_transformer` just inside Reflex's outer app (so CORS still applies), answers that route
itself, with what those stacks did for it and nothing more:
- the edge middleware (request id, security headers, access log, metrics) and the body limit,
  the same classes as around the rest of the API;
- the same answer, built by `routes.predict.respond`, as the documented FastAPI route gives;
- an unexpected exception is logged and answered 500 in the standard error format.
Everything else goes on to the wrapped app untouched.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass

from starlette.datastructures import Headers, QueryParams
from starlette.types import ASGIApp, Receive, Scope, Send

from mlplatform.api.errors import error_response
from mlplatform.api.middleware import BodyLimitMiddleware, EdgeMiddleware
from mlplatform.api.routes import predict
from mlplatform.config import Settings
from mlplatform.services import predictions

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RouteLabel:
    """What metrics and the access log read from scope["route"] (as from a Starlette route)."""

    path: str


PREDICT_ROUTE = RouteLabel(predict.ROUTE)


class PredictionEdge:
    def __init__(self, app: ASGIApp, settings: Settings):
        self.app = app
        self.path = re.compile(predict.PREDICT_PATH)
        limited = BodyLimitMiddleware(self._predict, limit=predictions.body_limit(settings))
        self.serve = EdgeMiddleware(limited, hsts=settings.cookie_secure)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "POST":
            match = self.path.fullmatch(scope["path"])
            if match:
                scope = {**scope, "route": PREDICT_ROUTE, "path_params": match.groupdict()}
                return await self.serve(scope, receive, send)
        await self.app(scope, receive, send)

    async def _predict(self, scope: Scope, receive: Receive, send: Send) -> None:
        body = await _read_body(receive)
        if body is None:
            return  # the client went away mid-body: nobody to answer
        try:
            response = await predict.respond(scope["path_params"]["name"], Headers(scope=scope),
                                             QueryParams(scope["query_string"]), body)
        except Exception:
            log.exception("unhandled error on POST %s", scope["path"])
            response = error_response(500, "internal_error", "Internal server error")
        await response(scope, receive, send)


async def _read_body(receive: Receive) -> bytes | None:
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body"):
            return b"".join(chunks)
