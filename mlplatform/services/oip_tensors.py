"""Open Inference Protocol v2 infer requests: the body -> named tensors with flat, row-major data.

A request is the JSON object `{"id"?, "parameters"?, "inputs": [{"name", "datatype", "shape",
"data"}], "outputs"?: [{"name"}]}`. `data` is row-major, flat or nested like the shape.

It may be followed by binary tensor data (Triton's binary tensor data extension, which
tritonclient uses by default): the `Inference-Header-Content-Length` header says how many bytes
the JSON takes; an input with `parameters.binary_data_size` takes that many of the bytes after
it, in input order: little-endian values, BOOL one byte each, BYTES each a 4-byte little-endian
length then the bytes. Bodies sent gzip- or deflate-encoded are inflated up to the body limit.

Only the structure is checked here (datatypes, shapes against the number of values, binary
sizes); whether the values fit their datatype and the model's columns is judged by oip.to_table,
which knows the column and row of every value. Errors name the tensor (`details.column`).
"""

from __future__ import annotations

import json
import math
import struct
import zlib
from dataclasses import dataclass

import numpy as np

from mlplatform.errors import InvalidInput, MLPlatformError, PayloadTooLarge, UnsupportedMediaType
from mlplatform.services.prediction_inputs import problem

NUMERIC = {"FP16": "<f2", "FP32": "<f4", "FP64": "<f8", "INT8": "<i1", "INT16": "<i2", "INT32": "<i4",
           "INT64": "<i8", "UINT8": "<u1", "UINT16": "<u2", "UINT32": "<u4", "UINT64": "<u8"}
DATATYPES = (*NUMERIC, "BOOL", "BYTES")
OUTPUTS = ("predict", "predict_proba")
MAX_DIMENSIONS = 8
INFLATE = {"gzip": 16 + zlib.MAX_WBITS, "deflate": zlib.MAX_WBITS, "identity": None}


@dataclass
class Tensor:
    name: str
    datatype: str
    shape: list[int]
    data: list  # flat, row-major; JSON values as sent, or the decoded binary values
    binary: bool = False  # decoded from binary data: the values already fit the datatype

    def width(self) -> int:
        """Values per row (the product of the dimensions after the first)."""
        return math.prod(self.shape[1:])


@dataclass
class InferRequest:
    id: str | None
    inputs: list[Tensor]
    outputs: list[str] | None  # the requested outputs by name; None: the default (`predict`)


def read_request(body: bytes, header_length: str | None = None, content_encoding: str | None = None,
                 *, max_bytes: int) -> InferRequest:
    body = inflated(body, content_encoding, max_bytes)
    header, binary = _split(body, header_length)
    document = _load_json(header)
    if not isinstance(document, dict) or not isinstance(document.get("inputs"), list) or not document["inputs"]:
        raise problem('An infer request is a JSON object with a non-empty "inputs" list', code="invalid_body")
    request_id = document.get("id")
    if request_id is not None and not isinstance(request_id, str):
        raise problem('"id" must be a string', code="invalid_body")
    chunks = _BinaryChunks(binary)
    inputs = [_tensor(item, chunks) for item in document["inputs"]]
    chunks.finish()
    names = [t.name for t in inputs]
    twice = next((n for i, n in enumerate(names) if n in names[:i]), None)
    if twice is not None:
        raise problem(f"Input tensor {twice[:80]!r} is given twice", column=twice, code="duplicate_column")
    return InferRequest(request_id, inputs, _outputs(document.get("outputs")))


def inflated(body: bytes, content_encoding: str | None, max_bytes: int) -> bytes:
    encoding = (content_encoding or "identity").strip().lower()
    if encoding not in INFLATE:
        raise UnsupportedMediaType(f"Content-Encoding {encoding[:40]!r} is not supported (gzip, deflate)",
                                   code="unsupported_encoding")
    if INFLATE[encoding] is None:
        return body
    inflater = zlib.decompressobj(INFLATE[encoding])
    try:
        out = inflater.decompress(body, max_bytes + 1)  # never more than the limit in memory
    except zlib.error as exc:
        raise MLPlatformError(f"The {encoding} body cannot be inflated: {exc}", code="malformed_body") from None
    if len(out) > max_bytes:
        raise PayloadTooLarge(f"Request body exceeds {max_bytes} bytes once inflated", code="payload_too_large",
                              details={"limit_bytes": max_bytes})
    return out


def _split(body: bytes, header_length: str | None) -> tuple[bytes, bytes]:
    if header_length is None:
        return body, b""
    length = header_length.strip()
    if not length.isdigit() or not 0 < int(length) <= len(body):
        raise MLPlatformError(f"Inference-Header-Content-Length must be a byte count within the body "
                              f"({len(body)} bytes), not {length[:20]!r}", code="invalid_header_length")
    return body[:int(length)], body[int(length):]


def _load_json(header: bytes):
    try:
        return json.loads(header)  # NaN and Infinity literals parse; the column checks judge them
    except (ValueError, RecursionError) as exc:
        message = str(exc)[:200] if isinstance(exc, ValueError) else "nested too deeply"
        raise MLPlatformError(f"Request body is not valid JSON: {message}", code="malformed_json") from None


def _tensor(item, chunks: _BinaryChunks) -> Tensor:
    if not isinstance(item, dict) or not isinstance(item.get("name"), str):
        raise problem('Each input is an object with "name", "datatype", "shape" and "data"', code="invalid_body")
    name = item["name"]
    datatype, shape = item.get("datatype"), item.get("shape")
    if datatype not in DATATYPES:
        raise problem(f"Input {name[:80]!r}: datatype {str(datatype)[:20]!r} is not one of "
                      + ", ".join(DATATYPES), column=name, code="invalid_datatype")
    if not _valid_shape(shape):
        raise problem(f"Input {name[:80]!r}: shape must be a list of 1 to {MAX_DIMENSIONS} whole numbers "
                      ">= 0", column=name, code="invalid_shape")
    size = _binary_size(item, name)
    if size is not None:
        tensor = Tensor(name, datatype, shape, _decoded(chunks.take(size, name), datatype, name), binary=True)
    elif "data" in item:
        tensor = Tensor(name, datatype, shape, _flat(item["data"], name))
    else:
        raise problem(f"Input {name[:80]!r} has no data", column=name, code="invalid_body")
    expected = math.prod(shape)
    if len(tensor.data) != expected:
        raise problem(f"Input {name[:80]!r} has shape {shape} ({expected} values) but holds "
                      f"{len(tensor.data)} values", column=name, code="invalid_shape")
    return tensor


def _valid_shape(shape) -> bool:
    return (isinstance(shape, list) and 1 <= len(shape) <= MAX_DIMENSIONS
            and all(type(d) is int and d >= 0 for d in shape))


def _binary_size(item: dict, name: str) -> int | None:
    parameters = item.get("parameters")
    if parameters is None:
        return None
    if not isinstance(parameters, dict):
        raise problem(f'Input {name[:80]!r}: "parameters" must be an object', column=name, code="invalid_body")
    size = parameters.get("binary_data_size")
    if size is not None and (type(size) is not int or size < 0):
        raise problem(f"Input {name[:80]!r}: binary_data_size must be a byte count", column=name,
                      code="invalid_body")
    return size


def _flat(data, name: str) -> list:
    """Row-major values of flat or nested `data` (nesting as deep as the JSON parser allows)."""
    if not isinstance(data, list):
        raise problem(f'Input {name[:80]!r}: "data" must be a list', column=name, code="invalid_body")
    if not any(isinstance(v, list) for v in data):
        return data
    out: list = []
    for value in data:
        if isinstance(value, list):
            out.extend(_flat(value, name))
        else:
            out.append(value)
    return out


class _BinaryChunks:
    """The binary part of a body, handed out in input order."""

    def __init__(self, binary: bytes):
        self.binary, self.offset = binary, 0

    def take(self, size: int, name: str) -> bytes:
        if self.offset + size > len(self.binary):
            raise problem(f"Input {name[:80]!r}: binary_data_size {size} goes past the end of the binary data "
                          "(send Inference-Header-Content-Length with the JSON's length)",
                          column=name, code="invalid_binary_data")
        chunk = self.binary[self.offset:self.offset + size]
        self.offset += size
        return chunk

    def finish(self) -> None:
        if self.offset != len(self.binary):
            raise problem(f"{len(self.binary) - self.offset} bytes of binary data follow the inputs' "
                          "binary_data_size", code="invalid_binary_data")


def _decoded(chunk: bytes, datatype: str, name: str) -> list:
    if datatype == "BYTES":
        return _bytes_elements(chunk, name)
    dtype = np.dtype(np.bool_ if datatype == "BOOL" else NUMERIC[datatype])
    if len(chunk) % dtype.itemsize:
        raise problem(f"Input {name[:80]!r}: {len(chunk)} bytes is not a whole number of {datatype} values",
                      column=name, code="invalid_binary_data")
    values = np.frombuffer(chunk, dtype=np.uint8 if datatype == "BOOL" else dtype)
    if datatype == "BOOL":
        if (values > 1).any():
            raise problem(f"Input {name[:80]!r}: BOOL bytes must be 0 or 1", column=name,
                          code="invalid_binary_data")
        values = values.astype(np.bool_)
    return values.tolist()  # Python numbers: what the JSON path and the column checks expect


def _bytes_elements(chunk: bytes, name: str) -> list:
    """BYTES elements: UTF-8 text as str; anything else stays bytes (to_table names it)."""
    out: list = []
    offset = 0
    while offset < len(chunk):
        if offset + 4 > len(chunk):
            raise problem(f"Input {name[:80]!r}: truncated BYTES element length", column=name,
                          code="invalid_binary_data")
        (length,) = struct.unpack_from("<I", chunk, offset)
        end = offset + 4 + length
        if end > len(chunk):
            raise problem(f"Input {name[:80]!r}: a BYTES element runs past its binary data", column=name,
                          code="invalid_binary_data")
        raw = chunk[offset + 4:end]
        try:
            out.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            out.append(raw)
        offset = end
    return out


def _outputs(outputs) -> list[str] | None:
    if outputs is None:
        return None
    if not isinstance(outputs, list) or not all(isinstance(o, dict) and isinstance(o.get("name"), str)
                                                for o in outputs):
        raise problem('"outputs" must be a list of objects with a "name"', code="invalid_body")
    names = [o["name"] for o in outputs]
    for i, (name, output) in enumerate(zip(names, outputs)):
        if name not in OUTPUTS:
            raise _output_problem(f"Unknown output {name[:80]!r}: the outputs are " + ", ".join(OUTPUTS), name)
        if name in names[:i]:
            raise _output_problem(f"Output {name!r} is requested twice", name)
        if isinstance(output.get("parameters"), dict) and "classification" in output["parameters"]:
            raise _output_problem("The classification extension is not supported: request "
                                  "`predict_proba` for class probabilities", name)
    return names


def _output_problem(message: str, name: str) -> InvalidInput:
    return InvalidInput(message, code="invalid_output", details={"output": name[:200]})
