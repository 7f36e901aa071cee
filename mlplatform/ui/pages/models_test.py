"""The model page's Test tab: pick a version, fill the form its signature implies (or paste JSON /
CSV), predict, see the answer, and copy the same call as curl, Python `requests` or OIP v2."""

from __future__ import annotations

import reflex as rx

from mlplatform.ui.pages.models_test_snippets import KEY_PLACEHOLDER, FormField
from mlplatform.ui.pages.models_test_state import SHOWN_PREDICTIONS
from mlplatform.ui.pages.models_test_state import ModelTestState as T

GRID = {"display": "grid", "grid_template_columns": "repeat(auto-fill, minmax(210px, 1fr))", "gap": "12px"}


def _picker() -> rx.Component:
    return rx.hstack(
        rx.text("Version", size="2", weight="medium"),
        rx.select.root(
            rx.select.trigger(id="test-version", min_width="15em"),
            rx.select.content(rx.foreach(T.picks, lambda p: rx.select.item(p.label, value=p.value))),
            value=T.ref,
            on_change=T.pick,
        ),
        rx.cond(T.serving_version > 0, rx.text("answered by ", rx.code(T.serving_label), size="2",
                                               id="serving-version")),
        rx.spacer(),
        rx.segmented_control.root(
            rx.segmented_control.item("Form", value="form"),
            rx.segmented_control.item("JSON / CSV", value="paste"),
            value=T.test_mode,
            on_change=T.set_mode,
            id="test-mode",
        ),
        align="center",
        spacing="3",
        wrap="wrap",
        width="100%",
    )


def _control(f: FormField) -> rx.Component:
    value = T.form_values[f.name]
    return rx.match(
        f.kind,
        ("select", rx.select.root(
            rx.select.trigger(id=f.id, width="100%"),
            rx.select.content(rx.foreach(f.options, lambda o: rx.select.item(o, value=o))),
            value=value, on_change=lambda v: T.set_field(f.name, v))),
        ("switch", rx.switch(checked=value == "true", on_change=lambda c: T.set_flag(f.name, c), id=f.id)),
        ("textarea", rx.text_area(value=value, on_change=lambda v: T.set_field(f.name, v), id=f.id, rows="4",
                                  width="100%")),
        rx.input(value=value, on_change=lambda v: T.set_field(f.name, v), id=f.id,
                 type=rx.cond(f.kind == "text", "text", "number"),
                 step=rx.cond(f.kind == "integer", "1", "any")),
    )


def _field(f: FormField) -> rx.Component:
    return rx.vstack(
        rx.text(f.name, " ", rx.text.span(f.dtype, color_scheme="gray", weight="regular"), as_="label",
                html_for=f.id, size="1", weight="medium", class_name="break-all"),
        _control(f),
        spacing="1",
        class_name="test-field",
        custom_attrs={"data-column": f.name},
    )


def _form() -> rx.Component:
    return rx.cond(
        T.form_fields.length() > 0,
        rx.box(rx.foreach(T.form_fields, _field), style=GRID, max_height="460px", overflow_y="auto",
               width="100%", padding="2px", id="test-form"),
        rx.callout(f"This model takes {T.n_columns} columns, too many for a form: paste a body instead.",
                   icon="info", id="test-too-wide"),
    )


def _paste() -> rx.Component:
    return rx.vstack(
        rx.text_area(value=T.pasted, on_change=T.set_pasted, id="test-body", rows="10", width="100%",
                     font_family="monospace", spell_check=False),
        rx.hstack(
            rx.button("Example JSON", size="1", variant="soft", on_click=T.use_example("json"), id="example-json"),
            rx.button("Example CSV", size="1", variant="soft", on_click=T.use_example("csv"), id="example-csv"),
            rx.text("JSON in MLflow's shapes (dataframe_split, dataframe_records, instances, inputs), or CSV "
                    "with a header row; many rows at once are fine.", size="1", color_scheme="gray"),
            align="center", spacing="2", wrap="wrap",
        ),
        spacing="2",
        width="100%",
    )


def _error() -> rx.Component:
    return rx.cond(T.error != "", rx.callout.root(
        rx.callout.icon(rx.icon("circle-alert")),
        rx.callout.text(T.error),
        rx.cond(T.error_where != "", rx.callout.text("At ", T.error_where, weight="bold", id="test-error-where")),
        color_scheme="red", id="test-error",
    ))


def _input() -> rx.Component:
    return rx.fragment(
        rx.cond(T.test_mode == "form", _form(), _paste()),
        rx.hstack(
            rx.button(rx.icon("play", size=16), "Predict", on_click=T.predict, loading=T.running, id="predict"),
            rx.text(T.input_kind, " input · ", T.n_columns, " column(s)", size="1", color_scheme="gray"),
            align="center", spacing="3",
        ),
        _error(),
    )


def _input_card() -> rx.Component:
    # the picker stays when the picked version cannot serve, so another one can be picked
    unavailable = rx.callout(T.tab_error, icon="circle-alert", color_scheme="orange", id="test-unavailable")
    return rx.card(rx.vstack(_picker(), rx.cond(T.tab_error != "", unavailable, _input()), spacing="3",
                             width="100%"), width="100%")


def _latency() -> rx.Component:
    return rx.text(rx.text.span(T.total_ms, weight="bold"), " in all · ",
                   rx.cond(T.model_ms != "", rx.text.span("model ", T.model_ms), "the model did not run"),
                   size="2", id="test-latency")


def _chart() -> rx.Component:
    return rx.cond(T.proba_classes.length() > 0, rx.vstack(
        rx.text("Class probabilities", rx.cond(T.answer_rows > 1, " of the first row", ""), size="2",
                weight="medium"),
        rx.box(rx.plotly.cartesian(data=T.proba_figure, config={"displayModeBar": False}), width="100%",
               id="proba-chart"),
        spacing="1",
        width="100%",
    ))


def _answer() -> rx.Component:
    return rx.cond(T.answered, rx.card(rx.vstack(
        rx.hstack(
            rx.heading("Answer", size="3"),
            rx.badge("v", T.answer_version, variant="soft", id="answer-version"),
            rx.badge("cache ", T.cache_flag, color_scheme=rx.cond(T.cache_flag == "hit", "green", "gray"),
                     id="cache-flag"),
            rx.cond(T.answer_deprecated, rx.badge("deprecated version", color_scheme="orange")),
            _latency(),
            align="center", spacing="3", wrap="wrap",
        ),
        rx.text(T.answer_rows, " prediction(s)",
                rx.cond(T.answer_rows > SHOWN_PREDICTIONS, f", the first {SHOWN_PREDICTIONS} shown", ""),
                size="2", id="answer-count"),
        rx.hstack(rx.foreach(T.answer_predictions, lambda p: rx.code(p, class_name="prediction")),
                  wrap="wrap", spacing="2", id="predictions"),
        _chart(),
        spacing="3",
        width="100%",
    ), width="100%", id="test-answer"))


def _snippet_code() -> rx.Component:
    return rx.cond(
        T.snippet_kind == "python",
        rx.code_block(T.snippet, language="python", wrap_long_lines=True, id="snippet-code", width="100%"),
        rx.code_block(T.snippet, language="bash", wrap_long_lines=True, id="snippet-code", width="100%"),
    )


def _key() -> rx.Component:
    return rx.cond(
        T.key_secret != "",
        rx.callout(rx.text("The snippets now hold the new key “", T.key_name, "” (scope predict). Store it now: "
                           "it is shown only once and kept only as a hash."), icon="key-round",
                   color_scheme="amber", id="test-key-note"),
        rx.hstack(
            rx.text("The snippets read your API key from ", rx.code(KEY_PLACEHOLDER), ".", size="2"),
            rx.button(rx.icon("key-round", size=14), "Create a key for this", size="1", variant="soft",
                      on_click=T.create_key, id="create-test-key"),
            align="center", spacing="3", wrap="wrap",
        ),
    )


def _snippets() -> rx.Component:
    return rx.card(rx.vstack(
        rx.hstack(
            rx.heading("Copy as", size="3"),
            rx.segmented_control.root(
                rx.segmented_control.item("curl", value="curl"),
                rx.segmented_control.item("Python requests", value="python"),
                rx.segmented_control.item("OIP v2", value="oip"),
                value=T.snippet_kind, on_change=T.show_snippet, id="snippet-kind",
            ),
            rx.spacer(),
            rx.button(rx.icon("copy", size=14), "Copy", size="2", variant="soft", id="copy-snippet",
                      on_click=[rx.set_clipboard(T.snippet), rx.toast.success("Copied to the clipboard")]),
            align="center", spacing="3", wrap="wrap", width="100%",
        ),
        _snippet_code(),
        _key(),
        spacing="3",
        width="100%",
    ), width="100%")


def predict_tab() -> rx.Component:
    """Mounted when the tab is shown (Radix unmounts hidden tabs): that is when it loads."""
    return rx.box(
        rx.vstack(_input_card(), rx.cond(T.tab_error == "", rx.fragment(_answer(), _snippets())), spacing="4",
                  width="100%"),
        on_mount=T.open_tab,
        on_unmount=T.leave_tab,
        padding_top="1em",
        width="100%",
    )
