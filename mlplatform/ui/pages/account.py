"""Account page: API keys (create, secret shown once, list, revoke)."""

from __future__ import annotations

import asyncio
import uuid
from datetime import date, datetime, time, timezone

import reflex as rx

from mlplatform.errors import InvalidInput
from mlplatform.models import ApiKey, Scope
from mlplatform.services import api_keys
from mlplatform.ui.errors import guarded
from mlplatform.ui.layout import shell
from mlplatform.ui.state import SessionState

ALL_SCOPES = [s.value for s in Scope]


def _when(moment: datetime | None, never: str = "never") -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else never


def _row(key: ApiKey) -> dict[str, str]:
    now = datetime.now(timezone.utc)
    status = "revoked" if key.revoked_at else "expired" if key.expires_at and key.expires_at <= now else "active"
    return {
        "id": str(key.id),
        "name": key.name,
        "prefix": key.prefix,
        "scopes": ", ".join(key.scopes),
        "created": _when(key.created_at),
        "last_used": _when(key.last_used_at),
        "expires": _when(key.expires_at),
        "status": status,
    }


def _end_of_day(day: str) -> datetime | None:
    if not day:
        return None
    try:
        return datetime.combine(date.fromisoformat(day), time.max, tzinfo=timezone.utc)
    except ValueError as exc:
        raise InvalidInput("Expiry must be a date") from exc


class KeysState(SessionState):
    keys: list[dict[str, str]] = []
    scopes: list[str] = ["predict"]
    secret: str = ""
    secret_name: str = ""
    revoke_id: str = ""
    revoke_name: str = ""

    @rx.event
    @guarded
    async def load(self):
        principal = await self._principal()
        self.keys = [_row(k) for k in await asyncio.to_thread(api_keys.list_keys, principal)]

    @rx.event
    def toggle_scope(self, scope: str, checked: bool):
        self.scopes = [s for s in ALL_SCOPES if (s == scope and checked) or (s != scope and s in self.scopes)]

    @rx.event
    @guarded
    async def create(self, form: dict):
        principal = await self._principal()
        created = await asyncio.to_thread(
            api_keys.create_key, principal, form.get("name", ""), self.scopes, _end_of_day(form.get("expires_on", ""))
        )
        self.secret, self.secret_name = created.secret, created.record.name
        self.keys = [_row(created.record), *self.keys]

    @rx.event
    def dismiss_secret(self):
        self.secret, self.secret_name = "", ""

    @rx.event
    def copy_secret(self):
        return [rx.set_clipboard(self.secret), rx.toast.success("Key copied to the clipboard")]

    @rx.event
    def ask_revoke(self, key_id: str, name: str):
        self.revoke_id, self.revoke_name = key_id, name

    @rx.event
    def cancel_revoke(self):
        self.revoke_id, self.revoke_name = "", ""

    @rx.event
    @guarded
    async def confirm_revoke(self):
        principal = await self._principal()
        revoked = await asyncio.to_thread(api_keys.revoke_key, principal, uuid.UUID(self.revoke_id))
        self.keys = [_row(revoked) if k["id"] == self.revoke_id else k for k in self.keys]
        name, self.revoke_id, self.revoke_name = self.revoke_name, "", ""
        return rx.toast.success(f"Key “{name}” revoked")


def _create_form() -> rx.Component:
    return rx.card(
        rx.form(
            rx.vstack(
                rx.heading("New API key", size="3"),
                rx.hstack(
                    rx.vstack(
                        rx.text("Name", as_="label", html_for="key-name", size="2", weight="medium"),
                        rx.input(id="key-name", name="name", placeholder="e.g. nightly scoring", required=True, max_length=100),
                        spacing="1",
                    ),
                    rx.vstack(
                        rx.text("Expires (optional)", as_="label", html_for="key-expiry", size="2", weight="medium"),
                        rx.input(id="key-expiry", name="expires_on", type="date"),
                        spacing="1",
                    ),
                    spacing="4",
                    wrap="wrap",
                ),
                rx.text("Scopes", size="2", weight="medium"),
                rx.hstack(
                    *[
                        rx.checkbox(
                            scope,
                            checked=KeysState.scopes.contains(scope),
                            on_change=lambda checked, s=scope: KeysState.toggle_scope(s, checked),
                        )
                        for scope in ALL_SCOPES
                    ],
                    spacing="4",
                    wrap="wrap",
                ),
                rx.button(rx.icon("plus", size=16), "Create key", type="submit", id="create-key"),
                spacing="3",
            ),
            on_submit=KeysState.create,
            reset_on_submit=True,
            id="create-key-form",
        ),
    )


def _secret_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Your new API key"),
            rx.dialog.description(
                "Copy it now: this is the only time it is shown. It is stored as a hash.", size="2"
            ),
            rx.code_block(KeysState.secret, id="new-key-secret", wrap_long_lines=True),
            rx.hstack(
                rx.button(rx.icon("copy", size=16), "Copy", on_click=KeysState.copy_secret, id="copy-key"),
                rx.dialog.close(rx.button("Done", variant="soft", on_click=KeysState.dismiss_secret, id="close-secret")),
                justify="end",
                spacing="3",
            ),
        ),
        open=KeysState.secret != "",
    )


def _revoke_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title("Revoke this key?"),
            rx.alert_dialog.description(
                rx.text("Programs using “", KeysState.revoke_name, "” stop working within a second. This cannot be undone.")
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", on_click=KeysState.cancel_revoke)),
                rx.alert_dialog.action(
                    rx.button("Revoke", color_scheme="red", on_click=KeysState.confirm_revoke, id="confirm-revoke")
                ),
                justify="end",
                spacing="3",
            ),
        ),
        open=KeysState.revoke_id != "",
    )


def _status_badge(status) -> rx.Component:
    return rx.match(
        status,
        ("active", rx.badge("active", color_scheme="green")),
        ("expired", rx.badge("expired", color_scheme="orange")),
        rx.badge("revoked", color_scheme="gray"),
    )


def _key_row(key) -> rx.Component:
    return rx.table.row(
        rx.table.cell(key["name"]),
        rx.table.cell(rx.code(key["prefix"])),
        rx.table.cell(key["scopes"]),
        rx.table.cell(key["created"]),
        rx.table.cell(key["last_used"]),
        rx.table.cell(key["expires"]),
        rx.table.cell(_status_badge(key["status"])),
        rx.table.cell(
            rx.cond(
                key["status"] == "active",
                rx.button("Revoke", size="1", color_scheme="red", variant="soft",
                          on_click=KeysState.ask_revoke(key["id"], key["name"])),
            )
        ),
        class_name="key-row",
    )


def _keys_table() -> rx.Component:
    return rx.cond(
        KeysState.keys.length() > 0,
        rx.table.root(
            rx.table.header(
                rx.table.row(
                    *[rx.table.column_header_cell(h) for h in
                      ("Name", "Prefix", "Scopes", "Created", "Last used", "Expires", "Status", "")]
                )
            ),
            rx.table.body(rx.foreach(KeysState.keys, _key_row)),
            width="100%",
            id="keys-table",
        ),
        rx.callout(
            "No API keys yet. Programs authenticate with a key: create one above.",
            icon="info",
        ),
    )


def account_page() -> rx.Component:
    return shell(
        "API keys",
        rx.text("Keys let programs call the API as you, limited to the scopes you choose.", color_scheme="gray"),
        _create_form(),
        _keys_table(),
        _secret_dialog(),
        _revoke_dialog(),
    )
