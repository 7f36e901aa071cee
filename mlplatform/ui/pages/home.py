"""Get started: how a program calls the platform, with this server's real address."""

from __future__ import annotations

import reflex as rx

from mlplatform.config import get_settings
from mlplatform.ui.layout import shell


def _step(number: str, title: str, *body: rx.Component) -> rx.Component:
    return rx.card(
        rx.hstack(
            rx.badge(number, size="3", radius="full"),
            rx.vstack(rx.heading(title, size="3"), *body, spacing="2", width="100%"),
            align="start",
            spacing="3",
        ),
        width="100%",
    )


def home_page() -> rx.Component:
    base = get_settings().public_url
    return shell(
        "Get started",
        _step("1", "Upload a model",
              rx.text("Save a fitted scikit-learn model with joblib and upload it: it is test-loaded in a sandbox "
                      "and becomes a versioned model. ", rx.link("Go to Models.", href="/models/"))),
        _step("2", "Create an API key",
              rx.text("Programs authenticate with a key. ", rx.link("Create one on the API keys page.", href="/account/"))),
        _step("3", "Call the API with it",
              rx.code_block(f'curl -H "Authorization: Bearer $MLP_KEY" {base}/api/v1/auth/me', language="bash"),
              rx.text("Or send it as ", rx.code("X-API-Key: $MLP_KEY"), ".", size="2")),
        _step("4", "Explore every route",
              rx.text("The interactive reference lists each route, its inputs and its errors: ",
                      rx.link("API reference", href="/api/v1/docs"), ".")),
    )
