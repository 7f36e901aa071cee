"""Framing: round trips of every wire dtype (sync and async), batches and results, and refusals of
malformed or oversized frames. No pickle and no object dtype on the wire."""

from __future__ import annotations

import asyncio
import json
import os
import socket
import struct
import threading

import numpy as np
import pytest

from mlplatform.inference import protocol
from mlplatform.inference.batch import Batch

ARRAYS = [
    np.arange(12, dtype=np.float64).reshape(3, 4),
    np.array([1.5, np.nan, -np.inf], dtype=np.float32),
    np.array([True, False, True]),
    np.arange(-3, 3, dtype=np.int8),
    np.array([2**63 - 1, -(2**63)], dtype=np.int64),
    np.array([2**64 - 1], dtype=np.uint64),
    np.array([0.5], dtype=np.float16),
    np.array([1.0, 2.0], dtype=">f8"),  # big-endian input travels little-endian
    np.arange(10, dtype=np.float64)[::3],  # not contiguous
    np.empty((0, 5)),
    np.array(["a", None, "é\u2028", ""], dtype=object),
    np.array([["x", "yy"], ["zzz", "w"]]),  # fixed-width unicode, 2-D
    np.array(["\ud800"], dtype=object),  # a lone surrogate survives (ASCII-escaped JSON)
]


def roundtrip(arrays, header=None) -> protocol.Frame:
    a, b = socket.socketpair()
    with a, b:
        parts = protocol.pack(header or {"op": "x"}, arrays)
        sender = threading.Thread(target=protocol.send, args=(a, parts))
        sender.start()
        frame = protocol.recv(b)
        sender.join()
    return frame


def same(got: np.ndarray, want) -> bool:
    want = np.asarray(want)
    if want.dtype.kind in "fc":
        return got.dtype == want.dtype.newbyteorder("=") and np.array_equal(got, want, equal_nan=True)
    return got.shape == want.shape and got.tolist() == want.tolist()


def test_every_wire_dtype_round_trips_exactly():
    frame = roundtrip(ARRAYS, {"op": "predict", "n": 1})
    assert frame.header["op"] == "predict" and frame.header["n"] == 1
    for got, want in zip(frame.arrays(), ARRAYS, strict=True):
        assert same(got, want), (got, want)
    assert all(d["dtype"] != "|O" and "O" not in d["dtype"] for d in frame.descriptors)


def test_decoded_arrays_are_writable_and_strings_are_objects():
    numbers, strings, fixed = roundtrip([np.ones(3), np.array(["a", None], dtype=object), np.array(["ab"])]).arrays()
    numbers[0] = 7.0  # models may work in place
    assert strings.dtype == object and strings.tolist() == ["a", None]
    assert fixed.dtype == np.dtype("<U2")


def test_numbers_held_in_object_arrays_travel_as_numbers():
    (got,) = roundtrip([np.array([1, 2.5, True], dtype=object)]).arrays()
    assert got.dtype == np.float64 and got.tolist() == [1.0, 2.5, 1.0]


@pytest.mark.parametrize("value", [
    np.array([{"a": 1}], dtype=object),
    np.array(["a", 1], dtype=object),
    np.array([1 + 2j]),
    np.array(["2024-01-01"], dtype="datetime64[D]"),
    np.array([b"bytes"]),
])
def test_values_that_are_not_plain_data_are_refused_on_encode(value):
    with pytest.raises(protocol.ProtocolError):
        protocol.pack({}, [value])


def test_batches_and_results_round_trip():
    batch = Batch(["age", "city", "member"], [np.array([30.0, 41.5]), np.array(["Oslo", None], dtype=object),
                                              np.array([True, False])])
    frame = roundtrip_parts(protocol.batch_parts({"op": "predict"}, batch))
    back = protocol.batch_from(frame)
    assert back.columns == batch.columns
    assert all(same(g, w) for g, w in zip(back.values, batch.values, strict=True))

    outputs = {"predictions": np.array(["yes", "no"]), "probabilities": np.array([[0.25, 0.75], [1.0, 0.0]])}
    result = protocol.result_from(roundtrip_parts(protocol.result_parts({"ok": True}, outputs)))
    assert list(result) == ["predictions", "probabilities"]
    assert all(same(result[k], outputs[k]) for k in outputs)


def roundtrip_parts(parts) -> protocol.Frame:
    a, b = socket.socketpair()
    with a, b:
        sender = threading.Thread(target=protocol.send, args=(a, parts))
        sender.start()
        frame = protocol.recv(b)
        sender.join()
    return frame


def raw_frame(header: dict | bytes, *buffers: bytes) -> bytes:
    head = header if isinstance(header, bytes) else json.dumps(header).encode()
    return struct.pack(">I", len(head)) + head + b"".join(buffers)


def recv_raw(data: bytes, **kw) -> protocol.Frame:
    a, b = socket.socketpair()
    with a, b:
        a.sendall(data)
        a.shutdown(socket.SHUT_WR)
        return protocol.recv(b, **kw)


@pytest.mark.parametrize("data, message", [
    (struct.pack(">I", protocol.MAX_HEADER_BYTES + 1), "exceeds"),
    (raw_frame(b"not json"), "not JSON"),
    (raw_frame(b"[1, 2]"), "not a JSON object"),
    (raw_frame({"buffers": [{"dtype": "|O", "shape": [1], "nbytes": 8}]}, b"x" * 8), "not allowed"),
    (raw_frame({"buffers": [{"dtype": "<f8", "shape": [2], "nbytes": 8}]}, b"x" * 8), "cannot be"),
    (raw_frame({"buffers": [{"dtype": "<f8", "shape": [-1], "nbytes": 8}]}), "bad shape"),
    (raw_frame({"buffers": [{"dtype": "<f8", "shape": [1] * 9, "nbytes": 8}]}), "bad shape"),
    (raw_frame({"buffers": [{"dtype": "<f8", "shape": [1], "nbytes": 8, "pickle": True}]}), "exactly"),
    (raw_frame({"buffers": [{"dtype": "<f8", "shape": [2**40], "nbytes": 2**43}]}), "exceeds"),
    (raw_frame({"buffers": "nope"}), "must be a list"),
])
def test_malformed_or_oversized_frames_are_refused(data, message):
    with pytest.raises(protocol.ProtocolError, match=message):
        recv_raw(data)


def test_the_frame_cap_is_checked_before_reading_buffers():
    header = {"buffers": [{"dtype": "|u1", "shape": [2000], "nbytes": 2000}]}
    with pytest.raises(protocol.ProtocolError, match="exceeds 1000"):
        recv_raw(raw_frame(header), max_frame=1000)  # the 2000 bytes were never sent


@pytest.mark.parametrize("buffer, message", [
    (b"{\"a\": 1}", "list matching"), (b"[1, 2]", "other than str"), (b"[\"a\"]", "list matching"),
    (b"\xff", "not JSON"),
])
def test_string_buffers_must_hold_a_list_of_str_or_null(buffer, message):
    header = {"buffers": [{"dtype": "str", "shape": [2], "nbytes": len(buffer)}]}
    with pytest.raises(protocol.ProtocolError, match=message):
        recv_raw(raw_frame(header, buffer)).arrays()


def test_fixed_width_strings_cannot_hold_null():
    header = {"buffers": [{"dtype": "<U3", "shape": [1], "nbytes": 6}]}
    with pytest.raises(protocol.ProtocolError, match="null"):
        recv_raw(raw_frame(header, b"[null]")).arrays()


def test_a_batch_needs_named_equal_length_1d_columns():
    for parts in (protocol.pack({"columns": ["a"]}, [np.ones(2), np.ones(2)]),
                  protocol.pack({"columns": ["a", "b"]}, [np.ones(2), np.ones(3)]),
                  protocol.pack({"columns": ["a"]}, [np.ones((2, 2))])):
        with pytest.raises(protocol.ProtocolError):
            protocol.batch_from(roundtrip_parts(parts))


def test_oversized_headers_are_refused_on_send(monkeypatch):
    monkeypatch.setattr(protocol, "MAX_HEADER_BYTES", 100)
    with pytest.raises(protocol.ProtocolError, match="header"):
        protocol.pack({"x": "y" * 200})
    monkeypatch.setattr(protocol, "MAX_FRAME_BYTES", 1000)
    with pytest.raises(protocol.ProtocolError, match="frame"):
        protocol.pack({}, [np.zeros(200)])


def test_a_truncated_frame_is_end_of_stream():
    a, b = socket.socketpair()
    with a, b:
        a.sendall(raw_frame({"buffers": [{"dtype": "<f8", "shape": [2], "nbytes": 16}]}, b"\0" * 8))
        a.shutdown(socket.SHUT_WR)
        with pytest.raises(EOFError):
            protocol.recv(b)


def test_file_descriptors_ride_on_the_frame(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"model bytes")
    a, b = socket.socketpair()
    fd = os.open(path, os.O_RDONLY)
    try:
        with a, b:
            protocol.send(a, protocol.pack({"op": "load"}), [fd])
            frame = protocol.recv(b, with_fds=True)
            (got,) = frame.fds
            assert os.pread(got, 100, 0) == b"model bytes"
            os.close(got)
    finally:
        os.close(fd)


def test_async_functions_speak_the_same_frames(tmp_path):
    path = tmp_path / "f"
    path.write_bytes(b"abc")

    async def run():
        ours, theirs = socket.socketpair()
        ours.setblocking(False)
        fd = os.open(path, os.O_RDONLY)
        big = np.arange(300_000, dtype=np.float64)  # larger than the socket buffer
        receiver = asyncio.get_running_loop().run_in_executor(None, lambda: protocol.recv(theirs, with_fds=True))
        await protocol.sock_send(ours, protocol.pack({"op": "a"}, [big]), [fd])
        frame = await receiver
        os.close(fd)
        assert np.array_equal(frame.arrays()[0], big) and len(frame.fds) == 1
        os.close(frame.fds[0])
        sender = asyncio.get_running_loop().run_in_executor(
            None, protocol.send, theirs, protocol.pack({"op": "b"}, [np.array(["x"], dtype=object)]))
        back = await protocol.sock_recv(ours)
        await sender
        assert back.header["op"] == "b" and back.arrays()[0].tolist() == ["x"]
        ours.close()
        theirs.close()

        server_frames = []

        async def serve(reader, writer):
            server_frames.append(await protocol.read_frame(reader))
            await protocol.write_frame(writer, protocol.pack({"ok": True}, [np.ones(2)]))
            writer.close()

        sock_path = tmp_path / "s.sock"
        server = await asyncio.start_unix_server(serve, path=str(sock_path))
        async with server:
            client = await asyncio.get_running_loop().run_in_executor(None, _sync_client_call, sock_path)
        assert server_frames[0].header["op"] == "c" and client.arrays()[0].tolist() == [1.0, 1.0]

    asyncio.run(run())


def _sync_client_call(path) -> protocol.Frame:
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(path))
        protocol.send(sock, protocol.pack({"op": "c"}, [np.zeros(1)]))
        return protocol.recv(sock)


def test_async_reader_refuses_oversized_frames():
    async def run():
        reader = asyncio.StreamReader()
        reader.feed_data(raw_frame({"buffers": [{"dtype": "|u1", "shape": [50], "nbytes": 50}]}))
        with pytest.raises(protocol.ProtocolError):
            await protocol.read_frame(reader, max_frame=40)

    asyncio.run(run())
