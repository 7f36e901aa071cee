"""Registration."""

from __future__ import annotations

import asyncio

import reflex as rx

from mlplatform.services import auth
from mlplatform.services.passwords import MIN_LENGTH
from mlplatform.ui.errors import guarded
from mlplatform.ui.layout import centered_card


class RegisterState(rx.State):
    error: str = ""
    submitting: bool = False

    @rx.event
    @guarded
    async def submit(self, form: dict):
        if form.get("password", "") != form.get("confirm", ""):
            self.error = "The two passwords differ."
            return
        self.error, self.submitting = "", True
        try:
            await asyncio.to_thread(auth.register, form.get("email", ""), form.get("password", ""))
        finally:
            self.submitting = False
        return rx.redirect("/login/?registered=1")


def _field(label: str, name: str, kind: str, autocomplete: str) -> rx.Component:
    return rx.vstack(
        rx.text(label, as_="label", html_for=name, size="2", weight="medium"),
        rx.input(id=name, name=name, type=kind, required=True, autocomplete=autocomplete, width="100%"),
        spacing="1",
        width="100%",
    )


def register_page() -> rx.Component:
    return centered_card(
        rx.heading("Create an account", size="5"),
        rx.form(
            rx.vstack(
                _field("Email", "email", "email", "username"),
                _field("Password", "password", "password", "new-password"),
                rx.text(
                    f"At least {MIN_LENGTH} characters, not containing your email name.",
                    size="1",
                    color_scheme="gray",
                ),
                _field("Repeat password", "confirm", "password", "new-password"),
                rx.cond(
                    RegisterState.error != "",
                    rx.callout(RegisterState.error, icon="triangle-alert", color_scheme="red", id="register-error"),
                ),
                rx.button("Create account", type="submit", id="register", loading=RegisterState.submitting, width="100%"),
                spacing="3",
                width="100%",
            ),
            on_submit=RegisterState.submit,
            width="100%",
        ),
        rx.text("Already registered? ", rx.link("Sign in", href="/login/"), size="2"),
    )
