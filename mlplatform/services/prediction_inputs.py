"""Prediction request bodies -> a Table of the model's input columns, before any typing.

Accepted bodies (MLflow's scoring-server shapes, and CSV):
- `{"dataframe_split": {"columns": [...], "data": [[...], ...]}}`; `columns` may be left out when
  the values are in the model's column order (array models take them by position anyway)
- `{"dataframe_records": [{"column": value, ...}, ...]}`
- `{"instances": [...]}`: rows as lists (by position) or as objects (by name), or single values
  for a model that takes one column (a text model's texts)
- `{"inputs": ...}`: like `instances`, or an object of column -> list of values
- `text/csv` with a header row (every cell stays a string here; prediction_columns parses it by
  the column's dtype)

Structure errors (missing or unknown columns, ragged rows, too many rows) are 422 `invalid_input`
naming the column and the row (0-based within the request; null when the whole column is at
fault). Sizes are checked before anything proportional to rows x columns is built.
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import dataclass
from operator import itemgetter

from mlplatform.errors import InvalidInput, MLPlatformError, UnsupportedMediaType

SHAPES = ("dataframe_split", "dataframe_records", "instances", "inputs")
SHAPES_HINT = ("send a JSON object with one of " + ", ".join(f"`{s}`" for s in SHAPES)
               + ", or text/csv with a header row")
LISTED_NAMES = 10  # how many expected column names an error message shows


@dataclass(frozen=True)
class Limits:
    max_rows: int
    max_cells: int  # rows x columns: what the typed arrays will hold


@dataclass
class Table:
    """The request's values for the model's columns. `names` are the columns as sent (the
    model's own, in its order, for positional input); exactly one of `rows` (row-major, each row
    as long as `names`) and `columns` (one sequence per name) is set."""

    names: list[str]
    n_rows: int
    rows: Sequence | None = None
    columns: list[Sequence] | None = None
    text_cells: bool = False  # CSV: every cell is a str, parsed by the column's dtype later

    def column_values(self) -> list[Sequence]:
        if self.columns is not None:
            return self.columns
        return list(zip(*self.rows)) if self.rows else [() for _ in self.names]


def problem(message: str, *, column: str | None = None, row: int | None = None,
            code: str = "invalid_input") -> InvalidInput:
    return InvalidInput(message, code=code, details={"column": column, "row": row})


def names_hint(names: list[str]) -> str:
    shown = ", ".join(names[:LISTED_NAMES])
    return shown + (f", ... ({len(names)} in all)" if len(names) > LISTED_NAMES else "")


# ---- JSON ----------------------------------------------------------------------------------------

def parse_json(body: bytes, names: list[str], limits: Limits) -> Table:
    document = _load_json(body)
    if not isinstance(document, dict):
        raise problem(f"Unsupported body: {SHAPES_HINT}", code="invalid_body")
    extra = [k for k in document if k not in SHAPES]
    given = [k for k in document if k in SHAPES]
    if extra:
        raise problem(f"Unknown field {str(extra[0])[:60]!r}: {SHAPES_HINT}", code="invalid_body")
    if len(given) != 1:
        raise problem(f"Exactly one input field is needed: {SHAPES_HINT}", code="invalid_body")
    shape = given[0]
    value = document[shape]
    if shape == "dataframe_split":
        return _split(value, names, limits)
    if shape == "dataframe_records":
        return _records(_list(value, shape), names, limits)
    if shape == "inputs" and isinstance(value, dict):
        return _column_lists(value, names, limits)
    return _instances(_list(value, shape), names, limits, shape)


def _load_json(body: bytes):
    try:
        return json.loads(body)  # NaN and Infinity literals parse; the column checks judge them
    except (ValueError, RecursionError) as exc:
        message = str(exc)[:200] if isinstance(exc, ValueError) else "nested too deeply"
        raise MLPlatformError(f"Request body is not valid JSON: {message}", code="malformed_json",
                              details=None) from None


def _list(value, field: str) -> list:
    if not isinstance(value, list):
        raise problem(f"`{field}` must be a list", code="invalid_body")
    return value


def check_size(n_rows: int, n_columns: int, limits: Limits) -> None:
    """422 for no rows, more rows than allowed, or more cells than allowed (checked before
    anything proportional to rows x columns is built)."""
    if n_rows == 0:
        raise problem("The input has no rows", code="empty_input")
    if n_rows > limits.max_rows:
        raise problem(f"Too many rows: more than {limits.max_rows} (the most one request may carry)",
                      row=limits.max_rows, code="too_many_rows")
    if n_rows * n_columns > limits.max_cells:
        raise problem(f"Too many values: {n_rows} rows x {n_columns} columns (at most "
                      f"{limits.max_cells} per request; send fewer rows)", code="too_many_values")


def _split(value, names: list[str], limits: Limits) -> Table:
    if not isinstance(value, dict) or "data" not in value:
        raise problem("`dataframe_split` must be an object with `data` (and `columns`)", code="invalid_body")
    unknown = [k for k in value if k not in ("columns", "data", "index")]
    if unknown:
        raise problem(f"Unknown field {str(unknown[0])[:60]!r} in `dataframe_split`", code="invalid_body")
    rows = _list(value["data"], "dataframe_split.data")
    columns = value.get("columns")
    if columns is None:
        return _positional(rows, names, limits)
    sent = _column_names(_list(columns, "dataframe_split.columns"), names)
    check_size(len(rows), len(sent), limits)
    _check_rows(rows, sent)
    return Table(sent, len(rows), rows=rows)


def _column_names(columns: list, names: list[str]) -> list[str]:
    """The sent column names, checked against the model's: each once, none missing, none unknown."""
    expected = set(names)
    seen: set[str] = set()
    for column in columns:
        if not isinstance(column, str):
            raise problem(f"Column names must be strings, not {type(column).__name__}", code="invalid_body")
        if column in seen:
            raise problem(f"Column {column[:80]!r} is given twice", column=column, code="duplicate_column")
        if column not in expected:
            raise _unknown(column, names)
        seen.add(column)
    missing = next((n for n in names if n not in seen), None)
    if missing is not None:
        raise problem(f"Missing column {missing!r}: the model takes {names_hint(names)}",
                      column=missing, code="missing_column")
    return list(columns)


def _unknown(column: str, names: list[str], row: int | None = None) -> InvalidInput:
    where = f" in row {row}" if row is not None else ""
    return problem(f"Unknown column {column[:80]!r}{where}: the model takes {names_hint(names)}",
                   column=column[:200], row=row, code="unknown_column")


def _check_rows(rows: list, names: list[str]) -> None:
    width = len(names)
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise problem(f"Row {i} must be a list of {width} values", row=i, code="invalid_row")
        if len(row) != width:
            raise problem(f"Row {i} has {len(row)} values; the model takes {width} columns "
                          f"({names_hint(names)})", row=i, code="invalid_row")


def _positional(rows: list, names: list[str], limits: Limits) -> Table:
    check_size(len(rows), len(names), limits)
    _check_rows(rows, names)
    return Table(list(names), len(rows), rows=rows)


def _records(records: list, names: list[str], limits: Limits) -> Table:
    check_size(len(records), len(names), limits)
    expected = set(names)
    for i, record in enumerate(records):
        if not isinstance(record, dict):
            raise problem(f"Row {i} must be an object of column -> value", row=i, code="invalid_row")
        if record.keys() != expected:
            _record_mismatch(record, names, expected, i)
    columns = [list(map(itemgetter(name), records)) for name in names]
    return Table(list(names), len(records), columns=columns)


def _record_mismatch(record: dict, names: list[str], expected: set, row: int) -> None:
    unknown = next((k for k in record if k not in expected), None)
    if unknown is not None:
        raise _unknown(str(unknown), names, row)
    missing = next(n for n in names if n not in record)
    raise problem(f"Row {row} has no value for column {missing!r}", column=missing, row=row,
                  code="missing_column")


def _column_lists(value: dict, names: list[str], limits: Limits) -> Table:
    _column_names(list(value), names)
    lengths = {}
    for name in names:
        values = value[name]
        if not isinstance(values, list):
            raise problem(f"Column {name!r} must be a list of values", column=name, code="invalid_body")
        lengths[name] = len(values)
    first = names[0]
    odd = next((n for n in names if lengths[n] != lengths[first]), None)
    if odd is not None:
        raise problem(f"Column {odd!r} has {lengths[odd]} values but column {first!r} has "
                      f"{lengths[first]}", column=odd, code="invalid_row")
    check_size(lengths[first], len(names), limits)
    return Table(list(names), lengths[first], columns=[value[n] for n in names])


def _instances(items: list, names: list[str], limits: Limits, field: str) -> Table:
    if not items:
        raise problem("The input has no rows", code="empty_input")
    if isinstance(items[0], dict):
        return _records(items, names, limits)
    if isinstance(items[0], list):
        return _positional(items, names, limits)
    if len(names) != 1:
        raise problem(f"`{field}` holds single values, but the model takes {len(names)} columns: "
                      "send one list (or object) per row", row=0, code="invalid_row")
    check_size(len(items), 1, limits)
    odd = next((i for i, v in enumerate(items) if isinstance(v, (list, dict))), None)
    if odd is not None:
        raise problem(f"Row {odd} must be a single value like the others", row=odd, column=names[0],
                      code="invalid_row")
    return Table(list(names), len(items), columns=[items])


# ---- CSV -----------------------------------------------------------------------------------------

def parse_csv(body: bytes, names: list[str], limits: Limits) -> Table:
    try:
        text = body.decode("utf-8-sig")  # a byte-order mark (Excel writes one) is not a column name
    except UnicodeDecodeError as exc:
        raise UnsupportedMediaType(f"CSV must be UTF-8: {exc}", code="unsupported_charset") from None
    reader = csv.reader(io.StringIO(text, newline=""), strict=True)
    try:
        header = next((r for r in reader if r), None)
        if header is None:
            raise problem("The CSV body is empty: send a header row, then one row per input",
                          code="empty_input")
        sent = _column_names(header, names)
        rows = _csv_rows(reader, sent, limits)
    except csv.Error as exc:
        raise MLPlatformError(f"Malformed CSV at line {reader.line_num}: {exc}", code="malformed_csv") from None
    check_size(len(rows), len(sent), limits)
    return Table(sent, len(rows), rows=rows, text_cells=True)


def _csv_rows(reader, names: list[str], limits: Limits) -> list[list[str]]:
    rows: list[list[str]] = []
    max_rows = min(limits.max_rows, limits.max_cells // max(len(names), 1))
    for row in reader:
        if not row:  # blank lines are not rows
            continue
        if len(row) != len(names):
            raise problem(f"Row {len(rows)} has {len(row)} values; the header has {len(names)} columns",
                          row=len(rows), code="invalid_row")
        rows.append(row)
        if len(rows) > max_rows:  # stop reading: the size check below refuses it
            break
    return rows


def charset_ok(charset: str | None) -> bool:
    return charset is None or charset.lower() in ("utf-8", "utf8", "us-ascii", "ascii")
