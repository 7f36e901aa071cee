"""The model page's dialogs: the one confirmation every change goes through, and the three that
take input (set an alias, roll an alias back, edit description and tags)."""

from __future__ import annotations

import reflex as rx

from mlplatform.services.registry import NAME_RULES
from mlplatform.ui.pages.models_detail_state import ModelDetailState as S


def _buttons(*confirm: rx.Component) -> rx.Component:
    return rx.hstack(rx.dialog.close(rx.button("Cancel", variant="soft", type="button", on_click=S.cancel)),
                     *confirm, justify="end", spacing="3")


def _confirm_dialog() -> rx.Component:
    return rx.alert_dialog.root(
        rx.alert_dialog.content(
            rx.alert_dialog.title(S.confirm_title),
            rx.alert_dialog.description(S.confirm_text),
            rx.hstack(
                rx.alert_dialog.cancel(rx.button("Cancel", variant="soft", on_click=S.cancel)),
                rx.alert_dialog.action(rx.button(S.confirm_button, on_click=S.confirm, id="confirm-action",
                                                 color_scheme=rx.cond(S.confirm_danger, "red", "indigo"))),
                justify="end",
                spacing="3",
            ),
        ),
        open=S.action != "",
        on_open_change=S.dialog_changed,
    )


def _alias_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Set an alias on v", S.alias_version),
            rx.dialog.description(
                "If the alias exists it moves here; callers using it get this version from the next request.",
                size="2"),
            rx.form(
                rx.vstack(
                    rx.input(name="alias", id="alias-name", placeholder="e.g. staging", required=True,
                             max_length=64),
                    rx.text(NAME_RULES, "; not only digits.", size="1", color_scheme="gray"),
                    _buttons(rx.button("Set alias", type="submit", id="submit-alias")),
                    spacing="3",
                ),
                on_submit=S.submit_alias,
                reset_on_submit=True,
            ),
        ),
        open=S.alias_version > 0,
        on_open_change=S.dialog_changed,
    )


def _rollback_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Roll back “", S.rollback_alias, "”"),
            rx.cond(
                S.rollback_choices.length() > 0,
                rx.vstack(
                    rx.dialog.description(
                        rx.cond(S.rollback_previous > 0,
                                rx.text.span("Before its last move it pointed at v", S.rollback_previous, ". "), ""),
                        "Move it back, or to another earlier version (active or deprecated). Callers using it "
                        "get that version from the next request.", size="2"),
                    rx.select(S.rollback_choices, value=S.rollback_target, on_change=S.set_rollback_target,
                              id="rollback-target"),
                    _buttons(rx.button("Roll back to v", S.rollback_target, on_click=S.confirm_rollback,
                                       id="confirm-rollback")),
                    spacing="3",
                ),
                rx.vstack(rx.dialog.description("There is no earlier active or deprecated version to go back to.",
                                                 size="2"),
                          _buttons(), spacing="3"),
            ),
        ),
        open=S.rollback_alias != "",
        on_open_change=S.dialog_changed,
    )


def _edit_dialog() -> rx.Component:
    return rx.dialog.root(
        rx.dialog.content(
            rx.dialog.title("Edit ", S.model["name"]),
            rx.form(
                rx.vstack(
                    rx.text("Description", as_="label", html_for="edit-description", size="2", weight="medium"),
                    rx.text_area(name="description", id="edit-description", default_value=S.model["description"],
                                 max_length=2000, rows="4"),
                    rx.text("Tags (comma separated)", as_="label", html_for="edit-tags", size="2", weight="medium"),
                    rx.input(name="tags", id="edit-tags", default_value=S.model["tags"]),
                    rx.text("Each tag: ", NAME_RULES, ".", size="1", color_scheme="gray"),
                    _buttons(rx.button("Save", type="submit", id="save-model")),
                    spacing="2",
                ),
                on_submit=S.submit_edit,
            ),
        ),
        open=S.editing,
        on_open_change=S.dialog_changed,
    )


def dialogs() -> rx.Component:
    return rx.fragment(_confirm_dialog(), _alias_dialog(), _rollback_dialog(), _edit_dialog())
