"""Browser-session helpers shared by the sign-in route and the dashboard's state."""

from __future__ import annotations

from http.cookies import SimpleCookie
from urllib.parse import urlsplit

from mlplatform.errors import AuthenticationFailed
from mlplatform.services import principals, tokens
from mlplatform.services.principals import Principal

SESSION_COOKIE = "mlp_session"


def safe_next_path(candidate: str) -> str:
    """Only local paths: never let `next` send a signed-in user to another site."""
    parts = urlsplit(candidate)
    local = not parts.scheme and not parts.netloc and parts.path.startswith("/")
    if not local or candidate.startswith("//") or "\\" in candidate:
        return "/"
    return candidate


def principal_from_cookie_header(cookie_header: str) -> Principal:
    jar = SimpleCookie()
    try:
        jar.load(cookie_header or "")
    except Exception as exc:  # http.cookies raises CookieError on junk
        raise AuthenticationFailed("Not signed in", code="not_authenticated") from exc
    morsel = jar.get(SESSION_COOKIE)
    if morsel is None or not morsel.value:
        raise AuthenticationFailed("Not signed in", code="not_authenticated")
    return principals.authenticate_token(morsel.value, tokens.SESSION)
