"""Sign-in: a native form POST, so the session cookie can be httpOnly."""

from __future__ import annotations

import html

import reflex as rx

from mlplatform.services.browser import safe_next_path
from mlplatform.ui.layout import centered_card

MESSAGES = {
    "invalid_credentials": "Invalid email or password.",
    "account_deactivated": "This account has been deactivated. Ask an administrator.",
    "rate_limited": "Too many failed attempts.",
    "not_authenticated": "Please sign in.",
}


class LoginState(rx.State):
    next_path: str = "/"
    error: str = ""
    notice: str = ""
    ready: bool = False  # the form appears once `next` is known, so typing is never re-rendered away

    @rx.event
    def read_query(self):
        params = self.router.url.query_parameters
        self.next_path = safe_next_path(params.get("next", "/"))
        self.error = _error_message(params.get("error", ""), params.get("retry_after", ""))
        self.notice = "Account created. Sign in to continue." if params.get("registered") else ""
        self.ready = True

    @rx.var
    def form_html(self) -> str:
        return (
            '<form method="post" action="/api/v1/auth/session" class="native-form" id="login-form">'
            '<label for="email">Email</label>'
            '<input id="email" name="email" type="email" autocomplete="username" required maxlength="320">'
            '<label for="password">Password</label>'
            '<input id="password" name="password" type="password" autocomplete="current-password" '
            'required maxlength="1000">'
            f'<input type="hidden" name="next" value="{html.escape(self.next_path, quote=True)}">'
            '<button type="submit" id="sign-in" class="native-button">Sign in</button>'
            "</form>"
        )


def _error_message(code: str, retry_after: str) -> str:
    if not code:
        return ""
    message = MESSAGES.get(code, "Sign-in failed.")
    if code == "rate_limited" and retry_after.isdigit():
        minutes = max(1, round(int(retry_after) / 60))
        message += f" Try again in about {minutes} minute{'s' if minutes > 1 else ''}."
    return message


def login_page() -> rx.Component:
    return centered_card(
        rx.heading("Sign in", size="5"),
        rx.cond(LoginState.notice != "", rx.callout(LoginState.notice, icon="circle-check", color_scheme="green")),
        rx.cond(
            LoginState.error != "",
            rx.callout(LoginState.error, icon="triangle-alert", color_scheme="red", id="login-error"),
        ),
        rx.cond(LoginState.ready, rx.html(LoginState.form_html, width="100%"), rx.center(rx.spinner(), height="9em")),
        rx.text("No account yet? ", rx.link("Create one", href="/register/"), size="2"),
    )
