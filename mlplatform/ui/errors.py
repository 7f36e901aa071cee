"""The one table from domain errors to what a person sees: a toast, or the sign-in page."""

from __future__ import annotations

import functools
from urllib.parse import urlencode

import reflex as rx

from mlplatform.errors import AuthenticationFailed, MLPlatformError, ModelUnavailable, RateLimited


def login_url(next_path: str = "/") -> str:
    return "/login/?" + urlencode({"next": next_path or "/"})


def toast_for(exc: MLPlatformError):
    if isinstance(exc, (RateLimited, ModelUnavailable)):
        return rx.toast.warning(f"{exc.message} (retry in {exc.retry_after} s)")
    return rx.toast.error(exc.message)


def guarded(handler):
    """Run an async event handler; an expired session goes to sign-in, other domain errors to a toast."""

    @functools.wraps(handler)
    async def wrapper(self, *args, **kwargs):
        try:
            return await handler(self, *args, **kwargs)
        except AuthenticationFailed:
            return rx.redirect(login_url(self.router.url.path))
        except MLPlatformError as exc:
            return toast_for(exc)

    return wrapper
