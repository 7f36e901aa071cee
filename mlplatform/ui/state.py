"""The signed-in person, read from the httpOnly session cookie on every event that needs it."""

from __future__ import annotations

import asyncio

import reflex as rx

from mlplatform.services import browser
from mlplatform.services.principals import Principal
from mlplatform.ui.errors import guarded


class SessionState(rx.State):
    user_email: str = ""
    is_admin: bool = False

    async def _principal(self) -> Principal:
        # router.headers holds the websocket's connect-time headers: a new cookie needs a page load,
        # which the sign-in redirect always is.
        return await asyncio.to_thread(browser.principal_from_cookie_header, self.router.headers.cookie)

    @rx.event
    @guarded
    async def require_login(self):
        principal = await self._principal()
        self.user_email, self.is_admin = principal.email, principal.is_admin
