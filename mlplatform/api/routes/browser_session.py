"""The browser's sign-in: a native form POST that sets an httpOnly session cookie."""

from __future__ import annotations

from typing import Annotated
from urllib.parse import urlencode

from fastapi import APIRouter, Cookie, Depends, Form
from fastapi.responses import RedirectResponse

from mlplatform.api.deps import client_ip
from mlplatform.config import get_settings
from mlplatform.errors import MLPlatformError
from mlplatform.services import auth
from mlplatform.services.browser import SESSION_COOKIE, safe_next_path

router = APIRouter(prefix="/api/v1/auth/session", tags=["browser session"])


@router.post(
    "",
    summary="Sign in from the dashboard's login form",
    description="Form fields `email`, `password`, `next`. Answers 303: to `next` with an httpOnly "
    "session cookie, or back to the login page with an error code.",
    status_code=303,
)
def sign_in(
    email: Annotated[str, Form(max_length=320)],
    password: Annotated[str, Form(max_length=1000)],
    ip: Annotated[str, Depends(client_ip)],
    next: Annotated[str, Form(max_length=2000)] = "/",
) -> RedirectResponse:
    target = safe_next_path(next)
    try:
        session = auth.start_browser_session(email, password, ip)
    except MLPlatformError as exc:
        query = {"error": exc.code, "next": target}
        if retry_after := getattr(exc, "retry_after", None):
            query["retry_after"] = str(retry_after)
        return RedirectResponse("/login/?" + urlencode(query), status_code=303)
    response = RedirectResponse(target, status_code=303)
    response.set_cookie(
        SESSION_COOKIE,
        session.token,
        max_age=session.max_age,
        httponly=True,
        samesite="lax",
        secure=get_settings().cookie_secure,
        path="/",
    )
    return response


@router.post("/logout", summary="Sign out of the dashboard", status_code=303)
def sign_out(
    session: Annotated[str | None, Cookie(alias=SESSION_COOKIE)] = None,
) -> RedirectResponse:
    if session:
        auth.end_browser_session(session)
    response = RedirectResponse("/login/", status_code=303)
    response.delete_cookie(SESSION_COOKIE, path="/")
    return response
