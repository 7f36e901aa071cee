"""The app shell: navigation, the signed-in account, sign-out."""

from __future__ import annotations

import reflex as rx

from mlplatform.ui.state import SessionState

SIGN_OUT_FORM = (
    '<form method="post" action="/api/v1/auth/session/logout" class="native-form-inline">'
    '<button type="submit" id="sign-out" class="native-button ghost">Sign out</button></form>'
)


def _nav_link(label: str, href: str, icon: str) -> rx.Component:
    return rx.link(
        rx.hstack(rx.icon(icon, size=16), rx.text(label, size="2"), align="center", spacing="2"),
        href=href,
        class_name="nav-link",
        underline="none",
    )


def sidebar() -> rx.Component:
    return rx.vstack(
        rx.hstack(rx.icon("boxes", size=22), rx.heading("mlplatform", size="4"), align="center"),
        rx.vstack(
            _nav_link("Get started", "/", "rocket"),
            _nav_link("Models", "/models/", "brain-circuit"),
            _nav_link("API keys", "/account/", "key-round"),
            rx.cond(SessionState.is_admin, _nav_link("Users", "/admin/users/", "users")),
            _nav_link("API reference", "/api/v1/docs", "book-open"),
            spacing="1",
            width="100%",
        ),
        rx.spacer(),
        rx.vstack(
            rx.text(SessionState.user_email, size="1", color_scheme="gray", id="current-user"),
            rx.cond(SessionState.is_admin, rx.badge("admin", color_scheme="purple")),
            rx.html(SIGN_OUT_FORM),
            spacing="2",
            width="100%",
        ),
        class_name="sidebar",
        height="100vh",
        padding="1.25em",
        width="230px",
    )


def shell(title: str, *children: rx.Component) -> rx.Component:
    """A signed-in page: nothing shows until the session was checked."""
    return rx.hstack(
        sidebar(),
        rx.box(
            rx.cond(
                SessionState.user_email != "",
                rx.vstack(rx.heading(title, size="6"), *children, spacing="4", width="100%"),
                rx.center(rx.spinner(size="3"), height="50vh"),
            ),
            padding="2em",
            width="100%",
            max_width="1100px",
        ),
        spacing="0",
        align="start",
    )


def centered_card(*children: rx.Component) -> rx.Component:
    """Pages for people who are not signed in (sign-in, registration)."""
    return rx.center(
        rx.card(
            rx.vstack(
                rx.hstack(rx.icon("boxes", size=26), rx.heading("mlplatform", size="6"), align="center"),
                *children,
                spacing="4",
                width="100%",
            ),
            width="min(420px, 92vw)",
            padding="2em",
        ),
        min_height="100vh",
        class_name="auth-background",
    )
