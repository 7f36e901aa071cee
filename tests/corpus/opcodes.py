"""A tiny pickle assembler for crafting hostile files (pickle.dumps cannot write most of them)."""

from __future__ import annotations

import pickle
import struct

MARK, STOP, REDUCE, BUILD, NEWOBJ = b"(", b".", b"R", b"b", b"\x81"
TUPLE, EMPTY_TUPLE, EMPTY_LIST, EMPTY_DICT = b"t", b")", b"]", b"}"
APPEND, APPENDS, SETITEM, SETITEMS, MEMOIZE, NONE = b"a", b"e", b"s", b"u", b"\x94", b"N"
STACK_GLOBAL, NEWTRUE, NEWFALSE = b"\x93", b"\x88", b"\x89"


def proto(version: int = 4) -> bytes:
    return pickle.PROTO + bytes([version])


def text(value: str) -> bytes:
    data = value.encode("utf-8")
    if len(data) < 256:
        return pickle.SHORT_BINUNICODE + bytes([len(data)]) + data
    return pickle.BINUNICODE + struct.pack("<I", len(data)) + data


def raw_bytes(value: bytes) -> bytes:
    if len(value) < 256:
        return pickle.SHORT_BINBYTES + bytes([len(value)]) + value
    return pickle.BINBYTES + struct.pack("<I", len(value)) + value


def integer(value: int) -> bytes:
    if 0 <= value < 256:
        return pickle.BININT1 + bytes([value])
    if -(2 ** 31) <= value < 2 ** 31:
        return pickle.BININT + struct.pack("<i", value)
    encoded = pickle.encode_long(value)
    return pickle.LONG1 + bytes([len(encoded)]) + encoded


def glob(module: str, name: str) -> bytes:
    return text(module) + text(name) + STACK_GLOBAL


def tup(*items: bytes) -> bytes:
    return MARK + b"".join(items) + TUPLE


def call(module: str, name: str, *args: bytes) -> bytes:
    return glob(module, name) + tup(*args) + REDUCE


def dict_of(**items: bytes) -> bytes:
    return EMPTY_DICT + MARK + b"".join(text(k) + v for k, v in items.items()) + SETITEMS


def program(body: bytes, version: int = 4) -> bytes:
    """PROTO + body + STOP (no framing: frames are optional)."""
    return proto(version) + body + STOP


def new_object(module: str, name: str, state: bytes) -> bytes:
    """NEWOBJ (cls, ()) + BUILD state: how protocol 4 writes ordinary instances."""
    return glob(module, name) + EMPTY_TUPLE + NEWOBJ + state + BUILD
