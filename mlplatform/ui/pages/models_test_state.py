"""The Test tab's state: which version answers, the form or the pasted body, the last answer, and
snippets for the same call. Handlers stay thin: they build a body and call the predictions service
the way the REST route does (same validation, cache, rate limit and prediction log)."""

from __future__ import annotations

import asyncio
import json
from dataclasses import dataclass
from functools import partial

import plotly.graph_objects as go
import reflex as rx

from mlplatform.config import get_settings
from mlplatform.errors import AuthenticationFailed, MLPlatformError
from mlplatform.models import Scope
from mlplatform.services import api_keys, browser, predictions, registry
from mlplatform.services.prediction_columns import model_columns
from mlplatform.services.predictions import PredictionResult, Trace
from mlplatform.services.principals import Principal
from mlplatform.ui.errors import guarded, login_url, toast_for
from mlplatform.ui.pages import models_test_snippets as snip
from mlplatform.ui.pages.models_detail_state import AliasRow, ModelDetailState, VersionRow

DEFAULT_REF = "(default)"  # never a valid alias (aliases are slugs), so it cannot shadow one
SHOWN_PREDICTIONS = 20  # a pasted batch may hold thousands of rows: the page lists the first ones
SERVABLE = ("active", "deprecated")  # archived versions never serve


@dataclass
class Pick:
    value: str  # DEFAULT_REF, an alias, or a version number
    label: str


def version_picks(versions: list[VersionRow], aliases: list[AliasRow]) -> list[Pick]:
    """What the version picker offers: what serves without ?version, each alias, each servable version."""
    production = next((a.version for a in aliases if a.alias == "production"), None)
    default = f"Default: production → v{production}" if production else "Default: newest active version"
    return [Pick(DEFAULT_REF, default),
            *[Pick(a.alias, f"{a.alias} → v{a.version}") for a in aliases],
            *[Pick(str(v.version), f"v{v.version}" + (" (deprecated)" if v.status == "deprecated" else ""))
              for v in versions if v.status in SERVABLE]]


def shown(value) -> str:
    return value if isinstance(value, str) else json.dumps(value)


def where(details) -> str:
    """'column 'x', row 3' from an error's details, when it names them."""
    if not isinstance(details, dict):
        return ""
    parts = [f"column {details['column']!r}" if details.get("column") is not None else "",
             f"row {details['row']}" if details.get("row") is not None else ""]
    return ", ".join(p for p in parts if p)


class ModelTestState(ModelDetailState):
    picks: list[Pick] = []
    ref: str = DEFAULT_REF
    serving_version: int = 0  # the version `ref` resolves to (OIP's path names it)
    serving_label: str = ""
    tab_error: str = ""  # why nothing can be tested (no version serves, an archived pick)
    input_kind: str = ""
    n_columns: int = 0
    form_fields: list[snip.FormField] = []
    form_values: dict[str, str] = {}
    test_mode: str = "form"  # "form" or "paste"
    pasted: str = ""
    running: bool = False
    answered: bool = False
    answer_version: int = 0
    answer_rows: int = 0
    answer_predictions: list[str] = []
    cache_flag: str = ""  # "hit" or "miss"
    answer_deprecated: bool = False
    total_ms: str = ""
    model_ms: str = ""  # empty when the model did not run (a cache hit)
    proba_classes: list[str] = []
    proba_values: list[float] = []
    error: str = ""
    error_where: str = ""
    snippet_kind: str = "curl"
    snippet: str = ""
    key_secret: str = ""  # a key made here, shown once: only in this tab, until it is left
    key_name: str = ""
    _signature: dict = {}
    _examples: dict[str, str] = {}  # "json" / "csv" -> the example row as a body
    _prepared_for: str = ""  # "<model>|<owner>|<ref>|<sha256>" the form was built for

    @rx.var
    def proba_figure(self) -> go.Figure:
        figure = go.Figure(go.Bar(x=self.proba_classes, y=self.proba_values, marker_color="#6e56cf"))
        figure.update_layout(height=260, margin={"l": 50, "r": 10, "t": 10, "b": 40},
                             xaxis={"type": "category", "title": "class"},
                             yaxis={"range": [0, 1], "title": "probability"})
        return figure

    @rx.event
    @guarded
    async def open_tab(self):
        """The tab was shown: offer the current versions and aliases, (re)build the form if the
        version that answers changed since."""
        self.picks = version_picks(self.versions, self.aliases)
        if not any(p.value == self.ref for p in self.picks):
            self.ref = DEFAULT_REF
        await self._load_version()

    @rx.event
    def leave_tab(self):
        self.key_secret, self.key_name = "", ""  # shown once: gone when the tab goes
        self._refresh_snippet()

    @rx.event
    @guarded
    async def pick(self, ref: str):
        self.ref = ref
        await self._load_version()

    async def _load_version(self) -> None:
        principal, (name, owner) = await self._principal(), self._target()
        try:
            resolved = await asyncio.to_thread(registry.resolve_version, principal, name, self._ref(), owner=owner)
        except MLPlatformError as exc:  # no version serves, or the pick was archived meanwhile
            self.tab_error, self.form_fields, self.serving_version, self._prepared_for = exc.message, [], 0, ""
            self._clear_answer()
            return
        self.tab_error = ""
        self.serving_version = resolved.version
        self.serving_label = f"v{resolved.version}" + (f" ({resolved.alias})" if resolved.alias else "")
        prepared = f"{name}|{owner}|{self.ref}|{resolved.sha256}|{resolved.version}"
        if prepared != self._prepared_for:  # keep what the person typed while the version stays
            self._prepared_for = prepared
            self._show_version(resolved.signature)
        self._refresh_snippet()

    def _ref(self) -> str | None:
        return None if self.ref == DEFAULT_REF else self.ref

    def _show_version(self, signature: dict) -> None:
        self._signature = signature
        self.input_kind, self.n_columns = str(signature.get("input_kind", "")), len(model_columns(signature))
        self.form_fields = snip.form_fields(signature)
        example = snip.example_row(signature)
        names, row = example if example else ([], [])
        values = dict(zip(names, row))
        self.form_values = {f.name: snip.as_text(values.get(f.name)) for f in self.form_fields}
        self._examples = {"json": snip.split_body(names, [row], indent=2), "csv": snip.csv_body(names, [row])} \
            if example else {"json": "", "csv": ""}
        self.test_mode = "form" if self.form_fields else "paste"
        self.pasted = self._examples["json"]
        self._clear_answer()

    def _clear_answer(self) -> None:
        self.answered, self.error, self.error_where = False, "", ""
        self.proba_classes, self.proba_values, self.answer_predictions = [], [], []

    @rx.event
    def set_field(self, name: str, value: str):
        self._set_value(name, value)

    @rx.event
    def set_flag(self, name: str, checked: bool):
        self._set_value(name, "true" if checked else "false")

    def _set_value(self, name: str, value: str) -> None:
        self.form_values[name] = value
        self._refresh_snippet()

    @rx.event
    def set_mode(self, mode: str | list[str]):  # a segmented control may be multi-select: not this one
        self.test_mode = "paste" if mode == "paste" or not self.form_fields else "form"
        self._refresh_snippet()

    @rx.event
    def set_pasted(self, text: str):
        self.pasted = text
        self._refresh_snippet()

    @rx.event
    def use_example(self, fmt: str):
        self.pasted = self._examples.get(fmt, "")
        self._refresh_snippet()

    @rx.event
    def show_snippet(self, kind: str | list[str]):
        self.snippet_kind = kind if kind in ("curl", "python", "oip") else "curl"
        self._refresh_snippet()

    def _input(self) -> tuple[str, str]:
        """(body, content type) of what the tab would send now."""
        if self.test_mode == "form" and self.form_fields:
            names = [f.name for f in self.form_fields]
            return snip.split_body(names, [snip.form_row(self.form_fields, self.form_values)]), "application/json"
        return self.pasted, snip.content_type_of(self.pasted)

    @rx.event
    async def predict(self):
        self.running, self.error, self.error_where = True, "", ""
        yield
        try:
            result, trace = await self._call()
            self._show_answer(result, trace)
        except AuthenticationFailed:
            yield rx.redirect(login_url(self.router.url.path))
        except MLPlatformError as exc:
            self._clear_answer()
            self.error, self.error_where = exc.message, where(exc.details)
            yield toast_for(exc)
        finally:
            self.running = False

    async def _call(self) -> tuple[PredictionResult, Trace]:
        (name, owner), (body, content_type) = self._target(), self._input()
        cookie, ref, trace = self.router.headers.cookie, self._ref(), Trace(source="ui", model=name, body=body.encode())

        async def call(principal: Principal) -> PredictionResult:
            return await predictions.predict(principal, name, trace.body, content_type=content_type,
                                             version_ref=ref, proba=True, owner=owner, trace=trace)

        # the session is checked inside the logged call, so a lapsed session is logged too
        authenticate = partial(browser.principal_from_cookie_header, cookie)
        result = await predictions.logged(trace, authenticate, call)
        return result, trace

    def _show_answer(self, result: PredictionResult, trace: Trace) -> None:
        self.answered, self.answer_version, self.answer_rows = True, result.version, result.n_rows
        self.answer_predictions = [shown(p) for p in result.predictions[:SHOWN_PREDICTIONS]]
        self.cache_flag, self.answer_deprecated = "hit" if result.cached else "miss", result.deprecated
        self.total_ms = f"{trace.elapsed_ms():.1f} ms"
        model = trace.timings.get("model")
        self.model_ms = f"{model:.1f} ms" if model is not None and not result.cached else ""
        first = (result.probabilities or [[]])[0]
        self.proba_classes = [shown(c) for c in result.classes or []] if first else []
        self.proba_values = [p if p is not None else 0.0 for p in first]

    @rx.event
    @guarded
    async def create_key(self):
        principal, (name, _owner) = await self._principal(), self._target()
        created = await asyncio.to_thread(api_keys.create_key, principal, f"test-{name}", [Scope.predict.value])
        self.key_secret, self.key_name = created.secret, created.record.name
        self._refresh_snippet()
        return rx.toast.success(f"Key “{created.record.name}” created: store it now, it is shown only once")

    def _refresh_snippet(self) -> None:
        if not self.serving_version:
            self.snippet = ""
            return
        name, owner = self._target()
        body, content_type = self._input()
        call = snip.Call(base_url=get_settings().public_url.rstrip("/"), model=name, version_ref=self._ref(),
                         version=self.serving_version, body=body, content_type=content_type,
                         proba=bool((self._signature.get("methods") or {}).get("predict_proba")),
                         key=self.key_secret, owner=owner)
        if self.snippet_kind == "python":
            self.snippet = snip.python_snippet(call)
        elif self.snippet_kind == "oip":
            self.snippet = self._oip_snippet(call)
        else:
            self.snippet = snip.curl_snippet(call)

    def _oip_snippet(self, call: snip.Call) -> str:
        """The same input as OIP tensors: parsed the way the service parses it, typed by the signature."""
        try:
            fmt = predictions.input_format(call.content_type)
            table = predictions.body_parser(call.body.encode(), fmt)(
                self._signature, predictions.input_limits(get_settings()))
        except MLPlatformError as exc:
            return f"# Fix the input first: {exc.message}"
        dtypes = {n: str(f.get("dtype", "float64")) for n, f in model_columns(self._signature)}
        names = list(table.names)
        columns = [[snip.typed(v, dtypes.get(n, "float64")) if table.text_cells else v for v in values]
                   for n, values in zip(names, table.column_values())]
        body = snip.oip_body(names, [dtypes.get(n, "float64") for n in names], columns, proba=call.proba,
                             matrix=self._signature.get("input_kind") == "array" and names == list(dtypes))
        return snip.oip_snippet(call, body)
