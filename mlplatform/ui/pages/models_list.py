"""Models: the list (search, status filter, pages), or how to upload the first one."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass
from urllib.parse import urlencode

import reflex as rx

from mlplatform.config import get_settings
from mlplatform.services import registry
from mlplatform.ui.errors import guarded
from mlplatform.ui.layout import shell
from mlplatform.ui.pages.models_common import (
    AliasRef,
    alias_refs,
    alias_chip,
    copyable,
    curl_example,
    python_example,
    status_badge,
    when,
)
from mlplatform.ui.state import SessionState

PAGE_SIZE = 20
STATUS_CHOICES = ["active", "deleted"]


def model_href(name: str, owner: str, me: str) -> str:
    """Administrators list everyone's models; another owner's model is addressed with ?owner=."""
    return f"/models/{name}/" + ("" if owner == me else "?" + urlencode({"owner": owner}))


@dataclass
class ModelRow:
    name: str
    href: str
    owner: str
    description: str
    tags: list[str]
    status: str
    latest: str
    aliases: list[AliasRef]
    updated: str


def _row(model, me: str) -> ModelRow:
    return ModelRow(
        name=model.name,
        href=model_href(model.name, model.owner_email, me),
        owner=model.owner_email,
        description=model.description,
        tags=list(model.tags),
        status=model.status.value,
        latest=f"v{model.latest_version}" if model.latest_version else "—",
        aliases=alias_refs(model.aliases),
        updated=when(model.updated_at),
    )


class ModelsState(SessionState):
    rows: list[ModelRow] = []
    total: int = 0
    page: int = 1
    search: str = ""
    status: str = "active"
    tag: str = ""
    loaded: bool = False

    @rx.var
    def pages(self) -> int:
        return max(1, -(-self.total // PAGE_SIZE))

    @rx.var
    def filtered(self) -> bool:
        return self.search != "" or self.status != "active" or self.tag != ""

    async def _reload(self) -> None:
        principal = await self._principal()
        result = await asyncio.to_thread(
            registry.list_models, principal, page=self.page, per_page=PAGE_SIZE, q=self.search,
            status=self.status, tag=self.tag or None,
        )
        self.rows = [_row(m, principal.email) for m in result.items]
        self.total, self.loaded = result.total, True

    @rx.event
    @guarded
    async def load(self):
        await self._reload()

    @rx.event
    @guarded
    async def set_search(self, value: str):
        self.search, self.page = value.strip(), 1
        await self._reload()

    @rx.event
    @guarded
    async def set_status(self, value: str):
        self.status, self.page = value, 1
        await self._reload()

    @rx.event
    @guarded
    async def set_tag(self, value: str):
        self.tag, self.page = value, 1
        await self._reload()

    @rx.event
    @guarded
    async def turn_page(self, delta: int):
        self.page = min(max(self.page + delta, 1), self.pages)
        await self._reload()


def _tag(tag) -> rx.Component:
    return rx.badge(tag, variant="outline", class_name="tag-chip", on_click=ModelsState.set_tag(tag),
                    title="Show only models with this tag")


def _model_row(row) -> rx.Component:
    return rx.table.row(
        rx.table.cell(
            rx.vstack(
                rx.link(rx.text(row.name, weight="bold"), href=row.href),
                rx.text(row.description, size="1", color_scheme="gray", class_name="clamp-2"),
                rx.cond(SessionState.is_admin & (row.owner != SessionState.user_email),
                        rx.text("owner: ", row.owner, size="1", color_scheme="purple")),
                spacing="1",
            )
        ),
        rx.table.cell(rx.hstack(rx.foreach(row.tags, _tag), wrap="wrap", spacing="1")),
        rx.table.cell(status_badge(row.status)),
        rx.table.cell(rx.code(row.latest)),
        rx.table.cell(rx.hstack(rx.foreach(row.aliases, lambda a: alias_chip(a)), wrap="wrap", spacing="1")),
        rx.table.cell(rx.text(row.updated, size="1")),
        class_name="model-row",
    )


def _toolbar() -> rx.Component:
    return rx.hstack(
        rx.input(placeholder="Search name or description", on_change=ModelsState.set_search.debounce(300),
                 width="280px", id="model-search"),
        rx.select(STATUS_CHOICES, value=ModelsState.status, on_change=ModelsState.set_status, id="model-status"),
        rx.cond(ModelsState.tag != "",
                rx.badge("tag: ", ModelsState.tag, rx.icon("x", size=12), variant="soft", class_name="tag-chip",
                         on_click=ModelsState.set_tag(""), title="Clear the tag filter", id="tag-filter")),
        rx.spacer(),
        rx.link(rx.button(rx.icon("upload", size=16), "Upload a model", id="upload-link"), href="/models/upload/"),
        width="100%",
        align="center",
        spacing="3",
        wrap="wrap",
    )


def _table() -> rx.Component:
    return rx.vstack(
        rx.table.root(
            rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in
                                           ("Model", "Tags", "Status", "Latest", "Aliases", "Updated")])),
            rx.table.body(rx.foreach(ModelsState.rows, _model_row)),
            width="100%",
            id="models-table",
        ),
        rx.cond(ModelsState.total == 0, rx.callout("No model matches.", icon="search")),
        rx.hstack(
            rx.button("Previous", variant="soft", on_click=ModelsState.turn_page(-1), disabled=ModelsState.page <= 1),
            rx.text("Page ", ModelsState.page, " of ", ModelsState.pages, " · ", ModelsState.total, " models",
                    size="2"),
            rx.button("Next", variant="soft", on_click=ModelsState.turn_page(1),
                      disabled=ModelsState.page >= ModelsState.pages),
            align="center",
            spacing="3",
        ),
        width="100%",
        spacing="3",
    )


def empty_state() -> rx.Component:
    base = get_settings().public_url
    return rx.card(
        rx.vstack(
            rx.hstack(rx.icon("package-open", size=28), rx.heading("Upload your first model", size="4"),
                      align="center", spacing="3"),
            rx.text("A model is a fitted scikit-learn estimator saved with joblib or pickle. Every upload is "
                    "test-loaded in a sandbox before it becomes a version; unsafe files are refused."),
            rx.text("1. Train and save one (this takes a second):", weight="medium"),
            copyable(python_example(), "python", "example-python"),
            rx.text("2. Upload it here, or from a program with an API key that has the ",
                    rx.code("models:write"), " scope (", rx.link("create one", href="/account/"), "):",
                    weight="medium"),
            copyable(curl_example(base), "bash", "example-curl"),
            rx.text("Or run ", rx.code("make demo"), " in the repository: it trains five models on scikit-learn's "
                    "data sets and uploads them, so you have something to explore.", size="2"),
            rx.link(rx.button(rx.icon("upload", size=16), "Upload a model", size="3", id="empty-upload"),
                    href="/models/upload/"),
            spacing="3",
            width="100%",
        ),
        id="models-empty",
        width="100%",
    )


def models_page() -> rx.Component:
    return shell(
        "Models",
        rx.cond(
            ModelsState.loaded,
            rx.cond(
                (ModelsState.total == 0) & ~ModelsState.filtered,
                empty_state(),
                rx.vstack(_toolbar(), _table(), width="100%", spacing="4"),
            ),
            rx.center(rx.spinner(size="3"), height="30vh"),
        ),
    )
