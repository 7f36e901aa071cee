"""Administrators: list accounts, deactivate and reactivate them."""

from __future__ import annotations

import asyncio
import uuid

import reflex as rx

from mlplatform.models import User
from mlplatform.services import users
from mlplatform.ui.errors import guarded
from mlplatform.ui.layout import shell
from mlplatform.ui.state import SessionState

PAGE_SIZE = 25


def _row(user: User) -> dict[str, str]:
    return {
        "id": str(user.id),
        "email": user.email,
        "role": user.role.value,
        "active": "yes" if user.is_active else "no",
        "created": user.created_at.strftime("%Y-%m-%d %H:%M UTC"),
        "last_login": user.last_login_at.strftime("%Y-%m-%d %H:%M UTC") if user.last_login_at else "never",
    }


class UsersState(SessionState):
    rows: list[dict[str, str]] = []
    total: int = 0
    page: int = 1
    search: str = ""
    target_id: str = ""
    target_email: str = ""
    target_activate: bool = False

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    async def _reload(self) -> None:
        principal = await self._principal()
        result = await asyncio.to_thread(users.list_users, principal, self.page, PAGE_SIZE, self.search)
        self.rows, self.total = [_row(u) for u in result.items], result.total

    @rx.event
    @guarded
    async def load(self):
        await self._reload()

    @rx.event
    @guarded
    async def set_search(self, value: str):
        self.search, self.page = value, 1
        await self._reload()

    @rx.event
    @guarded
    async def turn_page(self, delta: int):
        self.page = min(max(self.page + delta, 1), self.pages)
        await self._reload()

    @rx.event
    def ask(self, user_id: str, email: str, activate: bool):
        self.target_id, self.target_email, self.target_activate = user_id, email, activate

    @rx.event
    def cancel(self):
        self.target_id = ""

    @rx.event
    @guarded
    async def confirm(self):
        principal = await self._principal()
        target, self.target_id = self.target_id, ""
        user = await asyncio.to_thread(users.set_active, principal, uuid.UUID(target), self.target_activate)
        self.rows = [_row(user) if r["id"] == target else r for r in self.rows]
        return rx.toast.success(f"{user.email} {'reactivated' if user.is_active else 'deactivated'}")


def _user_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(row["email"]),
        rx.table.cell(rx.badge(row["role"], color_scheme=rx.cond(row["role"] == "admin", "purple", "gray"))),
        rx.table.cell(rx.cond(row["active"] == "yes", rx.badge("active", color_scheme="green"),
                              rx.badge("deactivated", color_scheme="red"))),
        rx.table.cell(row["created"]),
        rx.table.cell(row["last_login"]),
        rx.table.cell(
            rx.cond(
                row["active"] == "yes",
                rx.cond(
                    row["email"] != SessionState.user_email,
                    rx.button("Deactivate", size="1", color_scheme="red", variant="soft",
                              on_click=UsersState.ask(row["id"], row["email"], False)),
                ),
                rx.button("Reactivate", size="1", variant="soft",
                          on_click=UsersState.ask(row["id"], row["email"], True)),
            )
        ),
        class_name="user-row",
    )


def _confirm_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(rx.cond(UsersState.target_activate, "Reactivate account?", "Deactivate account?")),
            rx.alert_dialog.description(
                rx.cond(
                    UsersState.target_activate,
                    rx.text(UsersState.target_email, " can sign in again; their API keys work again."),
                    rx.text(UsersState.target_email, " is signed out and their API keys stop working within a second."),
                )
            ),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", on_click=UsersState.cancel)),
                rx.alert_dialog.action(rx.button("Confirm", on_click=UsersState.confirm, id="confirm-user-change")),
                justify="end",
                spacing="3",
            ),
        ),
        open=UsersState.target_id != "",
    )


def admin_users_page() -> rx.Component:
    return shell(
        "Users",
        rx.input(placeholder="Search by email", on_change=UsersState.set_search.debounce(300), width="320px",
                 id="user-search"),
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                           ("Email", "Role", "Status", "Created", "Last sign-in", "")])),
            rx.table.body(rx.foreach(UsersState.rows, _user_row)),
            width="100%",
        ),
        rx.hstack(
            rx.button("Previous", variant="soft", on_click=UsersState.turn_page(-1), disabled=UsersState.page <= 1),
            rx.text("Page ", UsersState.page, " of ", UsersState.pages, " · ", UsersState.total, " accounts", size="2"),
            rx.button("Next", variant="soft", on_click=UsersState.turn_page(1),
                      disabled=UsersState.page >= UsersState.pages),
            align="center",
            spacing="3",
        ),
        _confirm_dialog(),
    )
