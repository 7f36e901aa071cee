"""Open Inference Protocol v2 in the service layer: metadata from real signatures, infer requests
(JSON, nested, binary, compressed) -> the model's columns, every refusal naming the tensor or the
column and row, output tensors, and infer on real model hosts equal to scikit-learn."""

from __future__ import annotations

import asyncio
import gzip
import io
import json
import struct
import zlib

import numpy as np
import pytest

from mlplatform.errors import InvalidInput, MLPlatformError, PayloadTooLarge, PermissionDenied, UnsupportedMediaType
from mlplatform.services import oip, principals, registry
from mlplatform.services.oip_tensors import read_request
from mlplatform.services.prediction_columns import to_batch
from mlplatform.services.prediction_inputs import Limits
from mlplatform.services.predictions import PredictionResult
from tests.prediction_support import MIXED_FRAME, iris_rows, model, model_file, signature
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)

LIMITS = Limits(max_rows=100, max_cells=1000)
MAX = 1 << 20


def request(inputs, **extra) -> bytes:
    return json.dumps({"inputs": inputs, **extra}).encode()


def tensor(name, datatype, shape, data) -> dict:
    return {"name": name, "datatype": datatype, "shape": shape, "data": data}


def table_of(body: bytes, kind: str, **kw):
    return oip.to_table(read_request(body, max_bytes=MAX, **kw), signature(kind), LIMITS)


def refused(call, *args, **kw) -> InvalidInput:
    with pytest.raises(InvalidInput) as caught:
        call(*args, **kw)
    return caught.value


def binary_body(inputs: list[tuple[str, str, np.ndarray]], outputs=None) -> tuple[bytes, str]:
    """What tritonclient sends by default: the JSON, then each input's bytes."""
    chunks, described = [], []
    for name, datatype, array in inputs:
        if datatype == "BYTES":
            raw = b"".join(struct.pack("<I", len(s)) + s for s in (v.encode() if isinstance(v, str) else v
                                                                     for v in array.ravel()))
        else:
            raw = array.tobytes()
        chunks.append(raw)
        described.append({"name": name, "datatype": datatype, "shape": list(array.shape),
                          "parameters": {"binary_data_size": len(raw)}})
    header = json.dumps({"inputs": described, **({"outputs": outputs} if outputs else {})}).encode()
    return header + b"".join(chunks), str(len(header))


# ---- metadata ------------------------------------------------------------------------------------

def test_metadata_of_an_array_a_dataframe_a_text_and_a_regression_model():
    iris = oip.metadata("iris", signature("imputed"), [1, 3])
    assert iris == {"name": "iris", "versions": ["1", "3"], "platform": "sklearn",
                    "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
                    "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                                {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}]}
    mixed = oip.metadata("mixed", signature("mixed"), [1])
    assert mixed["inputs"] == [{"name": "size", "datatype": "FP64", "shape": [-1]},
                               {"name": "color", "datatype": "BYTES", "shape": [-1]},
                               {"name": "n", "datatype": "INT64", "shape": [-1]},
                               {"name": "flag", "datatype": "BOOL", "shape": [-1]}]
    text = oip.metadata("reviews", signature("text"), [1])
    assert text["inputs"] == [{"name": "text", "datatype": "BYTES", "shape": [-1]}]
    assert text["outputs"] == [{"name": "predict", "datatype": "BYTES", "shape": [-1]},
                               {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 2]}]
    assert oip.metadata("ridge", signature("ridge"), [1])["outputs"] == [
        {"name": "predict", "datatype": "FP64", "shape": [-1]}]


# ---- requests -> tables --------------------------------------------------------------------------

def test_a_matrix_flat_or_nested_and_columns_give_the_same_batch():
    rows = iris_rows(3)
    flat = request([tensor("input-0", "FP64", [3, 4], [v for r in rows for v in r])])
    nested = request([tensor("anything", "FP32", [3, 4], rows)])
    columns = request([tensor(f"f{i}", "FP64", [3, 1] if i % 2 else [3], [r[i] for r in rows]) for i in (2, 0, 3, 1)])
    binary, length = binary_body([("input-0", "FP64", np.array(rows))])
    batches = [to_batch(table_of(body, "imputed", header_length=h), signature("imputed"))
               for body, h in ((flat, None), (nested, None), (columns, None), (binary, length))]
    for batch in batches:
        assert batch.columns == ["f0", "f1", "f2", "f3"]
        assert np.array_equal(np.column_stack(batch.values), np.array(rows))


def test_dataframe_columns_json_and_binary_with_strings_ints_and_bools():
    frame = MIXED_FRAME.head(3)
    body = request([tensor("size", "FP64", [3], frame["size"].tolist()),
                    tensor("color", "BYTES", [3, 1], [[c] for c in frame["color"]]),
                    tensor("n", "INT64", [3], frame["n"].tolist()),
                    tensor("flag", "BOOL", [3], frame["flag"].tolist())])
    binary, length = binary_body([("size", "FP32", frame["size"].to_numpy(np.float32)),
                                  ("color", "BYTES", frame["color"].to_numpy(object)),
                                  ("n", "INT32", frame["n"].to_numpy(np.int32)),
                                  ("flag", "BOOL", frame["flag"].to_numpy(bool))])
    for batch in (to_batch(table_of(body, "mixed"), signature("mixed")),
                  to_batch(table_of(binary, "mixed", header_length=length), signature("mixed"))):
        assert batch.column("color").tolist() == frame["color"].tolist()
        assert batch.column("n").tolist() == frame["n"].tolist() and batch.column("n").dtype == np.int64
        assert batch.column("flag").tolist() == frame["flag"].tolist()
        assert batch.column("size").tolist() == frame["size"].tolist()


def test_a_text_model_takes_its_column_or_any_single_bytes_tensor():
    for name, shape in (("text", [2]), ("input-0", [2, 1]), ("texts", [2])):
        table = table_of(request([tensor(name, "BYTES", shape, ["good", "bad"])]), "text")
        assert table.names == ["text"] and list(table.column_values()[0]) == ["good", "bad"]


def test_compressed_bodies_are_inflated_up_to_the_limit():
    body = request([tensor("input-0", "FP64", [1, 4], iris_rows(1)[0])])
    for encoded, encoding in ((gzip.compress(body), "gzip"), (zlib.compress(body), "deflate")):
        assert read_request(encoded, content_encoding=encoding, max_bytes=MAX).inputs[0].data == iris_rows(1)[0]
    with pytest.raises(PayloadTooLarge):
        read_request(gzip.compress(b" " * 5000 + body), content_encoding="gzip", max_bytes=4000)
    with pytest.raises(UnsupportedMediaType):
        read_request(body, content_encoding="br", max_bytes=MAX)
    with pytest.raises(MLPlatformError) as caught:
        read_request(b"not gzip", content_encoding="gzip", max_bytes=MAX)
    assert caught.value.code == "malformed_body"


STRUCTURE_ERRORS = [  # (body, header length, code, details)
    (b'{"inputs": [', None, "malformed_json", None),
    (b'{"inputs": []}', None, "invalid_body", {"column": None, "row": None}),
    (request([tensor("x", "FP128", [1], [1.0])]), None, "invalid_datatype", {"column": "x", "row": None}),
    (request([tensor("x", "FP64", [1, -4], [1.0])]), None, "invalid_shape", {"column": "x", "row": None}),
    (request([tensor("x", "FP64", [2, 4], [1.0] * 7)]), None, "invalid_shape", {"column": "x", "row": None}),
    (request([tensor("x", "FP64", [1], [1.0]), tensor("x", "FP64", [1], [1.0])]), None, "duplicate_column",
     {"column": "x", "row": None}),
    (request([{"name": "x", "datatype": "FP64", "shape": [1]}]), None, "invalid_body", {"column": "x", "row": None}),
    (request([tensor("x", "FP64", [1], [1.0])], outputs=[{"name": "scores"}]), None, "invalid_output",
     {"output": "scores"}),
    (request([tensor("x", "FP64", [1], [1.0])], outputs=[{"name": "predict"}, {"name": "predict"}]), None,
     "invalid_output", {"output": "predict"}),
    (request([tensor("x", "FP64", [1], [1.0])], id=7), None, "invalid_body", {"column": None, "row": None}),
    (request([tensor("x", "FP64", [1], [1.0])]), "9999", "invalid_header_length", None),
]


@pytest.mark.parametrize("body, length, code, details", STRUCTURE_ERRORS)
def test_malformed_requests_are_refused_naming_the_tensor(body, length, code, details):
    with pytest.raises(MLPlatformError) as caught:
        read_request(body, length, max_bytes=MAX)
    assert caught.value.code == code and caught.value.details == details
    assert isinstance(caught.value, InvalidInput) == (details is not None)


def test_binary_data_sizes_must_add_up():
    body, length = binary_body([("input-0", "FP64", np.ones((2, 4)))])
    assert refused(read_request, body + b"\0", length, max_bytes=MAX).code == "invalid_binary_data"
    assert refused(read_request, body[:-8], length, max_bytes=MAX).code == "invalid_binary_data"
    bools, length = binary_body([("flag", "BOOL", np.array([1, 2], dtype=np.uint8))])  # a 2 is no BOOL
    assert refused(read_request, bools, length, max_bytes=MAX).details["column"] == "flag"


VALUE_ERRORS = [  # (kind, inputs, code, column, row)
    ("imputed", [tensor("input-0", "FP64", [2, 4], [1, 2, 3, 4, 1, 2, "x", 4])], "invalid_type", "f2", 1),
    ("imputed", [tensor("input-0", "INT8", [2, 4], [1, 2, 3, 4, 1, 2, 3, 400])], "invalid_type", "f3", 1),
    ("imputed", [tensor("input-0", "UINT8", [1, 4], [1, -2, 3, 4])], "invalid_type", "f1", 0),
    ("imputed", [tensor("input-0", "FP64", [1, 3], [1, 2, 3])], "invalid_shape", "input-0", None),
    ("imputed", [tensor("f0", "FP64", [1], [1]), tensor("x", "FP64", [1], [1])], "unknown_column", "x", None),
    ("imputed", [tensor("a", "FP64", [1], [1]), tensor("b", "FP64", [1], [1])], "unknown_column", "a", None),
    ("imputed", [tensor(f"f{i}", "FP64", [1], [1.0]) for i in range(3)], "missing_column", "f3", None),
    ("imputed", [tensor("input-0", "FP64", [0, 4], [])], "empty_input", None, None),
    ("imputed", [tensor("input-0", "FP64", [101, 4], [1.0] * 404)], "too_many_rows", None, 100),
    ("mixed", [tensor("size", "FP64", [2], [1, 2]), tensor("color", "BYTES", [2], ["red", 3]),
               tensor("n", "INT64", [2], [1, 2]), tensor("flag", "BOOL", [2], [True, False])], "invalid_type",
     "color", 1),
    ("mixed", [tensor("size", "FP64", [2], [1, 2]), tensor("color", "BYTES", [2], ["red", "blue"]),
               tensor("n", "INT64", [2], [1, 2.5]), tensor("flag", "BOOL", [2], [True, False])], "invalid_type",
     "n", 1),
    ("mixed", [tensor("size", "FP64", [2], [1, 2]), tensor("color", "BYTES", [2], ["red", "blue"]),
               tensor("n", "INT64", [3], [1, 2, 3]), tensor("flag", "BOOL", [2], [True, 4])], "invalid_row", "n", None),
    ("mixed", [tensor("size", "FP64", [2, 2], [1, 2, 3, 4])] , "invalid_shape", "size", None),
]


@pytest.mark.parametrize("kind, inputs, code, column, row", VALUE_ERRORS)
def test_values_are_checked_against_the_datatype_naming_column_and_row(kind, inputs, code, column, row):
    error = refused(table_of, request(inputs), kind)
    assert error.code == code and error.details == {"column": column, "row": row}, error.message
    if column and row is not None:
        assert f"Column {column!r}, row {row}" in error.message


def test_the_model_columns_judge_what_the_datatype_allows():
    """A BYTES tensor for a float column passes the tensor checks; to_batch then names the cell."""
    rows = ["1", "2", "3", "4", "5", "6", "x", "8"]
    table = table_of(request([tensor("input-0", "BYTES", [2, 4], rows)]), "imputed")
    error = refused(to_batch, table, signature("imputed"))
    assert error.code == "invalid_type" and error.details == {"column": "f0", "row": 0}
    with_nulls = table_of(request([tensor("input-0", "FP64", [1, 4], [1, None, 3, 4])]), "ridge")
    assert refused(to_batch, with_nulls, signature("ridge")).details == {"column": "f1", "row": 0}
    assert np.isnan(to_batch(with_nulls, signature("imputed")).column("f1")[0])  # the imputer takes it


def test_binary_bytes_that_are_not_text_are_named():
    body, length = binary_body([("text", "BYTES", np.array([b"fine", b"\xff\xfe"], dtype=object))])
    error = refused(table_of, body, "text", header_length=length)
    assert error.details == {"column": "text", "row": 1} and "not UTF-8" in error.message


def test_predict_proba_is_refused_for_a_model_without_it():
    body = request([tensor("input-0", "FP64", [1, 4], iris_rows(1)[0])], outputs=[{"name": "predict_proba"}])
    parse = oip.parser(read_request(body, max_bytes=MAX))
    error = refused(parse, signature("ridge"), LIMITS)
    assert error.code == "invalid_output" and error.details == {"output": "predict_proba"}
    assert parse(signature("imputed"), LIMITS).n_rows == 1


# ---- responses -----------------------------------------------------------------------------------

def result(predictions, probabilities=None) -> PredictionResult:
    return PredictionResult(model="iris", version=3, predictions=predictions, cached=False, deprecated=False,
                            n_rows=len(predictions), probabilities=probabilities, classes=None)


def test_responses_carry_the_requested_outputs_with_datatypes_and_shapes():
    plain = read_request(request([tensor("x", "FP64", [1], [1.0])], id="abc"), max_bytes=MAX)
    answer = oip.infer_response(result([0, 2]), plain, "rid")
    assert answer == {"model_name": "iris", "model_version": "3", "id": "abc",
                      "outputs": [{"name": "predict", "datatype": "INT64", "shape": [2], "data": [0, 2]}]}
    both = read_request(request([tensor("x", "FP64", [1], [1.0])],
                                outputs=[{"name": "predict_proba"}, {"name": "predict"}]), max_bytes=MAX)
    answer = oip.infer_response(result(["a", "b"], [[0.25, 0.75], [1.0, 0.0]]), both, "rid")
    assert answer["id"] == "rid"
    assert answer["outputs"] == [
        {"name": "predict_proba", "datatype": "FP64", "shape": [2, 2], "data": [0.25, 0.75, 1.0, 0.0]},
        {"name": "predict", "datatype": "BYTES", "shape": [2], "data": ["a", "b"]}]
    assert oip.output_tensor("predict", [1.5, None])["datatype"] == "FP64"
    assert oip.output_tensor("predict", [True, False])["datatype"] == "BOOL"
    assert oip.output_tensor("predict", [[1.0, 2.0], [3.0, 4.0]])["shape"] == [2, 2]
    generated = oip.infer_response(result([1]), read_request(request([tensor("x", "FP64", [1], [1])]),
                                                             max_bytes=MAX))["id"]
    assert len(generated) == 32


# ---- on real model hosts -------------------------------------------------------------------------

@pytest.fixture
def me(member, principal_of):
    return principal_of(member)


def upload(principal, name: str, data: bytes) -> int:
    return registry.upload_version(principal, name, io.BytesIO(data), "model.joblib").version


@pytest.mark.usefixtures("clean_store", "gate")
def test_infer_answers_like_scikit_learn_with_probabilities(me):
    upload(me, "mixed", model_file("mixed"))
    frame = MIXED_FRAME.head(4)
    body = request([tensor(c, dt, [4], frame[c].tolist())
                    for c, dt in (("size", "FP64"), ("color", "BYTES"), ("n", "INT64"), ("flag", "BOOL"))],
                   outputs=[{"name": "predict"}, {"name": "predict_proba"}])
    parsed = read_request(body, max_bytes=MAX)
    answer = oip.infer_response(asyncio.run(oip.infer(me, "mixed", parsed)), parsed)
    predict, proba = answer["outputs"]
    assert predict["data"] == model("mixed").predict(frame).tolist() and predict["datatype"] == "INT64"
    assert proba["shape"] == [4, 2]
    assert np.allclose(np.reshape(proba["data"], (4, 2)), model("mixed").predict_proba(frame))
    metadata = oip.model_metadata(me, "mixed", "1")
    assert metadata["versions"] == ["1"] and [t["name"] for t in metadata["inputs"]] == list(frame.columns)
    assert oip.model_ready(me, "mixed") is True


@pytest.mark.usefixtures("clean_store", "gate")
def test_metadata_takes_a_predict_or_read_scope(me, member, new_key):
    upload(me, "iris", model_bytes("logreg"))
    for scopes in (("predict",), ("models:read",)):
        key = principals.authenticate_api_key(new_key(member, scopes=scopes).secret)
        assert oip.model_metadata(key, "iris")["inputs"][0]["shape"] == [-1, 4]
    writer = principals.authenticate_api_key(new_key(member, scopes=("models:write",)).secret)
    with pytest.raises(PermissionDenied):
        oip.model_metadata(writer, "iris")
