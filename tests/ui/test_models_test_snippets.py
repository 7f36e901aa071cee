"""The Test tab's pure parts: the form a signature implies, the bodies it sends (which the service's
own parser and validation accept), and snippets that run as written."""

from __future__ import annotations

import json
import shlex
import sys
import types

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from mlplatform.errors import InvalidInput
from mlplatform.inference.signature import describe
from mlplatform.services.prediction_columns import to_batch
from mlplatform.services.prediction_inputs import Limits, parse_csv, parse_json
from mlplatform.ui.pages import models_test_snippets as snip
from mlplatform.ui.pages.models_detail_state import AliasRow
from mlplatform.ui.pages.models_test_state import DEFAULT_REF, version_picks, where
from tests.prediction_support import signature

LIMITS = Limits(max_rows=100, max_cells=1_000_000)


def form_body(sig: dict) -> bytes:
    """What the form sends untouched: the example row, through the form's text values."""
    fields = snip.form_fields(sig)
    names, row = snip.example_row(sig)
    values = {n: snip.as_text(v) for n, v in zip(names, row)}
    return snip.split_body([f.name for f in fields], [snip.form_row(fields, values)]).encode()


def test_form_asks_each_column_the_right_way():
    fields = snip.form_fields(signature("mixed"))
    assert [(f.name, f.dtype, f.kind) for f in fields] == [
        ("size", "float64", "number"), ("color", "string", "select"), ("n", "int64", "select"),
        ("flag", "bool", "switch")]
    assert fields[1].options == ["blue", "green", "red"] and fields[2].options == ["1", "2", "3"]
    assert [f.id for f in fields] == ["field-0", "field-1", "field-2", "field-3"]
    assert [f.kind for f in snip.form_fields(signature("imputed"))] == ["number"] * 4
    text = snip.form_fields(signature("text"))
    assert [(f.name, f.kind) for f in text] == [("text", "textarea")]


@pytest.mark.parametrize("kind", ["mixed", "imputed", "text", "hgb"])
def test_prefilled_form_and_examples_pass_the_services_validation(kind):
    sig = signature(kind)
    batch = to_batch(parse_json(form_body(sig), [f.name for f in snip.form_fields(sig)], LIMITS), sig)
    assert batch.n_rows == 1
    names, row = snip.example_row(sig)
    assert to_batch(parse_json(snip.split_body(names, [row], indent=2).encode(), names, LIMITS), sig).n_rows == 1
    assert to_batch(parse_csv(snip.csv_body(names, [row]).encode(), names, LIMITS), sig).n_rows == 1


def test_form_values_typed_by_column():
    sig = signature("mixed")
    fields = snip.form_fields(sig)
    row = snip.form_row(fields, {"size": "2.5", "color": "red", "n": "3", "flag": "true"})
    assert row == [2.5, "red", 3, True]
    batch = to_batch(parse_json(snip.split_body([f.name for f in fields], [row]).encode(),
                                [f.name for f in fields], LIMITS), sig)
    assert batch.values[2].dtype == np.int64 and batch.values[3].dtype == np.bool_


@pytest.mark.parametrize(("text", "dtype", "value"), [
    ("1.5", "float64", 1.5), (" 2 ", "float64", 2.0), ("", "float64", None), ("abc", "float64", "abc"),
    ("nan", "float64", "nan"), ("inf", "float64", "inf"), ("3", "int64", 3), ("-3", "int64", -3),
    ("1.0", "int64", 1.0), ("false", "bool", False), ("TRUE", "bool", True), ("yes", "bool", "yes"),
    ("", "string", ""), (" a b ", "string", " a b "),
])
def test_typed_leaves_what_it_cannot_type_to_the_service(text, dtype, value):
    assert snip.typed(text, dtype) == value and type(snip.typed(text, dtype)) is type(value)


def test_invalid_form_text_is_refused_by_the_service_naming_the_column():
    sig = signature("mixed")
    fields = snip.form_fields(sig)
    row = snip.form_row(fields, {"size": "abc", "color": "red", "n": "1", "flag": "false"})
    body = snip.split_body([f.name for f in fields], [row]).encode()
    with pytest.raises(InvalidInput) as caught:
        to_batch(parse_json(body, [f.name for f in fields], LIMITS), sig)
    assert caught.value.details == {"column": "size", "row": 0}


def test_wide_models_get_no_form_but_a_full_example():
    X = np.random.default_rng(0).normal(size=(20, 1200))
    sig = describe(LogisticRegression(max_iter=50).fit(X, [0, 1] * 10))
    assert len(sig["features"]) < sig["n_features"] == 1200  # an abbreviated signature
    assert snip.form_fields(sig) == []
    names, row = snip.example_row(sig)
    assert names[-1] == "f1199" and len(row) == 1200
    assert to_batch(parse_json(snip.split_body(names, [row]).encode(), names, LIMITS), sig).n_rows == 1
    too_wide = {"input_kind": "array", "n_features": snip.MAX_EXAMPLE_COLUMNS + 1, "features": [], "example": {}}
    assert snip.example_row(too_wide) is None


def test_content_type_of_a_paste():
    assert snip.content_type_of('  {"instances": [[1]]}') == "application/json"
    assert snip.content_type_of("[1, 2]") == "application/json"
    assert snip.content_type_of("a,b\n1,2\n") == "text/csv"


def call(**changes) -> snip.Call:
    fields = {"base_url": "http://models.example.com:8000", "model": "iris", "version_ref": "3", "version": 3,
              "body": json.dumps({"dataframe_split": {"columns": ["a", "b"], "data": [[1.5, "it's"]]}}),
              "content_type": "application/json", "proba": True}
    return snip.Call(**{**fields, **changes})


def test_curl_snippet_is_one_shell_command_with_the_exact_body():
    words = shlex.split(snip.curl_snippet(call()).replace("\\\n", " "))
    assert words[:4] == ["curl", "-X", "POST", "http://models.example.com:8000/api/v1/models/iris/predict?version=3&proba=true"]
    assert words[4:8] == ["-H", "Authorization: Bearer $MLPLATFORM_API_KEY", "-H", "Content-Type: application/json"]
    assert words[8] == "--data-binary" and json.loads(words[9]) == json.loads(call().body)  # a quote survives
    assert '"Authorization: Bearer $MLPLATFORM_API_KEY"' in snip.curl_snippet(call())  # the shell expands it


def test_snippets_with_a_key_and_the_default_version():
    text = snip.curl_snippet(call(key="mlp_abcd1234_secret", version_ref=None, proba=False))
    assert "mlp_abcd1234_secret" in text and snip.KEY_PLACEHOLDER not in text
    assert shlex.split(text)[3] == "http://models.example.com:8000/api/v1/models/iris/predict"  # the default
    csv_text = snip.curl_snippet(call(body="a,b\n1,2\n", content_type="text/csv"))
    assert shlex.split(csv_text.replace("\\\n", " "))[-1] == "a,b\n1,2\n"
    admin = snip.rest_url(call(owner="ann@example.com"))
    assert admin.endswith("?version=3&proba=true&owner=ann%40example.com")


class Posted:
    def __init__(self):
        self.calls = []

    def post(self, url, **kwargs):
        self.calls.append((url, kwargs))
        return types.SimpleNamespace(raise_for_status=lambda: None, json=lambda: {"predictions": [0]})


def run_python(snippet: str, monkeypatch) -> tuple[str, dict]:
    requests = Posted()
    monkeypatch.setitem(sys.modules, "requests", types.SimpleNamespace(post=requests.post))
    exec(compile(snippet, "snippet.py", "exec"), {})
    assert len(requests.calls) == 1
    return requests.calls[0]


def test_python_snippet_runs_and_posts_the_same_call(monkeypatch, capsys):
    monkeypatch.setenv("MLPLATFORM_API_KEY", "mlp_from_env")
    url, kwargs = run_python(snip.python_snippet(call()), monkeypatch)
    assert url == "http://models.example.com:8000/api/v1/models/iris/predict"
    assert kwargs["params"] == {"version": "3", "proba": "true"}
    assert kwargs["headers"] == {"Authorization": "Bearer mlp_from_env"}
    assert kwargs["json"] == json.loads(call().body) and kwargs["timeout"] == 30
    assert "{'predictions': [0]}" in capsys.readouterr().out

    url, kwargs = run_python(snip.python_snippet(call(body="a,b\n1,2\n", content_type="text/csv", key="mlp_k",
                                                      version_ref=None, proba=False)), monkeypatch)
    assert "params" not in kwargs and kwargs["data"] == "a,b\n1,2\n"
    assert kwargs["headers"] == {"Authorization": "Bearer mlp_k", "Content-Type": "text/csv"}
    _, kwargs = run_python(snip.python_snippet(call(body="{not json")), monkeypatch)
    assert kwargs["data"] == "{not json"  # sent as typed: the server's answer says what is wrong


def test_oip_snippet_sends_one_tensor_per_column():
    body = snip.oip_body(["size", "color", "n", "flag"], ["float64", "string", "int64", "bool"],
                         [[1.5, 2.0], ["red", "blue"], [1, 2], [True, False]], matrix=False, proba=True)
    assert json.loads(body) == {"inputs": [
        {"name": "size", "shape": [2], "datatype": "FP64", "data": [1.5, 2.0]},
        {"name": "color", "shape": [2], "datatype": "BYTES", "data": ["red", "blue"]},
        {"name": "n", "shape": [2], "datatype": "INT64", "data": [1, 2]},
        {"name": "flag", "shape": [2], "datatype": "BOOL", "data": [True, False]}],
        "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    words = shlex.split(snip.oip_snippet(call(version_ref="staging"), body).replace("\\\n", " "))
    assert words[3] == "http://models.example.com:8000/v2/models/iris/versions/3/infer"  # OIP names a number
    assert json.loads(words[-1]) == json.loads(body)


def test_oip_snippet_sends_an_array_model_one_matrix():
    body = snip.oip_body(["f0", "f1"], ["float64", "float64"], [[1.0, 3.0], [2.0, 4.0]], matrix=True, proba=False)
    assert json.loads(body) == {"inputs": [{"name": "input-0", "shape": [2, 2], "datatype": "FP64",
                                            "data": [1.0, 2.0, 3.0, 4.0]}]}  # row-major
    mixed = snip.oip_body(["f0", "f1"], ["float64", "string"], [[1.0], ["a"]], matrix=True, proba=False)
    assert [t["name"] for t in json.loads(mixed)["inputs"]] == ["f0", "f1"]


def test_version_picks_and_error_places():
    from mlplatform.ui.pages.models_detail_state import VersionRow

    def row(version: int, status: str) -> VersionRow:
        return VersionRow(version, status, "", "", "", "", "", "", "", [], "", "", "")

    picks = version_picks([row(3, "archived"), row(2, "deprecated"), row(1, "active")],
                          [AliasRow("production", 1, 0, ""), AliasRow("staging", 2, 0, "")])
    assert [(p.value, p.label) for p in picks] == [
        (DEFAULT_REF, "Default: production → v1"), ("production", "production → v1"),
        ("staging", "staging → v2"), ("2", "v2 (deprecated)"), ("1", "v1")]
    assert version_picks([row(1, "active")], [])[0].label == "Default: newest active version"
    assert where({"column": "color", "row": 0}) == "column 'color', row 0"
    assert where({"column": None, "row": None}) == "" and where(None) == "" and where({"row": 4}) == "row 4"
