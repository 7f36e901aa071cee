"""Request dependencies: who is calling, and is the body JSON."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from email.message import Message
from typing import Annotated

from fastapi import Depends, Request
from fastapi.security import APIKeyHeader, HTTPAuthorizationCredentials, HTTPBearer

from mlplatform.errors import AuthenticationFailed, UnsupportedMediaType
from mlplatform.services import principals
from mlplatform.services.principals import Principal

_bearer = HTTPBearer(
    auto_error=False, description="An access token from /api/v1/auth/login, or an API key"
)
_api_key = APIKeyHeader(name="X-API-Key", auto_error=False, description="An API key")


def current_principal(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Principal:
    return _authenticate(bearer.credentials if bearer is not None else "", api_key)


def _authenticate(bearer: str, api_key: str | None) -> Principal:
    """A bearer credential (access token or API key) wins over X-API-Key."""
    if bearer:
        return principals.authenticate_bearer(bearer)
    if api_key:
        return principals.authenticate_api_key(api_key)
    raise AuthenticationFailed("Authentication required", code="not_authenticated")


CurrentPrincipal = Annotated[Principal, Depends(current_principal)]


def deferred_principal(
    bearer: Annotated[HTTPAuthorizationCredentials | None, Depends(_bearer)],
    api_key: Annotated[str | None, Depends(_api_key)],
) -> Callable[[], Principal]:
    """The caller's credentials, authenticated when the route calls the result: for routes that
    time authentication or answer its errors themselves (documented like CurrentPrincipal)."""
    return lambda: current_principal(bearer, api_key)


DeferredPrincipal = Annotated[Callable[[], Principal], Depends(deferred_principal)]

# The OpenAPI security requirement the two schemes above make: for routes that read the
# credentials with `deferred_from_headers` and so declare it themselves.
CREDENTIALS_SECURITY = [{"HTTPBearer": []}, {"APIKeyHeader": []}]


def deferred_from_headers(headers: Mapping[str, str]) -> Callable[[], Principal]:
    """`deferred_principal` without FastAPI's dependency solving, which costs the prediction
    routes a fifth of their time: the same headers, read the same way."""
    scheme, _, credentials = headers.get("authorization", "").partition(" ")
    bearer = credentials.strip() if scheme.lower() == "bearer" else ""
    api_key = headers.get("x-api-key")
    return lambda: _authenticate(bearer, api_key)


def require_json_body(request: Request) -> None:
    """415 for a body sent with another content type (instead of a confusing 422)."""
    has_body = request.headers.get("content-length", "0") != "0" or "transfer-encoding" in request.headers
    if not has_body:
        return
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    subtype = message.get_content_subtype()
    if message.get_content_maintype() != "application" or not (subtype == "json" or subtype.endswith("+json")):
        raise UnsupportedMediaType("Send the body as application/json", code="unsupported_media_type")


def client_ip(request: Request) -> str:
    return request.client.host if request.client else "unknown"
