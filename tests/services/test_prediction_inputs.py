"""Prediction bodies -> tables: MLflow's four JSON shapes and CSV, and every structure error
(named column and row, sizes refused before anything is built)."""

from __future__ import annotations

import json

import pytest

from mlplatform.errors import InvalidInput, MLPlatformError, UnsupportedMediaType
from mlplatform.services.prediction_inputs import Limits, Table, parse_csv, parse_json

NAMES = ["a", "b", "c"]
LIMITS = Limits(max_rows=5, max_cells=12)
ROWS = [[1, 2.0, "x"], [1.5, 3, "y"]]


def parsed(document, names=NAMES, limits=LIMITS) -> Table:
    return parse_json(json.dumps(document).encode(), names, limits)


def by_name(table: Table) -> dict[str, list]:
    return {name: list(values) for name, values in zip(table.names, table.column_values())}


def refusal(call, *args) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args)
    assert set(caught.value.details) == {"column", "row"}
    return caught.value


EXPECTED = {"a": [1, 1.5], "b": [2.0, 3], "c": ["x", "y"]}


@pytest.mark.parametrize("document", [
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": ROWS}},
    {"dataframe_split": {"columns": ["c", "a", "b"], "data": [["x", 1, 2.0], ["y", 1.5, 3]]}},
    {"dataframe_split": {"data": ROWS}},
    {"dataframe_split": {"columns": ["a", "b", "c"], "data": ROWS, "index": [7, 8]}},
    {"dataframe_records": [{"a": 1, "b": 2.0, "c": "x"}, {"c": "y", "b": 3, "a": 1.5}]},
    {"instances": ROWS},
    {"instances": [{"a": 1, "b": 2.0, "c": "x"}, {"a": 1.5, "b": 3, "c": "y"}]},
    {"inputs": ROWS},
    {"inputs": {"b": [2.0, 3], "a": [1, 1.5], "c": ["x", "y"]}},
], ids=["split", "split_reordered", "split_positional", "split_index", "records", "instances_rows",
        "instances_records", "inputs_rows", "inputs_columns"])
def test_every_json_shape_gives_the_same_columns(document):
    table = parsed(document)
    assert table.n_rows == 2 and not table.text_cells
    assert by_name(table) == EXPECTED


def test_single_values_are_rows_of_a_one_column_model():
    for field in ("instances", "inputs"):
        table = parsed({field: ["good movie", "bad"]}, names=["text"])
        assert by_name(table) == {"text": ["good movie", "bad"]}
    error = refusal(parsed, {"instances": [1.0, 2.0]})
    assert "3 columns" in error.message and error.code == "invalid_row"
    error = refusal(parsed, {"instances": ["ok", ["nested"]]}, ["text"])
    assert error.details == {"column": "text", "row": 1}


@pytest.mark.parametrize("document, code, column, row", [
    ({"dataframe_split": {"columns": ["a", "b"], "data": [[1, 2]]}}, "missing_column", "c", None),
    ({"dataframe_split": {"columns": ["a", "b", "c", "d"], "data": [[1, 2, 3, 4]]}}, "unknown_column", "d", None),
    ({"dataframe_split": {"columns": ["a", "a", "b"], "data": [[1, 2, 3]]}}, "duplicate_column", "a", None),
    ({"dataframe_split": {"data": [[1, 2, "x"], [1, 2]]}}, "invalid_row", None, 1),
    ({"dataframe_records": [{"a": 1, "b": 2, "c": "x"}, {"a": 1, "c": "x"}]}, "missing_column", "b", 1),
    ({"dataframe_records": [{"a": 1, "b": 2, "c": "x", "zz": 0}]}, "unknown_column", "zz", 0),
    ({"dataframe_records": [{"a": 1, "b": 2, "c": "x"}, [1, 2, "x"]]}, "invalid_row", None, 1),
    ({"instances": [[1, 2, "x"], {"a": 1}]}, "invalid_row", None, 1),
    ({"inputs": {"a": [1, 2], "b": [1, 2], "c": ["x"]}}, "invalid_row", "c", None),
    ({"inputs": {"a": [1], "b": [1], "c": "x"}}, "invalid_body", "c", None),
    ({"inputs": {"a": [1], "b": [1]}}, "missing_column", "c", None),
])
def test_structure_errors_name_the_column_and_row(document, code, column, row):
    error = refusal(parsed, document)
    assert (error.code, error.details) == (code, {"column": column, "row": row}), error.message
    if column:
        assert repr(column) in error.message
    if row is not None:
        assert f"row {row}" in error.message.lower()


@pytest.mark.parametrize("document", [
    [[1, 2, 3]], {"rows": [[1, 2, 3]]}, {"instances": ROWS, "inputs": ROWS}, {}, {"instances": ROWS, "params": {}},
    {"dataframe_split": [[1, 2, 3]]}, {"dataframe_split": {"columns": ["a"]}},
    {"dataframe_split": {"data": ROWS, "dtypes": {}}}, {"dataframe_records": {"a": 1}},
    {"dataframe_split": {"columns": [1, 2, 3], "data": ROWS}},
])
def test_bodies_of_another_shape_are_refused_with_the_accepted_shapes(document):
    error = refusal(parsed, document)
    assert error.code == "invalid_body"


def test_the_accepted_shapes_are_listed_when_the_shape_is_wrong():
    assert "dataframe_split" in refusal(parsed, {"rows": []}).message


@pytest.mark.parametrize("body", [b"", b"{", b"[1, 2", b"\xff\xfe", b"[" * 100_000 + b"]" * 100_000])
def test_malformed_json_is_its_own_error(body):
    with pytest.raises(MLPlatformError) as caught:
        parse_json(body, NAMES, LIMITS)
    assert caught.value.code == "malformed_json" and not isinstance(caught.value, InvalidInput)


def test_empty_input_and_too_many_rows_or_values_are_refused_before_building():
    for document in ({"instances": []}, {"dataframe_records": []}, {"dataframe_split": {"data": []}},
                     {"inputs": {"a": [], "b": [], "c": []}}):
        assert refusal(parsed, document).code == "empty_input"
    assert refusal(parse_csv, b"a,b,c\n" + b"1,2,3\n" * 5, NAMES, LIMITS).code == "too_many_values"
    error = refusal(parsed, {"instances": [[1, 2, 3]] * 6})
    assert error.code == "too_many_rows" and error.details["row"] == 5 and "5" in error.message
    # 4 rows x 3 columns fit in 12 cells; 5 x 3 do not (though 5 rows are allowed)
    assert parsed({"instances": [[1, 2, 3]] * 4}).n_rows == 4
    assert refusal(parsed, {"instances": [[1, 2, 3]] * 5}).code == "too_many_values"


def test_records_are_checked_for_size_before_columns_are_gathered():
    wide = [f"f{i}" for i in range(100_000)]
    error = refusal(parse_json, json.dumps({"dataframe_records": [{}] * 3}).encode(), wide,
                    Limits(max_rows=10, max_cells=1000))
    assert error.code == "too_many_values"


# ---- CSV -----------------------------------------------------------------------------------------

def test_csv_with_a_header_row_in_any_column_order():
    body = "\ufeffc,a,b\r\nx,1,2.0\n\n\"y\",1.5,3\n".encode()
    table = parse_csv(body, NAMES, LIMITS)
    assert table.text_cells and table.n_rows == 2
    assert by_name(table) == {"a": ["1", "1.5"], "b": ["2.0", "3"], "c": ["x", "y"]}


def test_csv_keeps_quoted_commas_and_newlines_inside_strings():
    table = parse_csv(b'text\n"hello, world"\n"two\nlines"\n', ["text"], LIMITS)
    assert by_name(table) == {"text": ["hello, world", "two\nlines"]}


@pytest.mark.parametrize("body, code, column, row", [
    (b"a,b\n1,2\n", "missing_column", "c", None),
    (b"a,b,c,d\n1,2,3,4\n", "unknown_column", "d", None),
    (b"a,b,c\n1,2,3\n1,2\n", "invalid_row", None, 1),
    (b"a,b,c\n", "empty_input", None, None),
    (b"", "empty_input", None, None),
    (b"a,b,c\n" + b"1,2,3\n" * 6, "too_many_rows", None, 5),
    (b"a,b,c\n" + b"1,2,3\n" * 6_000, "too_many_rows", None, 5),
])
def test_csv_errors_name_the_column_and_row(body, code, column, row):
    error = refusal(parse_csv, body, NAMES, Limits(max_rows=5, max_cells=100))
    assert (error.code, error.details) == (code, {"column": column, "row": row})


def test_csv_must_be_utf8_and_well_formed():
    with pytest.raises(UnsupportedMediaType):
        parse_csv("a,b,c\n1,2,é\n".encode("latin-1"), NAMES, LIMITS)
    with pytest.raises(MLPlatformError) as caught:
        parse_csv(b'a,b,c\n1,2,"x\n', NAMES, LIMITS)
    assert caught.value.code == "malformed_csv"
