"""Open Inference Protocol v2 over the platform's models: metadata, readiness, infer.

Tensors a model takes (its metadata `inputs`), from the version's signature:
- array models: one 2-D tensor `input-0`, shape [-1, n_features], FP64 (or the columns' one
  datatype); an array model whose columns differ in type takes one tensor per column (f0, f1, ...)
- DataFrame models: one tensor per column, shape [-1], FP64 / INT64 / BOOL / BYTES (strings)
- text models: one BYTES tensor `text`, shape [-1]
Any model also takes one tensor per column, named like the columns (shape [rows] or [rows, 1]),
and any single tensor of shape [rows, n_columns] whatever its name, values in column order.

Outputs: `predict` (BYTES for string labels, INT64 for whole-number labels and cluster ids,
FP64 for regression) by default; `predict_proba` (FP64 [rows, n_classes], columns in the order
of the model's classes: sorted labels) when named in the request's `outputs`, which then lists
every output wanted. Asking a model without predict_proba for it is 422 naming the output.

The values are checked against the tensor's datatype here (422 naming the column and the row),
then against the model's columns by prediction_columns.to_batch inside predictions.predict_with,
exactly like REST bodies: same error codes, same details {"column", "row"}.
"""

from __future__ import annotations

import math
import uuid

import numpy as np
from sqlmodel import col, or_, select

from mlplatform import db
from mlplatform.errors import InvalidInput, PermissionDenied
from mlplatform.models import ModelVersion, Scope, VersionStatus, utcnow
from mlplatform.services import health, predictions, registry
from mlplatform.services.oip_tensors import NUMERIC, InferRequest, Tensor, read_request  # noqa: F401
from mlplatform.services.prediction_columns import model_columns
from mlplatform.services.prediction_inputs import Limits, Table, check_size, names_hint, problem
from mlplatform.services.predictions import Parser, PredictionResult, Trace
from mlplatform.services.principals import Principal

PLATFORM = "sklearn"
MATRIX_INPUT = "input-0"
DATATYPE = {"float64": "FP64", "int64": "INT64", "bool": "BOOL", "string": "BYTES"}
# what serving needs (the batch worker's heartbeat is not)
SERVING_CHECKS = ("database", "redis", "model_hosts")
# metadata and readiness: a key that may predict may see what to send, as may a read-only key
READ_SCOPES = (Scope.predict.value, Scope.models_read.value)
INT_RANGE = {dt: (int(np.iinfo(code).min), int(np.iinfo(code).max)) for dt, code in NUMERIC.items()
             if dt.startswith(("INT", "UINT"))}


# ---- metadata and readiness ----------------------------------------------------------------------

def model_metadata(principal: Principal, name: str, version_ref: str | None = None) -> dict:
    _require_any_scope(principal, READ_SCOPES)
    resolved = registry.resolve_version(principal, name, version_ref)
    return metadata(resolved.model, resolved.signature, servable_versions(resolved.model_id))


def metadata(name: str, signature: dict, versions: list[int]) -> dict:
    return {"name": name, "versions": [str(v) for v in versions], "platform": PLATFORM,
            "inputs": input_tensors(signature), "outputs": output_tensors(signature)}


def input_tensors(signature: dict) -> list[dict]:
    columns = model_columns(signature)
    dtypes = {feature["dtype"] for _, feature in columns}
    if signature["input_kind"] == "array" and len(dtypes) == 1:
        return [{"name": MATRIX_INPUT, "datatype": DATATYPE[dtypes.pop()], "shape": [-1, len(columns)]}]
    return [{"name": name, "datatype": DATATYPE[feature["dtype"]], "shape": [-1]} for name, feature in columns]


def output_tensors(signature: dict) -> list[dict]:
    outputs = [{"name": "predict", "datatype": _label_datatype(signature), "shape": [-1]}]
    if signature.get("methods", {}).get("predict_proba"):
        classes = signature.get("classes")
        outputs.append({"name": "predict_proba", "datatype": "FP64", "shape": [-1, len(classes) if classes else -1]})
    return outputs


def _label_datatype(signature: dict) -> str:
    if signature.get("task") in ("clusterer", "outlier_detector"):
        return "INT64"
    if signature.get("task") == "classifier" and signature.get("classes"):
        return datatype_of(signature["classes"])
    return "FP64"


def servable_versions(model_id: uuid.UUID) -> list[int]:
    """The version numbers a client may ask for: active or deprecated, before any sunset."""
    with db.session() as s:
        return list(s.exec(
            select(ModelVersion.version)
            .where(ModelVersion.model_id == model_id,
                   col(ModelVersion.status).in_([VersionStatus.active, VersionStatus.deprecated]),
                   or_(col(ModelVersion.sunset_at).is_(None), col(ModelVersion.sunset_at) > utcnow()))
            .order_by(col(ModelVersion.version))
        ).all())


def server_ready() -> bool:
    return all(check.ok for check in health.readiness() if check.name in SERVING_CHECKS)


def model_ready(principal: Principal, name: str, version_ref: str | None = None) -> bool:
    """The version resolves (it serves: errors otherwise) and the model hosts are up to load it."""
    _require_any_scope(principal, READ_SCOPES)
    registry.resolve_version(principal, name, version_ref)
    return server_ready()


def _require_any_scope(principal: Principal, scopes: tuple[str, ...]) -> None:
    if principal.scopes is not None and not principal.scopes.intersection(scopes):
        raise PermissionDenied(f"This API key lacks the '{scopes[0]}' or '{scopes[1]}' scope",
                               code="insufficient_scope")


# ---- infer ---------------------------------------------------------------------------------------

async def infer(principal: Principal, name: str, request: InferRequest, *, version_ref: str | None = None,
                trace: Trace | None = None) -> PredictionResult:
    return await predictions.predict_with(principal, name, parser(request), version_ref=version_ref,
                                          proba="predict_proba" in (request.outputs or ()), trace=trace)


def parser(request: InferRequest) -> Parser:
    def parse(signature: dict, limits: Limits) -> Table:
        _check_outputs(request, signature)
        return to_table(request, signature, limits)
    return parse


def _check_outputs(request: InferRequest, signature: dict) -> None:
    if "predict_proba" in (request.outputs or ()) and not signature.get("methods", {}).get("predict_proba"):
        raise InvalidInput("Output 'predict_proba' is not available: this model has no predict_proba "
                           "(ask for 'predict')", code="invalid_output", details={"output": "predict_proba"})


def infer_response(result: PredictionResult, request: InferRequest, default_id: str = "") -> dict:
    outputs = []
    for name in request.outputs or ["predict"]:
        values = result.predictions if name == "predict" else result.probabilities
        outputs.append(output_tensor(name, values, "FP64" if name == "predict_proba" else None))
    return {"model_name": result.model, "model_version": str(result.version),
            "id": request.id if request.id is not None else (default_id or uuid.uuid4().hex), "outputs": outputs}


def output_tensor(name: str, values: list, datatype: str | None = None) -> dict:
    """A list of per-row values (or of equal-length rows) as a tensor with flat row-major data."""
    if values and all(isinstance(v, list) for v in values) and len({len(v) for v in values}) == 1:
        shape, flat = [len(values), len(values[0])], [x for row in values for x in row]
    else:
        shape, flat = [len(values)], list(values)
    datatype = datatype or datatype_of(flat)
    if datatype == "BYTES":  # labels of mixed types: all as text, as the datatype says
        flat = [v if v is None or type(v) is str else str(v) for v in flat]
    return {"name": name, "datatype": datatype, "shape": shape, "data": flat}


def datatype_of(values: list) -> str:
    present = [v for v in values if v is not None]
    if present and all(type(v) is bool for v in present):
        return "BOOL"
    if all(type(v) is int for v in present):
        return "INT64" if present else "FP64"
    if all(type(v) in (int, float) for v in present):
        return "FP64"
    return "BYTES"


# ---- tensors -> the model's columns ----------------------------------------------------------------

def to_table(request: InferRequest, signature: dict, limits: Limits) -> Table:
    names = [name for name, _ in model_columns(signature)]
    known = set(names)
    tensors = request.inputs
    if any(t.name in known for t in tensors):
        stranger = next((t for t in tensors if t.name not in known), None)
        if stranger is not None:
            raise problem(f"Unknown input {stranger.name[:80]!r}: the model takes {names_hint(names)}",
                          column=stranger.name[:200], code="unknown_column")
        return _by_column(tensors, names, limits)
    if len(tensors) == 1:
        return _matrix(tensors[0], names, limits)
    raise problem(f"Unknown input {tensors[0].name[:80]!r}: send one tensor of shape [rows, {len(names)}] or "
                  f"one tensor per column ({names_hint(names)})", column=tensors[0].name[:200],
                  code="unknown_column")


def _matrix(tensor: Tensor, names: list[str], limits: Limits) -> Table:
    width = len(names)
    if tensor.shape[1:] != [width] and not (width == 1 and len(tensor.shape) == 1):
        raise problem(f"Input {tensor.name[:80]!r} has shape {tensor.shape}: the model takes [rows, {width}] "
                      f"(columns {names_hint(names)}), or one tensor per column", column=tensor.name[:200],
                      code="invalid_shape")
    rows = tensor.shape[0]
    check_size(rows, width, limits)
    _check_values(tensor, lambda i: (names[i % width], i // width))
    if width == 1:
        return Table(list(names), rows, columns=[tensor.data])
    data = tensor.data
    return Table(list(names), rows, rows=[data[i * width:(i + 1) * width] for i in range(rows)])


def _by_column(tensors: list[Tensor], names: list[str], limits: Limits) -> Table:
    for tensor in tensors:
        if len(tensor.shape) > 2 or tensor.shape[1:] not in ([], [1]):
            raise problem(f"Input {tensor.name[:80]!r} has shape {tensor.shape}: a column's tensor has shape "
                          "[rows] or [rows, 1]", column=tensor.name, code="invalid_shape")
    first = tensors[0]
    odd = next((t for t in tensors if t.shape[0] != first.shape[0]), None)
    if odd is not None:
        raise problem(f"Input {odd.name!r} has {odd.shape[0]} rows but input {first.name!r} has "
                      f"{first.shape[0]}", column=odd.name, code="invalid_row")
    given = {t.name for t in tensors}
    missing = next((n for n in names if n not in given), None)
    if missing is not None:
        raise problem(f"Missing input {missing!r}: the model takes {names_hint(names)}", column=missing,
                      code="missing_column")
    check_size(first.shape[0], len(names), limits)
    for tensor in tensors:
        _check_values(tensor, lambda i, name=tensor.name: (name, i))
    return Table([t.name for t in tensors], first.shape[0], columns=[t.data for t in tensors])


# ---- values against the tensor's datatype ----------------------------------------------------------

def _check_values(tensor: Tensor, where) -> None:
    """Every value fits the tensor's datatype (null stands for a missing value in any datatype:
    the model's columns decide whether they take it); else 422 naming the column and the row."""
    if tensor.binary and tensor.datatype != "BYTES":
        return  # decoded from bytes of that datatype
    if _all_fit(tensor.data, tensor.datatype):
        return
    fits, expected = _FITS[_kind(tensor.datatype)]
    lo, hi = INT_RANGE.get(tensor.datatype, (-math.inf, math.inf))
    for i, value in enumerate(tensor.data):
        if value is not None and not fits(value, lo, hi):
            column, row = where(i)
            raise problem(f"Column {column!r}, row {row}: input {tensor.name[:80]!r} is {tensor.datatype}, so "
                          f"each value must be {expected}, not {_shown(value)}", column=column, row=row,
                          code="invalid_type")


def _kind(datatype: str) -> str:
    return "float" if datatype.startswith("FP") else "int" if datatype in INT_RANGE else datatype


def _all_fit(values: list, datatype: str) -> bool:
    """The common case in one numpy pass (no value-by-value loop)."""
    if datatype == "BYTES":
        return all(type(v) is str for v in values)
    try:
        array = np.asarray(values)
    except (ValueError, TypeError, OverflowError):
        return False
    if datatype == "BOOL":
        return array.dtype.kind == "b"
    if datatype in INT_RANGE:
        lo, hi = INT_RANGE[datatype]
        return array.dtype.kind in "biu" and (array.size == 0 or (lo <= int(array.min()) and int(array.max()) <= hi))
    return array.dtype.kind in "biuf"


def _whole_in_range(value, lo, hi) -> bool:
    if type(value) is float:
        return math.isfinite(value) and value.is_integer() and lo <= value <= hi
    return type(value) in (int, bool) and lo <= value <= hi


_FITS = {
    "float": (lambda v, lo, hi: type(v) in (int, float, bool), "a number"),
    "int": (_whole_in_range, "a whole number in its range"),
    "BOOL": (lambda v, lo, hi: type(v) is bool or (type(v) in (int, float) and v in (0, 1)), "true or false"),
    "BYTES": (lambda v, lo, hi: type(v) is str, "a string (UTF-8 text)"),
}


def _shown(value) -> str:
    if isinstance(value, bytes):
        return "bytes that are not UTF-8 text"
    if isinstance(value, (str, int, float, bool)):
        return repr(value)[:60]
    return f"a {type(value).__name__}"
