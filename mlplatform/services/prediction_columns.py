"""A parsed Table -> a Batch typed by the version's signature, in the signature's column order.

Types (JSON values; CSV cells are parsed the same way from their text):
- float64: numbers (true/false count as 1/0); `"abc"` is refused, so is a quoted number in JSON
- int64: whole numbers; 1.0 is 1, 1.5 is refused
- bool: true/false, or the numbers 0/1 (CSV also `true`/`false` in any case)
- string: strings; a number is refused. Null passes (the encoder decides; most map it to unknown)
The same value written as 1 or 1.0 gives the same array, whatever the body's shape or column order.

Missing values (null, NaN, an empty CSV cell) in numeric columns pass only when the model can take
them (accepts_missing); Infinity never does. Categories are not checked here: the signature does
not say whether an encoder ignores unknown categories (OneHotEncoder(handle_unknown='ignore')
does), so the model decides, and unknown_category() names the culprit when it refuses.
"""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np

from mlplatform.inference.batch import Batch
from mlplatform.services.prediction_inputs import Table, problem

PLAIN_FEATURE = {"dtype": "float64", "categories": None}
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
EXACT_FLOAT_INT = 2**53  # past this a float64 no longer holds every whole number
# Final estimators that take NaN themselves (scikit-learn's allow_nan tag), and steps that fill
# or may fill it; a ColumnTransformer or FeatureUnion may hold an imputer the signature cannot show.
NAN_NATIVE = ("HistGradientBoosting", "DecisionTree", "ExtraTree", "RandomForest", "IsolationForest",
              "Bagging", "HDBSCAN")
NAN_HANDLING_STEPS = ("Imputer", "ColumnTransformer", "FeatureUnion", "SearchCV")


def model_columns(signature: dict) -> list[tuple[str, dict]]:
    """(name, feature) for every input column in order; an abbreviated array signature implies
    its unlisted columns as f<i>, float64."""
    features, count = signature["features"], signature["n_features"]
    if signature["input_kind"] == "array" and len(features) < count:
        listed = {f["name"]: f for f in features}
        return [(f"f{i}", listed.get(f"f{i}", PLAIN_FEATURE)) for i in range(count)]
    return [(f["name"], f) for f in features]


def accepts_missing(signature: dict) -> bool:
    """Can the model take NaN in numeric columns? The signature's `allow_nan` if it has one;
    otherwise yes when the final estimator handles NaN itself or a step may impute."""
    flag = signature.get("allow_nan")
    if isinstance(flag, bool):
        return flag
    steps = [str(s.get("estimator", "")) for s in signature.get("steps") or []]
    final = (steps[-1] if steps else str(signature.get("estimator", ""))).rpartition(".")[2]
    classes = [s.rpartition(".")[2] for s in [*steps, str(signature.get("estimator", ""))]]
    return final.startswith(NAN_NATIVE) or any(t in c for c in classes for t in NAN_HANDLING_STEPS)


def to_batch(table: Table, signature: dict) -> Batch:
    columns = model_columns(signature)
    names = [name for name, _ in columns]
    missing_ok = accepts_missing(signature)
    if table.rows is not None and all(f["dtype"] == "float64" for _, f in columns):
        block = _float_block(table, names)
        if block is not None:
            return Batch.from_block(names, block)
    sent = dict(zip(table.names, table.column_values()))
    arrays = [_typed(name, feature["dtype"], sent[name], table.text_cells, missing_ok)
              for name, feature in columns]
    return Batch(names, arrays)


def _float_block(table: Table, names: list[str]) -> np.ndarray | None:
    """All-float64 models (the usual wide case): one conversion of the whole body. None when any
    cell needs a closer look (a non-number, a missing or infinite value): the column path then
    accepts it or names it."""
    try:
        block = np.array(table.rows, dtype=np.float64) if table.text_cells else np.asarray(table.rows)
    except (ValueError, TypeError, OverflowError):
        return None
    if block.ndim != 2 or block.dtype.kind not in "biuf" or block.shape != (table.n_rows, len(names)):
        return None
    block = block.astype(np.float64, copy=False)
    if not np.isfinite(block).all():
        return None
    if table.names != names:
        position = {n: i for i, n in enumerate(table.names)}
        block = block[:, [position[n] for n in names]]
    return block


def _typed(name: str, dtype: str, values: Sequence, text: bool, missing_ok: bool) -> np.ndarray:
    if dtype == "int64":
        return _ints(name, values, text, missing_ok)
    if dtype == "bool":
        return _bools(name, values, text, missing_ok)
    if dtype == "string":
        return _strings(name, values, text)
    return _floats(name, values, text, missing_ok)


def _numeric(values: Sequence, text: bool) -> np.ndarray | None:
    """The values as one numeric array when numpy can take them as they are, else None."""
    try:
        array = np.array(values, dtype=np.float64) if text else np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        return None
    return array if array.ndim == 1 and array.dtype.kind in "biuf" else None


# ---- float64 -------------------------------------------------------------------------------------

def _floats(name: str, values: Sequence, text: bool, missing_ok: bool) -> np.ndarray:
    array = _numeric(values, text)
    if array is not None:
        array = array.astype(np.float64, copy=False)
        if np.isfinite(array).all() or (missing_ok and not np.isinf(array).any()):
            return array
    return np.array([_float_cell(name, row, v, text, missing_ok) for row, v in enumerate(values)],
                    dtype=np.float64)


def _float_cell(name: str, row: int, value, text: bool, missing_ok: bool) -> float:
    if text:
        value = value.strip()
        number = _missing(name, row, missing_ok) if value == "" else _parse_float(name, row, value)
    elif value is None:
        number = _missing(name, row, missing_ok)
    elif type(value) in (bool, int, float):
        try:
            number = float(value)
        except OverflowError:
            raise problem(f"Column {name!r}, row {row}: {value} is out of range", column=name, row=row,
                          code="invalid_value") from None
    else:
        raise _wrong_type(name, row, value, "a number")
    return _finite(name, row, number, missing_ok)


def _parse_float(name: str, row: int, value: str) -> float:
    try:
        return float(value)
    except ValueError:
        raise _wrong_type(name, row, value, "a number") from None


def _finite(name: str, row: int, number: float, missing_ok: bool) -> float:
    if math.isnan(number):
        return _missing(name, row, missing_ok)
    if math.isinf(number):
        shown = "Infinity" if number > 0 else "-Infinity"
        raise problem(f"Column {name!r}, row {row}: {shown} is not a finite number", column=name, row=row,
                      code="non_finite_value")
    return number


def _missing(name: str, row: int, missing_ok: bool) -> float:
    if not missing_ok:
        raise problem(f"Column {name!r}, row {row}: the value is missing (null, NaN or empty), and this "
                      "model cannot take missing values (its pipeline has no imputer)",
                      column=name, row=row, code="missing_value")
    return math.nan


def _wrong_type(name: str, row: int, value, expected: str):
    shown = repr(value)[:60] if isinstance(value, (str, int, float, bool)) else f"a {_json_type(value)}"
    return problem(f"Column {name!r}, row {row}: expected {expected}, got {shown}", column=name, row=row,
                   code="invalid_type")


def _json_type(value) -> str:
    return {dict: "object", list: "list", str: "string", bool: "boolean"}.get(type(value), "number")


# ---- int64 ---------------------------------------------------------------------------------------

def _ints(name: str, values: Sequence, text: bool, missing_ok: bool) -> np.ndarray:
    array = None if text else _numeric(values, False)
    if array is not None and _whole(array):
        return array.astype(np.int64)
    cells = [_int_cell(name, row, v, text, missing_ok) for row, v in enumerate(values)]
    if any(c is None for c in cells):  # only when missing_ok: NaN needs a float column
        return np.array([math.nan if c is None else float(c) for c in cells], dtype=np.float64)
    return np.array(cells, dtype=np.int64)


def _whole(array: np.ndarray) -> bool:
    if array.dtype.kind in "bi":
        return True
    if array.dtype.kind == "u":
        return array.size == 0 or int(array.max()) <= INT64_MAX
    return bool(np.isfinite(array).all() and (np.abs(array) < EXACT_FLOAT_INT).all()
                and (array == np.trunc(array)).all())


def _int_cell(name: str, row: int, value, text: bool, missing_ok: bool) -> int | None:
    if text:
        value = value.strip()
        if value == "":
            return _none_if_missing(name, row, missing_ok)
        try:
            value = int(value)
        except ValueError:
            value = _parse_float(name, row, value)
    if value is None:
        return _none_if_missing(name, row, missing_ok)
    if type(value) is float:
        if math.isnan(value):
            return _none_if_missing(name, row, missing_ok)
        _finite(name, row, value, missing_ok)
        if not value.is_integer():
            raise _wrong_type(name, row, value, "a whole number")
        value = int(value)
    if type(value) not in (int, bool):
        raise _wrong_type(name, row, value, "a whole number")
    if not INT64_MIN <= value <= INT64_MAX:
        raise problem(f"Column {name!r}, row {row}: {value} is out of the 64-bit integer range",
                      column=name, row=row, code="invalid_value")
    return int(value)


def _none_if_missing(name: str, row: int, missing_ok: bool) -> None:
    _missing(name, row, missing_ok)
    return None


# ---- bool and string -----------------------------------------------------------------------------

def _bools(name: str, values: Sequence, text: bool, missing_ok: bool) -> np.ndarray:
    array = None if text else _numeric(values, False)
    if array is not None and (array.dtype.kind == "b" or np.isin(array, (0, 1)).all()):
        return array.astype(np.bool_)
    cells = [_bool_cell(name, row, v, text, missing_ok) for row, v in enumerate(values)]
    if any(c is None for c in cells):  # only when missing_ok
        return np.array([math.nan if c is None else float(c) for c in cells], dtype=np.float64)
    return np.array(cells, dtype=np.bool_)


TRUE_WORDS, FALSE_WORDS = ("true", "t"), ("false", "f")


def _bool_cell(name: str, row: int, value, text: bool, missing_ok: bool) -> bool | None:
    if text:
        word = value.strip().lower()
        if word == "":
            return _none_if_missing(name, row, missing_ok)
        if word in TRUE_WORDS or word in FALSE_WORDS:
            return word in TRUE_WORDS
        value = _parse_float(name, row, word) if word not in ("nan",) else math.nan
    if value is None or (type(value) is float and math.isnan(value)):
        return _none_if_missing(name, row, missing_ok)
    if type(value) in (bool, int, float) and value in (0, 1):
        return bool(value)
    raise _wrong_type(name, row, value, "true or false")


def _strings(name: str, values: Sequence, text: bool) -> np.ndarray:
    out = np.empty(len(values), dtype=object)
    if text or all(type(v) is str for v in values):
        out[:] = list(values)
        return out
    for row, value in enumerate(values):
        if value is not None and type(value) is not str and not (type(value) is float and math.isnan(value)):
            raise _wrong_type(name, row, value, "a string")
    out[:] = [v if type(v) is str else None for v in values]
    return out


# ---- after the model refused ---------------------------------------------------------------------

def unknown_category(signature: dict, batch: Batch) -> tuple[str, int, object] | None:
    """(column, row, value) of the first value outside its column's training categories, if any:
    the likely reason an encoder refused the batch."""
    for name, feature in model_columns(signature):
        categories = feature.get("categories")
        if not categories or not batch.has(name):
            continue
        known = set(categories)
        for row, value in enumerate(batch.column(name).tolist()):
            if value is None or (type(value) is float and math.isnan(value)):
                continue
            if value not in known:
                return name, row, value
    return None
