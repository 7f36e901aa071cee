"""The Test tab's pure parts: the form a version's signature implies, the request body a form
becomes, and ready-to-run snippets (curl, Python `requests`, OIP v2) for the same input.

No Reflex and no I/O here, so every piece is unit-tested on its own."""

from __future__ import annotations

import csv
import io
import json
import math
import pprint
import shlex
import textwrap
from dataclasses import dataclass
from urllib.parse import quote, urlencode

from mlplatform.services.prediction_columns import model_columns

KEY_PLACEHOLDER = "$MLPLATFORM_API_KEY"
# Wider models get no form (hundreds of inputs help nobody, and each is a websocket value): the
# JSON / CSV mode takes their input instead.
MAX_FORM_FIELDS = 300
# Wider models get no prefilled example body: it would not fit a websocket frame (1 MB).
MAX_EXAMPLE_COLUMNS = 5000
MAX_SELECT_OPTIONS = 200  # more categories than this: a text input (a select that long is unusable)
MATRIX_INPUT = "input-0"  # OIP's usual name for an array model's one 2-D input tensor
OIP_DATATYPES = {"float64": "FP64", "int64": "INT64", "bool": "BOOL", "string": "BYTES"}


@dataclass
class FormField:
    """One input of the form: a model column and how the form asks for it."""

    id: str  # the element id (column names may hold spaces and brackets)
    name: str  # the column, as the request body names it
    dtype: str  # float64 | int64 | bool | string
    kind: str  # number | integer | switch | select | text | textarea
    options: list[str]  # a select's choices: the categories seen in training, as text


def _kind(feature: dict, input_kind: str) -> str:
    dtype = feature.get("dtype", "")
    if dtype == "bool":  # an encoder lists [false, true] as its categories: still a yes/no
        return "switch"
    if input_kind == "text":
        return "textarea"
    options = _options(feature)
    if options and len(options) <= MAX_SELECT_OPTIONS:
        return "select"
    return {"float64": "number", "int64": "integer"}.get(dtype, "text")


def _options(feature: dict) -> list[str]:
    # Radix selects cannot hold an empty value: such a category can still be sent as JSON / CSV.
    return [as_text(c) for c in feature.get("categories") or [] if as_text(c) != ""]


def form_fields(signature: dict) -> list[FormField]:
    """The form for a version, or [] when the model is too wide for one."""
    columns = model_columns(signature)
    if len(columns) > MAX_FORM_FIELDS:
        return []
    fields = []
    for i, (name, feature) in enumerate(columns):
        kind = _kind(feature, signature.get("input_kind", ""))
        fields.append(FormField(f"field-{i}", name, str(feature.get("dtype", "float64")), kind,
                                _options(feature) if kind == "select" else []))
    return fields


def example_row(signature: dict) -> tuple[list[str], list] | None:
    """(column names, the signature's example row) with the columns an abbreviated array signature
    implies filled in as 0.0; None when the model is too wide to show one."""
    columns = model_columns(signature)
    if len(columns) > MAX_EXAMPLE_COLUMNS:
        return None
    example = signature.get("example") or {}
    return [n for n, _ in columns], [example.get(n, 0.0) for n, _ in columns]


def as_text(value) -> str:
    """A JSON value as a form shows it (true/false for booleans, nothing for null)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def typed(text: str, dtype: str):
    """A form's text as the JSON value the column wants. Text that is not a valid value is sent as
    it is, so the service's validation names the column and row rather than the form guessing."""
    text = text.strip() if dtype != "string" else text
    if dtype == "string":
        return text
    if text == "":
        return None
    if dtype == "bool":
        return {"true": True, "false": False}.get(text.lower(), text)
    try:
        number = int(text) if dtype == "int64" and text.lstrip("+-").isdigit() else float(text)
    except ValueError:
        return text
    return number if math.isfinite(number) else text


def form_row(fields: list[FormField], values: dict[str, str]) -> list:
    return [typed(values.get(f.name, ""), f.dtype) for f in fields]


def split_body(names: list[str], rows: list[list], indent: int | None = None) -> str:
    """MLflow's dataframe_split: what the form sends, and the JSON example."""
    return json.dumps({"dataframe_split": {"columns": names, "data": rows}}, indent=indent)


def csv_body(names: list[str], rows: list[list]) -> str:
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\n")
    writer.writerow(names)
    writer.writerows([[as_text(v) for v in row] for row in rows])
    return out.getvalue()


def content_type_of(text: str) -> str:
    """A pasted body is JSON when it starts like a JSON object or list, else CSV."""
    return "application/json" if text.lstrip()[:1] in ("{", "[") else "text/csv"


@dataclass(frozen=True)
class Call:
    """What a snippet sends: where, as whom, and the input."""

    base_url: str  # the platform's public address, no trailing slash
    model: str
    version_ref: str | None  # what ?version= names; None: the version served by default
    version: int  # the number that answered (OIP's path needs one)
    body: str
    content_type: str
    proba: bool  # a classifier with predict_proba: ask for probabilities too
    key: str = ""  # a real API key; empty: the KEY_PLACEHOLDER environment variable
    owner: str | None = None  # an administrator testing someone else's model


def _query(call: Call) -> dict[str, str]:
    return {k: v for k, v in (("version", call.version_ref), ("proba", "true" if call.proba else None),
                              ("owner", call.owner)) if v}


def _predict_url(call: Call) -> str:
    return f"{call.base_url}/api/v1/models/{quote(call.model)}/predict"


def rest_url(call: Call) -> str:
    query = _query(call)
    return _predict_url(call) + ("?" + urlencode(query) if query else "")


def oip_url(call: Call) -> str:
    return f"{call.base_url}/v2/models/{quote(call.model)}/versions/{call.version}/infer"


def _curl(url: str, key: str, content_type: str, body: str) -> str:
    auth = shlex.quote(f"Authorization: Bearer {key}") if key else f'"Authorization: Bearer {KEY_PLACEHOLDER}"'
    return (f"curl -X POST {shlex.quote(url)} \\\n"
            f"  -H {auth} \\\n"
            f"  -H {shlex.quote('Content-Type: ' + content_type)} \\\n"
            f"  --data-binary {shlex.quote(body)}")


def curl_snippet(call: Call) -> str:
    return _curl(rest_url(call), call.key, call.content_type, call.body)


def python_snippet(call: Call) -> str:
    if call.key:
        lines, auth = ["import requests"], repr(f"Bearer {call.key}")
    else:
        lines, auth = ["import os", "", "import requests"], '"Bearer " + os.environ["MLPLATFORM_API_KEY"]'
    headers = f'{{"Authorization": {auth}}}'
    payload = _python_payload(call)
    if not payload.startswith("json="):
        headers = f'{{"Authorization": {auth}, "Content-Type": {call.content_type!r}}}'
    params = f"    params={_query(call)!r},\n" if _query(call) else ""
    return ("\n".join(lines) + "\n\nresponse = requests.post(\n"
            f"    {_predict_url(call)!r},\n{params}    headers={headers},\n    {payload},\n    timeout=30,\n)\n"
            "response.raise_for_status()\nprint(response.json())\n")


def _python_payload(call: Call) -> str:
    if call.content_type == "application/json":
        try:
            literal = pprint.pformat(json.loads(call.body), width=88, sort_dicts=False)
            return "json=" + textwrap.indent(literal, "    ").lstrip()
        except ValueError:  # sent as typed, so the server's answer says what is wrong with it
            pass
    return f"data={call.body!r}"


def oip_body(names: list[str], dtypes: list[str], columns: list[list], *, matrix: bool, proba: bool) -> str:
    """The input as Open Inference Protocol v2 tensors, shaped like the model's OIP metadata says:
    an array model with one column type takes one 2-D tensor `input-0` (row-major data), any other
    one 1-D tensor per column. A classifier with probabilities asks for both outputs."""
    if matrix and len(set(dtypes)) == 1:
        rows = [list(row) for row in zip(*columns)]
        tensors = [{"name": MATRIX_INPUT, "shape": [len(rows), len(names)],
                    "datatype": OIP_DATATYPES.get(dtypes[0], "FP64"), "data": [v for row in rows for v in row]}]
    else:
        tensors = [{"name": name, "shape": [len(values)], "datatype": OIP_DATATYPES.get(dtype, "BYTES"),
                    "data": list(values)} for name, dtype, values in zip(names, dtypes, columns)]
    request: dict = {"inputs": tensors}
    if proba:
        request["outputs"] = [{"name": "predict"}, {"name": "predict_proba"}]
    return json.dumps(request)


def oip_snippet(call: Call, body: str) -> str:
    return _curl(oip_url(call), call.key, "application/json", body)
