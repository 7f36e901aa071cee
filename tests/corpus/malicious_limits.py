"""Hostile files for attack classes 11 (joblib structure: object-array streams, payloads after raw
array bytes) and 12 (resource exhaustion: bombs, huge declared lengths and shapes, billion laughs,
deep nesting). Sized against the decompressed-size limit the tests load them with."""

from __future__ import annotations

import bz2
import gzip
import io
import pickle
import struct
import zlib
from pathlib import Path

import joblib
import numpy as np

from tests.corpus.malicious import Malicious, _OsSystem, _shell
from tests.corpus.opcodes import (APPEND, APPENDS, BUILD, EMPTY_LIST, MARK, NONE, STOP, call, dict_of, glob,
                                  integer, new_object, program, proto, raw_bytes, text, tup)


def _joblib_bytes(obj, compress=0) -> bytes:
    buffer = io.BytesIO()
    joblib.dump(obj, buffer, compress=compress)
    return buffer.getvalue()


def _object_array_stream(*elements: bytes) -> bytes:
    """A protocol-5 object array pickle (as joblib nests it) holding the given element opcodes."""
    dtype = call("numpy", "dtype", text("O8"), pickle.NEWFALSE, pickle.NEWTRUE)
    dtype += tup(integer(3), text("|"), NONE, NONE, NONE, integer(-1), integer(-1), integer(63)) + BUILD
    state = tup(integer(1), tup(integer(len(elements))), dtype, pickle.NEWFALSE,
                EMPTY_LIST + MARK + b"".join(elements) + APPENDS)
    array = call("numpy._core.multiarray", "_reconstruct", glob("numpy", "ndarray"), tup(integer(0)), raw_bytes(b"b"))
    return proto(5) + array + state + BUILD + STOP


def rebuilt_array() -> Malicious:
    """An array BUILT twice: a C object (KD tree, seed sequence) keeps a view of the first buffer,
    and numpy's __setstate__ frees it under that view."""
    dtype = call("numpy", "dtype", text("f8"), pickle.NEWFALSE, pickle.NEWTRUE)
    dtype += tup(integer(3), text("<"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0)) + BUILD
    state = tup(integer(1), tup(integer(1)), dtype, pickle.NEWFALSE, raw_bytes(bytes(8)))
    array = call("numpy._core.multiarray", "_reconstruct", glob("numpy", "ndarray"), tup(integer(0)), raw_bytes(b"b"))
    data = proto() + array + pickle.MEMOIZE + state + BUILD + pickle.POP + pickle.BINGET + b"\x00" + state + BUILD + STOP
    return Malicious("array_built_twice", 9, data, "unsafe_model", "BUILD applied twice")


def joblib_structure(marker: Path) -> list[Malicious]:
    names = np.array(["a", "b"], dtype=object)
    plain = _joblib_bytes(names)
    nested_start = plain.index(b"\x80\x05", 2)  # the object array's nested pickle stream
    hostile_nested = pickle.dumps(np.array([_OsSystem(f"touch {marker}")], dtype=object), protocol=5)
    bad = np.empty(2, dtype=object)
    bad[0], bad[1] = "a", [1, 2]  # a list is not a plain element
    wrong_element = pickle.dumps(bad, protocol=5)
    floats = _joblib_bytes(np.arange(4.0))
    injected = _object_array_stream(new_object("sklearn.linear_model._logistic", "LogisticRegression",
                                               dict_of(__class__=glob("sklearn.pipeline", "Pipeline"))), text("b"))
    inst = proto(5) + MARK + b"ios\nsystem\n" + STOP
    return [
        # joblib's own nested reader would only have inherited find_class; these need the rest
        Malicious("object_array_nested_state_injection", 11, plain[:nested_start] + injected, "unsafe_model",
                  "__class__"),
        Malicious("object_array_nested_inst_opcode", 11, plain[:nested_start] + inst, "unsafe_model", "INST"),
        rebuilt_array(),
        Malicious("object_array_nested_os_system", 11, plain[:nested_start] + hostile_nested, "unsafe_model", "system"),
        Malicious("object_array_nested_protocol2", 11, plain[:nested_start] + pickle.dumps(names, protocol=2),
                  "unsupported_format", "protocol 2"),
        Malicious("object_array_bad_element", 11, plain[:nested_start] + wrong_element, "unsafe_model", "builtins.list"),
        Malicious("payload_after_array_bytes", 11, floats[:-1] + call("os", "system", _shell(marker)) + b"0" + STOP,
                  "unsafe_model", "os.system"),
    ]


def _compressed_zeros(compressor, size: int) -> bytes:
    chunk = bytes(1 << 20)
    parts = [compressor.compress(chunk) for _ in range(size >> 20)]
    return b"".join(parts) + compressor.flush()


def resource_exhaustion(limit: int) -> list[Malicious]:
    big = limit * 2
    header = proto() + pickle.BINBYTES8 + struct.pack("<Q", big)
    gzip_header = gzip.compress(header, mtime=0)[:-8]  # a gzip member whose payload continues below
    laughs = proto() + EMPTY_LIST + pickle.MEMOIZE
    for level in range(1, 40):
        laughs += EMPTY_LIST + MARK + (pickle.BINGET + bytes([level - 1])) * 10 + APPENDS + pickle.MEMOIZE
    depth = 100_000
    many_reads = proto() + (pickle.BINBYTES + struct.pack("<I", 1 << 20) + bytes(1 << 20) + b"0") * (big >> 20)
    return [
        Malicious("gzip_bomb_of_zeros", 12, gzip.compress(bytes(big), compresslevel=1, mtime=0),
                  "unsupported_format", "not a pickle"),
        Malicious("zlib_bomb_pickle", 12, _zlib_bomb(header, big), "resource_limit", "decompressed size"),
        Malicious("bz2_bomb_pickle", 12, bz2.compress(header + bytes(1 << 20), 9), "resource_limit", "decompressed size"),
        Malicious("gzip_bomb_many_reads", 12, gzip.compress(many_reads, 1, mtime=0), "resource_limit",
                  "decompressed size"),
        Malicious("gzip_bomb_pickle", 12, gzip_header, "resource_limit", "decompressed size"),
        Malicious("huge_binbytes8", 12, header + STOP, "resource_limit", "BINBYTES8"),
        Malicious("huge_binunicode8", 12, proto() + pickle.BINUNICODE8 + struct.pack("<Q", 1 << 62) + STOP,
                  "resource_limit", "BINUNICODE8"),
        Malicious("huge_bytearray8", 12, proto() + pickle.BYTEARRAY8 + struct.pack("<Q", 1 << 40) + STOP,
                  "resource_limit", "BYTEARRAY8"),
        Malicious("huge_long4", 12, proto() + pickle.LONG4 + struct.pack("<i", 1 << 30) + STOP, "resource_limit", "LONG4"),
        Malicious("huge_frame", 12, proto() + pickle.FRAME + struct.pack("<Q", 1 << 50) + STOP,
                  "resource_limit", "decompressed size"),
        Malicious("huge_wrapper_shape", 12, _wrapper(tup(integer(10 ** 7), integer(10 ** 7))), "resource_limit",
                  "array size"),
        Malicious("huge_reconstruct_shape", 12, program(call("numpy._core.multiarray", "_reconstruct",
                                                             glob("numpy", "ndarray"), tup(integer(10 ** 12)),
                                                             raw_bytes(b"b"))), "resource_limit", "array size"),
        Malicious("negative_wrapper_shape", 12, _wrapper(tup(integer(-1))), "unsafe_model", "shape"),
        Malicious("billion_laughs", 12, laughs + STOP, "resource_limit", "nested containers"),
        Malicious("deep_nesting", 12, proto() + EMPTY_LIST * depth + APPEND * (depth - 1) + STOP,
                  "resource_limit", "deeper"),
    ]


def _zlib_bomb(header: bytes, size: int) -> bytes:
    compressor = zlib.compressobj(1)
    return compressor.compress(header) + _compressed_zeros(compressor, size)


def _wrapper(shape: bytes) -> bytes:
    dtype = call("numpy", "dtype", text("f8"), pickle.NEWFALSE, pickle.NEWTRUE)
    dtype += tup(integer(3), text("<"), NONE, NONE, NONE, integer(-1), integer(-1), integer(0)) + BUILD
    state = dict_of(subclass=glob("numpy", "ndarray"), shape=shape, order=text("C"), dtype=dtype,
                    allow_mmap=pickle.NEWFALSE, numpy_array_alignment_bytes=integer(16))
    return program(new_object("joblib.numpy_pickle", "NumpyArrayWrapper", state))


def _array(shape: tuple[int, ...], code: str, data: bytes) -> bytes:
    """numpy's own array pickle: _reconstruct, then BUILD (version, shape, dtype, fortran, raw)."""
    dtype = call("numpy", "dtype", text(code), pickle.NEWFALSE, pickle.NEWTRUE)
    state = tup(integer(1), tup(*map(integer, shape)), dtype, pickle.NEWFALSE, raw_bytes(data))
    return call("numpy._core.multiarray", "_reconstruct", glob("numpy", "ndarray"), tup(integer(0)),
                raw_bytes(b"b")) + state + BUILD


def _xz_with_dictionary(data: bytes, dict_byte: int) -> bytes:
    """An xz file whose LZMA2 filter header asks for a dictionary of (up to) 4 GiB."""
    import lzma

    out = bytearray(lzma.compress(data, format=lzma.FORMAT_XZ, filters=[{"id": lzma.FILTER_LZMA2,
                                                                         "dict_size": 1 << 20}]))
    start = 12  # the block header follows the 12-byte stream header
    end = start + (out[start] + 1) * 4
    header = out[start:end]
    header[header.index(b"\x21\x01") + 2] = dict_byte  # LZMA2 filter id, props size, dictionary byte
    header[-4:] = struct.pack("<I", zlib.crc32(bytes(header[:-4])))
    out[start:end] = header
    return bytes(out)


def pickle_level() -> list[Malicious]:
    """Second review, pickle level: names and lengths that grow the refusal itself, state that runs
    repr() mid-load, and arrays that cost nothing to build and everything to use."""
    carrier = "sklearn.linear_model._logistic", "LogisticRegression"
    import sklearn

    inner = new_object(*carrier, dict_of(_sklearn_version=text(sklearn.__version__)))
    estimator_as_version = new_object(*carrier, dict_of(_sklearn_version=inner))
    v0_wrapper = dict_of(subclass=glob("numpy", "ndarray"), shape=tup(integer(1 << 40)), order=text("C"),
                         dtype=call("numpy", "dtype", text("V0"), pickle.NEWFALSE, pickle.NEWTRUE),
                         allow_mmap=pickle.NEWFALSE, numpy_array_alignment_bytes=integer(16))
    return [
        # the refusal quoted the whole name: a multi-megabyte reason overflowed the host's reply header
        Malicious("global_name_megabytes", 8, program(glob("os", "x" * (2 << 20))), "unsafe_model",
                  "longer than any reviewed name"),
        # BaseEstimator.__setstate__ formats _sklearn_version into a warning: repr() of a half-built
        # estimator (get_params on missing attributes) ran mid-load, and the object went into details
        Malicious("sklearn_version_is_an_estimator", 8, program(estimator_as_version), "unsafe_model",
                  "_sklearn_version"),
        Malicious("sklearn_version_deep_list", 12, program(new_object(*carrier, dict_of(
            _sklearn_version=(EMPTY_LIST + MARK) * 5000 + APPENDS * 5000))), "unsafe_model", "_sklearn_version"),
        # zero-size items and zero-length axes charged nothing: 2**40 'V0' labels, a (0, 2**62) matrix
        Malicious("zero_itemsize_huge_array", 12, program(_array((1 << 40,), "V0", b"")), "resource_limit",
                  "array size"),
        Malicious("zero_length_axis_huge_array", 12, program(_array((0, 1 << 62), "f8", b"")), "resource_limit",
                  "array size"),
        Malicious("zero_itemsize_wrapper", 11, program(new_object("joblib.numpy_pickle", "NumpyArrayWrapper", v0_wrapper)),
                  "resource_limit", "array size"),
        # LZMAFile has no memory limit: the decoder allocates the header's dictionary size up front
        Malicious("xz_huge_dictionary", 12, _xz_with_dictionary(program(EMPTY_LIST), 40), "resource_limit",
                  "dictionary"),
    ]
