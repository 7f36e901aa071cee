"""Pieces the model pages share: formatting, badges, alias chips, refusals in plain words, and the
ready-to-run upload example."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

import reflex as rx

# What each upload-gate refusal code means to a person; the gate's reason (which names the
# offending global or limit) follows the colon.
REFUSALS = {
    "unsafe_model": "This file tries to use something that is not allowed in a model",
    "not_an_estimator": "This file loads, but what it holds is not a scikit-learn model the platform can serve",
    "unsupported_format": "This is not a pickle or joblib file the platform can read",
    "version_mismatch": "This model needs library versions other than the ones the platform runs",
    "load_failed": "The file could not be loaded as a model",
    "resource_limit": "Loading or testing this model went over a limit",
}


@dataclass
class AliasRef:
    alias: str
    version: int


def alias_refs(aliases: dict[str, int]) -> list[AliasRef]:
    return [AliasRef(alias, version) for alias, version in sorted(aliases.items())]


def refusal_sentence(code: str, reason: str) -> str:
    lead = REFUSALS.get(code, "The model was refused")
    return f"{lead}: {reason}" if reason else f"{lead}."


def when(moment: datetime | None, never: str = "never") -> str:
    return moment.strftime("%Y-%m-%d %H:%M UTC") if moment else never


def seconds(value: float) -> str:
    return f"{value * 1000:.0f} ms" if value < 1 else f"{value:.2f} s"


def human_bytes(count: int | None) -> str:
    if count is None:
        return "—"
    size = float(count)
    for unit in ("B", "KB", "MB", "GB"):
        if size < 1024 or unit == "GB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return f"{size:.1f} GB"


def status_badge(status) -> rx.Component:
    return rx.match(
        status,
        ("active", rx.badge("active", color_scheme="green")),
        ("deprecated", rx.badge("deprecated", color_scheme="orange")),
        ("archived", rx.badge("archived", color_scheme="gray")),
        ("deleted", rx.badge("deleted", color_scheme="red")),
        rx.badge(status, color_scheme="gray"),
    )


def alias_chip(alias: AliasRef, size: str = "1") -> rx.Component:
    return rx.badge(
        rx.icon("tag", size=12),
        alias.alias,
        " → v",
        alias.version,
        size=size,
        color_scheme=rx.cond(alias.alias == "production", "indigo", "cyan"),
        variant="soft",
        class_name="alias-chip",
    )


def python_example() -> str:
    return (
        "# pip install scikit-learn joblib\n"
        "import joblib\n"
        "from sklearn.datasets import load_iris\n"
        "from sklearn.linear_model import LogisticRegression\n\n"
        "X, y = load_iris(return_X_y=True, as_frame=True)\n"
        "model = LogisticRegression(max_iter=500).fit(X, y)\n"
        'joblib.dump(model, "model.joblib")\n'
    )


def curl_example(base_url: str, name: str = "iris") -> str:
    return (
        f"curl -X POST {base_url}/api/v1/models/{name}/versions \\\n"
        '  -H "Authorization: Bearer $MLP_KEY" \\\n'
        "  -F file=@model.joblib \\\n"
        '  -F description="Iris species, logistic regression"'
    )


def copyable(code: str, language: str, element_id: str) -> rx.Component:
    return rx.box(
        rx.code_block(code, language=language, id=element_id, wrap_long_lines=True),
        rx.icon_button(
            rx.icon("copy", size=14),
            size="1",
            variant="soft",
            on_click=[rx.set_clipboard(code), rx.toast.success("Copied to the clipboard")],
            class_name="copy-button",
            aria_label="Copy",
        ),
        class_name="copyable",
        width="100%",
    )
