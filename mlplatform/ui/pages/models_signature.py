"""The selected version's signature, as the sandbox extracted it at upload: what the model is, what
it takes, what it answers."""

from __future__ import annotations

import reflex as rx

from mlplatform.ui.pages.models_common import status_badge
from mlplatform.ui.pages.models_detail_state import ModelDetailState as S


def _fact(label: str, *value: rx.Component | str) -> rx.Component:
    return rx.data_list.item(rx.data_list.label(label), rx.data_list.value(*value))


def _method(method) -> rx.Component:
    return rx.badge(
        rx.cond(method["available"] == "yes", rx.icon("check", size=12), rx.icon("x", size=12)),
        method["name"],
        color_scheme=rx.cond(method["available"] == "yes", "green", "gray"),
        variant="soft",
    )


def _file_facts() -> rx.Component:
    c = S.current
    return rx.data_list.root(
        rx.cond(c["description"] != "", _fact("Description", rx.text(c["description"], id="version-description"))),
        _fact("Uploaded", rx.text(c["created"], rx.cond(c["filename"] != "", " as ", ""), rx.code(c["filename"]))),
        _fact("File", rx.text(c["size"], " · ", c["format"], " · SHA-256 ",
                              rx.code(c["sha256"], class_name="break-all"))),
        _fact("Sandbox check", rx.text("loaded in ", c["load"], " using ", c["memory"], " of memory")),
        orientation="horizontal",
    )


def _facts() -> rx.Component:
    return rx.data_list.root(
        _fact("Estimator", rx.code(S.sig_estimator, id="sig-estimator")),
        _fact("Task", rx.badge(S.sig_task, id="sig-task")),
        _fact("Input", rx.text(S.sig_input, " · ", S.sig_n_features, " feature(s)")),
        rx.cond(S.sig_steps.length() > 0, _fact("Pipeline steps", rx.vstack(
            rx.foreach(S.sig_steps, lambda st: rx.text(rx.code(st["name"]), " ", st["estimator"], size="2")),
            spacing="1", id="sig-steps"))),
        rx.cond(S.sig_classes.length() > 0, _fact("Classes", rx.hstack(
            rx.foreach(S.sig_classes, lambda c: rx.badge(c, variant="outline")), wrap="wrap", spacing="1",
            id="sig-classes"))),
        _fact("Methods", rx.hstack(rx.foreach(S.sig_methods, _method), wrap="wrap", spacing="1",
                                   id="sig-methods")),
        _fact("Checked against", rx.text(S.sig_checked, size="2", id="sig-checked")),
        orientation="horizontal",
    )


def _features() -> rx.Component:
    return rx.table.root(
        rx.table.header(rx.table.row(*[rx.table.column_header_cell(h) for h in ("Feature", "Type", "Categories")])),
        rx.table.body(rx.foreach(S.sig_features, lambda f: rx.table.row(
            rx.table.cell(rx.code(f["name"])), rx.table.cell(f["dtype"]),
            rx.table.cell(rx.text(f["categories"], size="1")), class_name="feature-row"))),
        size="1",
        width="100%",
        id="sig-features",
    )


def signature_view() -> rx.Component:
    return rx.card(
        rx.vstack(
            rx.hstack(rx.heading("Signature of v", S.selected, size="4", id="signature-heading"),
                      status_badge(S.current["status"]), align="center", spacing="3"),
            _file_facts(),
            rx.separator(size="4"),
            _facts(),
            rx.heading("Features", size="3"),
            _features(),
            rx.cond(S.sig_more > 0, rx.text(S.sig_more, " more feature(s) or class(es) not listed here.",
                                            size="1", color_scheme="gray")),
            rx.heading("Example input row", size="3"),
            rx.text("The sandbox predicted on this row before it accepted the version.", size="1",
                    color_scheme="gray"),
            rx.code_block(S.sig_example, language="json", id="sig-example"),
            spacing="3",
            width="100%",
        ),
        width="100%",
    )
