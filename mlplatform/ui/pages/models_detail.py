"""The model page: header, versions, aliases (promote, set, roll back), lifecycle actions, and the
selected version's signature. Every change goes through a confirmation. A second tab tests the
model in the browser (models_test.py)."""

from __future__ import annotations

import reflex as rx

from mlplatform.ui.layout import shell
from mlplatform.ui.pages.models_common import alias_chip, status_badge
from mlplatform.ui.pages.models_detail_dialogs import dialogs
from mlplatform.ui.pages.models_detail_state import ModelDetailState as S
from mlplatform.ui.pages.models_detail_state import AliasRow, VersionRow
from mlplatform.ui.pages.models_signature import signature_view
from mlplatform.ui.pages.models_test import predict_tab
from mlplatform.ui.state import SessionState


def _upload_href() -> rx.Var:
    owner = rx.cond(S.owner_query != "", "&" + S.owner_query[1:], "")
    return "/models/upload/?name=" + S.model["name"] + owner


def _header() -> rx.Component:
    deleted = S.model["status"] == "deleted"
    return rx.vstack(
        rx.hstack(
            rx.heading(S.model["name"], size="7", id="model-name-heading"),
            status_badge(S.model["status"]),
            rx.spacer(),
            rx.cond(deleted, rx.fragment(), rx.link(
                rx.button(rx.icon("upload", size=16), "Upload new version", id="upload-new-version"),
                href=_upload_href())),
            rx.button(rx.icon("pencil", size=16), "Edit", variant="soft", on_click=S.open_edit,
                      disabled=deleted, id="edit-model"),
            rx.cond(deleted,
                    rx.button("Restore", variant="soft", on_click=S.ask("restore_model", 0, ""), id="restore-model"),
                    rx.button(rx.icon("trash-2", size=16), "Delete", color_scheme="red", variant="soft",
                              on_click=S.ask("delete_model", 0, ""), id="delete-model")),
            width="100%",
            align="center",
            spacing="3",
            wrap="wrap",
        ),
        rx.cond(S.model["description"] != "", rx.text(S.model["description"], id="model-description-text"),
                rx.text("No description.", color_scheme="gray")),
        rx.hstack(
            rx.cond(S.model["tags"] != "", rx.text("Tags: ", S.model["tags"], size="2", id="model-tags")),
            rx.cond(SessionState.is_admin & (S.model["owner"] != SessionState.user_email),
                    rx.text("Owner: ", S.model["owner"], size="2", color_scheme="purple")),
            rx.text("Created ", S.model["created"], " · updated ", S.model["updated"], size="1",
                    color_scheme="gray"),
            spacing="4",
            wrap="wrap",
            align="center",
        ),
        spacing="2",
        width="100%",
    )


def _alias_row(alias: AliasRow) -> rx.Component:
    return rx.hstack(
        alias_chip(alias, size="2"),
        rx.text(rx.cond(alias.previous > 0, rx.text.span("before: v", alias.previous, " · "), ""),
                "moved ", alias.updated, size="1", color_scheme="gray"),
        rx.button(rx.icon("undo-2", size=14), "Roll back", size="1", variant="soft",
                  on_click=S.open_rollback(alias.alias), class_name="rollback-alias"),
        rx.button("Remove", size="1", variant="ghost", color_scheme="red",
                  on_click=S.ask("delete_alias", 0, alias.alias), class_name="remove-alias"),
        align="center",
        spacing="3",
        class_name="alias-row",
    )


def _aliases() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.heading("Aliases", size="4"),
            rx.text("Callers name an alias instead of a number; moving it switches them over at once. Calls "
                    "without a version go to production, else to the newest active version.",
                    size="2", color_scheme="gray"),
            rx.cond(S.aliases.length() > 0,
                    rx.vstack(rx.foreach(S.aliases, _alias_row), spacing="2", id="aliases"),
                    rx.text("No aliases yet: promote a version to production, or set one from a version's menu.",
                            size="2", id="aliases-empty")),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _menu(v: VersionRow) -> rx.Component:
    return rx.dropdown_menu.root(
        rx.dropdown_menu.trigger(rx.icon_button(rx.icon("ellipsis", size=16), size="1", variant="ghost",
                                                aria_label="Version actions", class_name="version-menu")),
        rx.dropdown_menu.content(
            rx.dropdown_menu.item("Set alias…", on_click=S.open_alias(v.version)),
            rx.dropdown_menu.separator(),
            rx.cond(v.status != "active",
                    rx.dropdown_menu.item("Make active", on_click=S.ask("activate", v.version, ""))),
            rx.cond(v.status == "active",
                    rx.dropdown_menu.item("Deprecate", on_click=S.ask("deprecate", v.version, ""))),
            rx.cond(v.status != "archived",
                    rx.dropdown_menu.item("Archive", color="red", on_click=S.ask("archive", v.version, ""))),
        ),
    )


def _version_row(v: VersionRow) -> rx.Component:
    in_production = v.aliases.contains("production")
    return rx.table.row(
        rx.table.cell(rx.button("v", v.version, size="1", on_click=S.select(v.version),
                                variant=rx.cond(S.selected == v.version, "solid", "soft"),
                                title="Show this version's signature")),
        rx.table.cell(status_badge(v.status)),
        rx.table.cell(rx.text(v.created, size="1")),
        rx.table.cell(v.size),
        rx.table.cell(rx.code(v.sha_short, title=v.sha256)),
        rx.table.cell(rx.code(v.estimator)),
        rx.table.cell(v.load),
        rx.table.cell(rx.hstack(rx.foreach(v.aliases, lambda a: rx.badge(a, variant="soft")),
                                wrap="wrap", spacing="1"), class_name="version-aliases"),
        rx.table.cell(rx.hstack(
            rx.cond(in_production | (v.status == "archived"), rx.fragment(),
                    rx.button("Promote to production", size="1", on_click=S.ask("promote", v.version, ""),
                              class_name="promote")),
            _menu(v),
            spacing="2",
            align="center",
        )),
        class_name="version-row",
        custom_attrs={"data-version": v.version},
    )


def _versions() -> rx.Component:
    headers = ("Version", "Status", "Created", "Size", "SHA-256", "Estimator", "Load", "Aliases", "")
    return rx.card(
        rx.vstack(
            rx.heading("Versions", size="4"),
            rx.table.root(
                rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in headers])),
                rx.table.body(rx.foreach(S.versions, _version_row)),
                size="1",
                width="100%",
                id="versions-table",
            ),
            rx.cond(S.version_pages > 1, rx.hstack(
                rx.button("Newer", variant="soft", size="1", on_click=S.turn_version_page(-1),
                          disabled=S.version_page <= 1),
                rx.text("Page ", S.version_page, " of ", S.version_pages, " · ", S.version_total, " versions",
                        size="2"),
                rx.button("Older", variant="soft", size="1", on_click=S.turn_version_page(1),
                          disabled=S.version_page >= S.version_pages),
                align="center", spacing="3")),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )


def _tabs() -> rx.Component:
    return rx.tabs.root(
        rx.tabs.list(rx.tabs.trigger("Versions", value="versions", id="versions-tab"),
                     rx.tabs.trigger("Test", value="test", id="test-tab")),
        rx.tabs.content(rx.vstack(_aliases(), _versions(), rx.cond(S.selected > 0, signature_view()),
                                  spacing="4", width="100%", padding_top="1em"), value="versions"),
        rx.tabs.content(predict_tab(), value="test"),
        default_value="versions",
        width="100%",
    )


def model_page() -> rx.Component:
    return shell(
        "Models",
        rx.link(rx.hstack(rx.icon("arrow-left", size=14), rx.text("All models", size="2"), align="center"),
                href="/models/"),
        rx.cond(
            S.missing != "",
            rx.callout(S.missing, icon="circle-alert", color_scheme="orange", id="model-missing"),
            rx.cond(
                S.model.contains("name"),
                rx.vstack(_header(), _tabs(), spacing="4", width="100%"),
                rx.center(rx.spinner(size="3"), height="30vh"),
            ),
        ),
        dialogs(),
    )
