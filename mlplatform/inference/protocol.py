"""Framing between the host client, the host manager and model hosts: plain data only.

A frame is a 4-byte big-endian header length, a JSON header, then raw buffers. The header's
"buffers" list describes each buffer in order: {"dtype", "shape", "nbytes"}. Numeric and bool
arrays travel as little-endian C-order bytes; string arrays (object dtype holding str|None, or
fixed-width "<U") as a UTF-8 JSON list of their values in C order. Nothing is ever pickled and no
object dtype crosses the wire: the receiver rebuilds every array from dtype, shape and bytes, and
refuses a header or frame over its cap with ProtocolError.

Sync functions serve the client and the host (blocking sockets); the manager uses the async ones.
"""

from __future__ import annotations

import asyncio
import json
import math
import os
import re
import socket
import struct
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from mlplatform.inference.batch import Batch

# Headers carry signatures (a wide DataFrame model lists every column: ~64 bytes each) and one
# descriptor per batch column, so they are sized for ~100k columns.
MAX_HEADER_BYTES = 16 * 1024 * 1024
MAX_FRAME_BYTES = 512 * 1024 * 1024
MAX_BUFFERS = 131_072
MAX_DIMS = 8
MAX_FDS = 4
NUMERIC_DTYPES = frozenset(np.dtype(c).str for c in "?bBhHiIlLqQefd")  # bool, ints, floats; little-endian here
STRINGS = "str"  # dtype label of an object array of str|None
_UNICODE = re.compile(r"<U([0-9]{1,6})")
_PREFIX = struct.Struct(">I")
_IOV_MAX = 1024


class ProtocolError(Exception):
    """A malformed, oversized or unencodable frame."""


@dataclass
class Frame:
    header: dict
    buffers: list[bytearray] = field(default_factory=list)
    fds: list[int] = field(default_factory=list)

    @property
    def descriptors(self) -> list[dict]:
        return self.header.get("buffers", [])

    def arrays(self) -> list[np.ndarray]:
        return [decode_array(d, b) for d, b in zip(self.descriptors, self.buffers)]


# ---- arrays --------------------------------------------------------------------------------------

def encode_array(value) -> tuple[dict, bytes | memoryview]:
    a = np.asarray(value)
    if a.ndim > MAX_DIMS:
        raise ProtocolError(f"array has {a.ndim} dimensions (at most {MAX_DIMS})")
    if a.dtype.kind in "biuf" and a.dtype.itemsize <= 8:
        a = np.ascontiguousarray(a, dtype=a.dtype.newbyteorder("<"))
        data = memoryview(a.reshape(-1)).cast("B") if a.size else b""
        return {"dtype": a.dtype.str, "shape": list(a.shape), "nbytes": a.nbytes}, data
    if a.dtype.kind == "U":
        return _strings(a.dtype.str, a.shape, a.ravel().tolist())
    if a.dtype.kind == "O":
        values = a.ravel().tolist()
        if all(v is None or isinstance(v, str) for v in values):
            return _strings(STRINGS, a.shape, [None if v is None else str(v) for v in values])
        if values and all(isinstance(v, (bool, int, float)) for v in values):
            return encode_array(np.array(values).reshape(a.shape))  # numbers held as objects
        kinds = sorted({type(v).__name__ for v in values})
        raise ProtocolError(f"cannot send an object array holding {', '.join(kinds)}")
    raise ProtocolError(f"cannot send arrays of dtype {a.dtype}")


def _strings(dtype: str, shape, values: list) -> tuple[dict, bytes]:
    data = json.dumps(values).encode()  # ASCII escapes: even lone surrogates survive
    return {"dtype": dtype, "shape": list(shape), "nbytes": len(data)}, data


def decode_array(desc: dict, data: bytearray) -> np.ndarray:
    dtype, shape = desc["dtype"], tuple(desc["shape"])
    if dtype in NUMERIC_DTYPES:
        return np.frombuffer(data, dtype=np.dtype(dtype)).reshape(shape)  # a bytearray: writable
    try:
        values = json.loads(bytes(data))
    except ValueError as exc:
        raise ProtocolError(f"string buffer is not JSON: {exc}") from None
    if not isinstance(values, list) or len(values) != math.prod(shape):
        raise ProtocolError("string buffer does not hold a list matching its shape")
    if not all(v is None or isinstance(v, str) for v in values):
        raise ProtocolError("string buffer holds values other than str and null")
    if dtype == STRINGS:
        out = np.empty(len(values), dtype=object)
        out[:] = values
        return out.reshape(shape)
    if None in values:
        raise ProtocolError(f"a {dtype} array cannot hold null")
    return np.array(values, dtype=np.dtype(dtype)).reshape(shape)


def check_descriptor(desc) -> int:
    """Validate one buffer descriptor; return its nbytes."""
    if not isinstance(desc, dict) or set(desc) != {"dtype", "shape", "nbytes"}:
        raise ProtocolError("buffer descriptor needs exactly dtype, shape and nbytes")
    dtype, shape, nbytes = desc["dtype"], desc["shape"], desc["nbytes"]
    if not (isinstance(shape, list) and len(shape) <= MAX_DIMS
            and all(type(n) is int and n >= 0 for n in shape)):
        raise ProtocolError(f"bad shape {shape!r}")
    if type(nbytes) is not int or nbytes < 0:
        raise ProtocolError(f"bad nbytes {nbytes!r}")
    if dtype in NUMERIC_DTYPES:
        if nbytes != math.prod(shape) * np.dtype(dtype).itemsize:
            raise ProtocolError(f"{dtype} array of shape {shape} cannot be {nbytes} bytes")
    elif dtype != STRINGS and not (isinstance(dtype, str) and _UNICODE.fullmatch(dtype)):
        raise ProtocolError(f"dtype {dtype!r} is not allowed on the wire")
    return nbytes


# ---- frames --------------------------------------------------------------------------------------

def pack(header: dict, arrays: Sequence = ()) -> list[bytes | memoryview]:
    """The parts of a frame carrying `header` and `arrays` (header["buffers"] is filled in)."""
    encoded = [encode_array(a) for a in arrays]
    return pack_raw(header, [d for d, _ in encoded], [b for _, b in encoded])


def pack_raw(header: dict, descriptors: list[dict], buffers: Sequence) -> list[bytes | memoryview]:
    """Frame parts from already-encoded buffers (the manager forwards them without decoding)."""
    head = json.dumps({**header, "buffers": descriptors}, allow_nan=False).encode()
    if len(head) > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {len(head)} bytes exceeds {MAX_HEADER_BYTES}")
    total = len(head) + sum(d["nbytes"] for d in descriptors)
    if total > MAX_FRAME_BYTES:
        raise ProtocolError(f"frame of {total} bytes exceeds {MAX_FRAME_BYTES}")
    return [_PREFIX.pack(len(head)) + head, *[b for b in buffers if len(b)]]


def parse_header(raw: bytes, max_frame: int = MAX_FRAME_BYTES) -> dict:
    try:
        header = json.loads(raw)
    except ValueError as exc:
        raise ProtocolError(f"header is not JSON: {exc}") from None
    if not isinstance(header, dict):
        raise ProtocolError("header is not a JSON object")
    descriptors = header.setdefault("buffers", [])
    if not isinstance(descriptors, list) or len(descriptors) > MAX_BUFFERS:
        raise ProtocolError(f"buffers must be a list of at most {MAX_BUFFERS}")
    total = len(raw) + sum(check_descriptor(d) for d in descriptors)
    if total > max_frame:
        raise ProtocolError(f"frame of {total} bytes exceeds {max_frame}")
    return header


def header_length(prefix: bytes) -> int:
    (length,) = _PREFIX.unpack(prefix)
    if length > MAX_HEADER_BYTES:
        raise ProtocolError(f"header of {length} bytes exceeds {MAX_HEADER_BYTES}")
    return length


# ---- sync (client, host) ---------------------------------------------------------------------------

def send(sock: socket.socket, parts: list, fds: Sequence[int] = ()) -> None:
    first, rest = parts[0], parts[1:]
    if fds:
        sent = socket.send_fds(sock, [first], list(fds))  # fds ride on the frame's first bytes
        first = first[sent:]
    _send_gathered(sock, [memoryview(p).cast("B") for p in (first, *rest) if len(p)])


def _send_gathered(sock: socket.socket, views: list[memoryview]) -> None:
    """sendmsg with every part at once (one system call for a small frame), resumed after a
    partial send; at most IOV_MAX parts per call."""
    while views:
        views = _unsent(views, sock.sendmsg(views[:_IOV_MAX]))


def _unsent(views: list[memoryview], sent: int) -> list[memoryview]:
    """What is left of `views` after `sent` bytes of them went out."""
    left = list(views)
    while left and sent >= len(left[0]):
        sent -= len(left.pop(0))
    if left and sent:
        left[0] = left[0][sent:]
    return left


def _recv_exactly(sock: socket.socket, n: int, fds: list[int] | None = None) -> bytearray:
    buf = bytearray(n)
    view, got = memoryview(buf), 0
    while got < n:
        if fds is not None:
            data, new_fds, _flags, _addr = socket.recv_fds(sock, n - got, MAX_FDS)
            fds.extend(new_fds)
            view[got:got + len(data)] = data
            count = len(data)
        else:
            count = sock.recv_into(view[got:])
        if count == 0:
            raise EOFError("connection closed")
        got += count
    return buf


def recv(sock: socket.socket, *, max_frame: int = MAX_FRAME_BYTES, with_fds: bool = False) -> Frame:
    fds: list[int] | None = [] if with_fds else None
    try:
        prefix = _recv_exactly(sock, _PREFIX.size, fds)
        header = parse_header(_recv_exactly(sock, header_length(prefix)), max_frame)
        buffers = [_recv_exactly(sock, d["nbytes"]) for d in header["buffers"]]
    except BaseException:
        for fd in fds or ():
            _close(fd)
        raise
    return Frame(header, buffers, fds or [])


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


# ---- async (manager) -------------------------------------------------------------------------------

async def read_frame(reader: asyncio.StreamReader, *, max_frame: int = MAX_FRAME_BYTES) -> Frame:
    prefix = await reader.readexactly(_PREFIX.size)
    header = parse_header(await reader.readexactly(header_length(prefix)), max_frame)
    return Frame(header, [bytearray(await reader.readexactly(d["nbytes"])) for d in header["buffers"]])


async def write_frame(writer: asyncio.StreamWriter, parts: list) -> None:
    writer.writelines(parts)  # one write: the reader wakes once per frame, not once per part
    await writer.drain()


async def sock_send(sock: socket.socket, parts: list, fds: Sequence[int] = ()) -> None:
    """Send on a non-blocking socket; `fds` go with the first bytes (SCM_RIGHTS). A frame that
    fits in the socket's buffer goes in one sendmsg, as the blocking `send` sends it."""
    loop = asyncio.get_running_loop()
    if not fds:
        views = [memoryview(p).cast("B") for p in parts if len(p)]
        try:
            sent = sock.sendmsg(views[:_IOV_MAX])
        except BlockingIOError:
            sent = 0
        parts = _unsent(views, sent)
        if not parts:
            return
    first, rest = parts[0], parts[1:]
    while fds:
        try:
            sent = socket.send_fds(sock, [first], list(fds))
            first, fds = first[sent:], ()
        except BlockingIOError:
            await _writable(loop, sock)
    await loop.sock_sendall(sock, first)
    for part in rest:
        await loop.sock_sendall(sock, part)


async def _writable(loop: asyncio.AbstractEventLoop, sock: socket.socket) -> None:
    ready = loop.create_future()
    loop.add_writer(sock.fileno(), lambda: ready.done() or ready.set_result(None))
    try:
        await ready
    finally:
        loop.remove_writer(sock.fileno())


async def sock_recv(sock: socket.socket, *, max_frame: int = MAX_FRAME_BYTES) -> Frame:
    loop = asyncio.get_running_loop()

    async def exactly(n: int) -> bytearray:
        buf = bytearray(n)
        view, got = memoryview(buf), 0
        while got < n:
            count = await loop.sock_recv_into(sock, view[got:])
            if count == 0:
                raise EOFError("connection closed")
            got += count
        return buf

    header = parse_header(await exactly(header_length(await exactly(_PREFIX.size))), max_frame)
    return Frame(header, [await exactly(d["nbytes"]) for d in header["buffers"]])


# ---- messages ------------------------------------------------------------------------------------

def batch_parts(header: dict, batch: Batch) -> list:
    if batch.block is not None:  # one buffer instead of one per column
        return pack({**header, "columns": list(batch.columns), "block": True}, [batch.block])
    return pack({**header, "columns": list(batch.columns)}, batch.values)


def batch_from(frame: Frame) -> Batch:
    columns = frame.header.get("columns")
    arrays = frame.arrays()
    if frame.header.get("block") is True:
        return _block_batch(columns, arrays)
    if not isinstance(columns, list) or len(columns) != len(arrays) or not all(isinstance(c, str) for c in columns):
        raise ProtocolError("a batch needs one column name per buffer")
    if any(a.ndim != 1 for a in arrays) or len({len(a) for a in arrays}) > 1:
        raise ProtocolError("batch columns must be 1-D and of equal length")
    return Batch(columns=columns, values=arrays)


def _block_batch(columns, arrays: list[np.ndarray]) -> Batch:
    if not isinstance(columns, list) or not all(isinstance(c, str) for c in columns):
        raise ProtocolError("a block batch needs its column names")
    if len(arrays) != 1 or arrays[0].ndim != 2 or arrays[0].dtype != np.float64 \
            or arrays[0].shape[1] != len(columns):
        raise ProtocolError("a block batch is one 2-D float64 buffer with a column per name")
    return Batch.from_block(columns, arrays[0])


def result_parts(header: dict, outputs: dict) -> list:
    return pack({**header, "outputs": list(outputs)}, list(outputs.values()))


def result_from(frame: Frame) -> dict:
    names = frame.header.get("outputs", [])
    arrays = frame.arrays()
    if not isinstance(names, list) or len(names) != len(arrays):
        raise ProtocolError("a result needs one output name per buffer")
    return dict(zip(names, arrays))
