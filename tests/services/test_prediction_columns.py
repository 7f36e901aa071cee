"""Tables -> Batches typed by real signatures: dtypes, 1 vs 1.0, missing and infinite values,
the column order of the signature, wide array models, and the culprit of a refused category."""

from __future__ import annotations

import json

import numpy as np
import pytest

from mlplatform.errors import InvalidInput
from mlplatform.inference.batch import Batch
from mlplatform.services.prediction_columns import accepts_missing, model_columns, to_batch, unknown_category
from mlplatform.services.prediction_inputs import Limits, parse_csv, parse_json
from tests.prediction_support import iris_rows, signature

LIMITS = Limits(max_rows=100, max_cells=100_000)
MIXED_ROWS = [[1.5, "red", 2, True], [3.0, "blue", 1, False]]  # size, color, n, flag


def batch_of(document, sig: dict) -> Batch:
    names = [n for n, _ in model_columns(sig)]
    return to_batch(parse_json(json.dumps(document).encode(), names, LIMITS), sig)


def csv_batch(text: str, sig: dict) -> Batch:
    names = [n for n, _ in model_columns(sig)]
    return to_batch(parse_csv(text.encode(), names, LIMITS), sig)


def same(a: Batch, b: Batch) -> bool:
    return a.columns == b.columns and all(
        x.dtype == y.dtype and x.tolist() == y.tolist() for x, y in zip(a.values, b.values))


def without_missing(sig: dict) -> dict:
    """The signature of a model known not to take missing values (a ColumnTransformer alone
    leaves it open)."""
    return {**sig, "allow_nan": False}


def refused(document, sig: dict) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        batch_of(document, sig)
    return caught.value


def test_a_mixed_frame_is_typed_by_its_signature_in_signature_order():
    sig = signature("mixed")
    assert [(n, f["dtype"]) for n, f in model_columns(sig)] == [
        ("size", "float64"), ("color", "string"), ("n", "int64"), ("flag", "bool")]
    batch = batch_of({"dataframe_split": {"columns": ["flag", "n", "color", "size"],
                                          "data": [[r[3], r[2], r[1], r[0]] for r in MIXED_ROWS]}}, sig)
    assert batch.columns == ["size", "color", "n", "flag"]
    assert [v.dtype.kind for v in batch.values] == ["f", "O", "i", "b"]
    assert batch.column("color").tolist() == ["red", "blue"] and batch.column("flag").tolist() == [True, False]


def test_one_and_one_point_zero_give_identical_arrays_whatever_the_shape():
    sig = signature("mixed")
    ints = batch_of({"instances": [[2, "red", 1, 1], [3, "blue", 2, 0]]}, sig)
    floats = batch_of({"instances": [[2.0, "red", 1.0, True], [3.0, "blue", 2.0, False]]}, sig)
    records = batch_of({"dataframe_records": [{"flag": 1.0, "n": 1, "color": "red", "size": 2},
                                              {"flag": 0, "n": 2.0, "color": "blue", "size": 3.0}]}, sig)
    csv = csv_batch("n,flag,size,color\n1.0,True,2,red\n2,0,3.0,blue\n", sig)
    assert same(ints, floats) and same(ints, records) and same(ints, csv)


def test_array_models_take_floats_by_position_and_by_name_alike():
    sig = signature("hgb")
    rows = iris_rows(3)
    positional = batch_of({"instances": rows}, sig)
    as_ints = batch_of({"instances": [[round(v) for v in r] for r in rows]}, sig)
    named = batch_of({"dataframe_split": {"columns": ["f3", "f2", "f1", "f0"],
                                          "data": [r[::-1] for r in rows]}}, sig)
    csv = csv_batch("f0,f1,f2,f3\n" + "\n".join(",".join(map(str, r)) for r in rows), sig)
    assert positional.columns == ["f0", "f1", "f2", "f3"]
    assert same(positional, named) and same(positional, csv)
    assert np.array_equal(np.column_stack(positional.values), np.array(rows))
    assert np.array_equal(np.column_stack(as_ints.values), np.round(rows))


@pytest.mark.parametrize("row, column, index, code", [
    ([1.5, "red", 2, "yes"], "flag", 3, "invalid_type"),
    ([1.5, "red", 2, 2], "flag", 3, "invalid_type"),
    (["abc", "red", 2, True], "size", 0, "invalid_type"),
    (["1.5", "red", 2, True], "size", 0, "invalid_type"),  # JSON numbers are not quoted
    ([[1.5], "red", 2, True], "size", 0, "invalid_type"),
    ([1.5, 7, 2, True], "color", 1, "invalid_type"),
    ([1.5, "red", 2.5, True], "n", 2, "invalid_type"),
    ([1.5, "red", "2", True], "n", 2, "invalid_type"),
    ([1.5, "red", 2**63, True], "n", 2, "invalid_value"),
    ([None, "red", 2, True], "size", 0, "missing_value"),
    ([1e400, "red", 2, True], "size", 0, "non_finite_value"),
])
def test_wrong_values_are_refused_naming_column_and_row(row, column, index, code):
    document = {"instances": [MIXED_ROWS[0], row]}  # the bad value is in row 1
    error = refused(document, without_missing(signature("mixed")))
    assert (error.code, error.details) == (code, {"column": column, "row": 1}), error.message
    assert f"Column {column!r}, row 1" in error.message


@pytest.mark.parametrize("text, column, code", [
    ("size,color,n,flag\n1.5,red,2,true\nabc,red,2,true\n", "size", "invalid_type"),
    ("size,color,n,flag\n1.5,red,2,true\n,red,2,true\n", "size", "missing_value"),
    ("size,color,n,flag\n1.5,red,2,true\ninf,red,2,true\n", "size", "non_finite_value"),
    ("size,color,n,flag\n1.5,red,2,true\n1.5,red,2.5,true\n", "n", "invalid_type"),
    ("size,color,n,flag\n1.5,red,2,true\n1.5,red,2,maybe\n", "flag", "invalid_type"),
])
def test_csv_cells_are_parsed_by_dtype(text, column, code):
    with pytest.raises(InvalidInput) as caught:
        csv_batch(text, without_missing(signature("mixed")))
    assert (caught.value.code, caught.value.details) == (code, {"column": column, "row": 1})


def test_csv_strings_stay_strings():
    sig = signature("text")
    batch = csv_batch('text\n12\n"1,5"\n\n  spaced  \n', sig)
    assert batch.column("text").tolist() == ["12", "1,5", "  spaced  "]


def test_missing_values_pass_only_where_the_model_takes_them():
    assert accepts_missing(signature("mixed"))  # its ColumnTransformer might impute: the model decides
    assert accepts_missing(signature("hgb")) and accepts_missing(signature("imputed"))
    assert not accepts_missing(signature("ridge"))
    rows = iris_rows(2)
    rows[1][2] = None
    for kind in ("hgb", "imputed"):
        batch = batch_of({"instances": rows}, signature(kind))
        assert np.isnan(batch.column("f2")[1]) and batch.column("f2").dtype == np.float64
    error = refused({"instances": rows}, signature("ridge"))
    assert (error.code, error.details) == ("missing_value", {"column": "f2", "row": 1})
    rows[1][2] = float("inf")
    assert refused({"instances": rows}, signature("hgb")).code == "non_finite_value"


def test_a_signature_flag_decides_missing_values_when_present():
    sig = signature("ridge")
    sig["allow_nan"] = True
    assert accepts_missing(sig)
    sig = signature("hgb")
    sig["allow_nan"] = False
    assert not accepts_missing(sig)


def test_an_int_column_with_a_missing_value_becomes_float_where_allowed():
    sig = signature("mixed")
    sig["allow_nan"] = True
    batch = batch_of({"instances": [[1.5, "red", None, None], [1.5, None, 2, True]]}, sig)
    assert batch.column("n").dtype == np.float64 and np.isnan(batch.column("n")[0])
    assert batch.column("flag").tolist()[1] == 1.0 and batch.column("color").tolist() == ["red", None]


def test_wide_abbreviated_array_signatures_imply_their_unlisted_columns():
    sig = {"input_kind": "array", "n_features": 1500, "estimator": "sklearn.linear_model.Ridge", "steps": [],
           "features": [{"name": f"f{i}", "dtype": "float64", "categories": None} for i in range(1000)]}
    columns = model_columns(sig)
    assert len(columns) == 1500 and columns[-1] == ("f1499", {"dtype": "float64", "categories": None})
    batch = batch_of({"instances": [list(range(1500))]}, sig)
    assert batch.column("f1499").tolist() == [1499.0]
    error = refused({"instances": [list(range(1499))]}, sig)
    assert error.code == "invalid_row" and "1500 columns" in error.message


def test_unknown_categories_pass_here_and_are_named_after_a_refusal():
    sig = signature("mixed")
    batch = batch_of({"instances": [MIXED_ROWS[0], [1.0, "purple", 2, True]]}, sig)
    assert unknown_category(sig, batch) == ("color", 1, "purple")
    assert unknown_category(sig, batch_of({"instances": MIXED_ROWS}, sig)) is None
    batch = batch_of({"instances": [[1.0, "red", 9, True]]}, sig)
    assert unknown_category(sig, batch) == ("n", 0, 9)
