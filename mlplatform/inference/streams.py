"""Opening an uploaded file as a pickle stream: format sniffing by magic bytes (joblib's compressor
prefixes) and a reader that caps the decompressed size.

Reads are chunked, so a declared length never allocates more than the data that actually exists,
and the decompressors are asked for bounded output per call, so a bomb stops at the cap."""

from __future__ import annotations

import bz2
import gzip
import io
import lzma
import zlib

from joblib import compressor as jc

from mlplatform.inference.limits import Rejected, over_limit

CHUNK = 1 << 20
PICKLE_HEADS = (b"\x80\x04", b"\x80\x05")
# Same prefixes joblib's compressor registry sniffs (joblib.compressor), checked in this order.
COMPRESSED = (("gzip", jc._GZIP_PREFIX), ("bz2", jc._BZ2_PREFIX), ("xz", jc._XZ_PREFIX),
              ("lzma", jc._LZMA_PREFIX), ("zlib", jc._ZLIB_PREFIX))


LZMA_MEMLIMIT = 256 << 20  # decoder memory (dictionary): xz -9 needs 65 MiB; a header may ask for 4 GiB


class ZlibReader(io.RawIOBase):
    """joblib's zlib format (a bare zlib stream) with bounded output per read."""

    def __init__(self, raw):
        self._raw = raw
        self._decompressor = zlib.decompressobj()

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._decompressor.eof:
            chunk = self._decompressor.unconsumed_tail or self._raw.read(64 * 1024)
            if not chunk:
                raise EOFError("zlib stream ended before its end marker")
            out = self._decompressor.decompress(chunk, len(buffer))
            if out:
                buffer[: len(out)] = out
                return len(out)
        return 0


class LzmaReader(io.RawIOBase):
    """joblib's xz / lzma-alone formats: one stream, bounded output per read, and a cap on the
    decoder's memory (LZMAFile has none: the dictionary size comes from the file's header and
    the decoder allocates it up front). Concatenated streams are read like LZMAFile does."""

    def __init__(self, raw, fmt: int):
        self._raw, self._format = raw, fmt
        self._decompressor = lzma.LZMADecompressor(format=fmt, memlimit=LZMA_MEMLIMIT)
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while True:
            if self._decompressor.eof:
                rest = self._decompressor.unused_data or self._raw.read(64 * 1024)
                if not rest:
                    return 0
                self._decompressor = lzma.LZMADecompressor(format=self._format, memlimit=LZMA_MEMLIMIT)
                self._pending = rest
            if self._decompressor.needs_input:
                chunk = self._pending or self._raw.read(64 * 1024)
                self._pending = b""
                if not chunk:
                    raise EOFError("lzma stream ended before its end marker")
            else:
                chunk = b""
            try:
                out = self._decompressor.decompress(chunk, len(buffer))
            except lzma.LZMAError as exc:
                if "limit" in str(exc):
                    raise over_limit(f"the lzma stream's decoder needs more than {LZMA_MEMLIMIT} bytes of "
                                     "memory (dictionary size in its header)", limit_bytes=LZMA_MEMLIMIT) from None
                raise
            if out:
                buffer[: len(out)] = out
                return len(out)


class BudgetedReader:
    """A read-only stream that refuses to hand out more than `limit` bytes in total."""

    def __init__(self, raw, limit: int):
        self._raw = raw
        self.limit = limit
        self.remaining = limit

    def _refuse(self, n: int):
        return over_limit(f"decompressed size exceeds {self.limit} bytes", limit_bytes=self.limit,
                          requested=n)

    def read(self, n: int = -1) -> bytes:
        if n is None or n < 0:
            raise ValueError("unbounded reads are not supported")
        if n > self.remaining:
            raise self._refuse(n)
        if n <= CHUNK:
            data = self._raw.read(n)
        else:
            parts, left = [], n
            while left:
                part = self._raw.read(min(left, CHUNK))
                if not part:
                    break
                parts.append(part)
                left -= len(part)
            data = b"".join(parts)
        self.remaining -= len(data)
        return data

    def readline(self) -> bytes:  # only text opcodes use it, and they are refused
        data = self._raw.readline(min(self.remaining, 1 << 16))
        self.remaining -= len(data)
        return data

    def readinto(self, buffer) -> int:
        data = self.read(len(buffer))
        buffer[: len(data)] = data
        return len(data)


def sniff(head: bytes) -> str:
    """'pickle' or a compressor name; Rejected(unsupported_format) for anything else."""
    if head[:2] in PICKLE_HEADS:
        return "pickle"
    if head.startswith(jc._ZFILE_PREFIX):
        raise Rejected("unsupported_format", "legacy joblib format (joblib < 0.10, 'ZF' header) is not supported")
    if head.startswith(jc._LZ4_PREFIX):
        raise Rejected("unsupported_format", "lz4-compressed joblib files are not supported")
    for name, prefix in COMPRESSED:
        if head.startswith(prefix):
            return name
    if head[:1] == b"\x80" and len(head) > 1:
        raise Rejected("unsupported_format", f"pickle protocol {head[1]} is not supported (save with protocol 4 or 5)")
    raise Rejected("unsupported_format", "not a pickle (protocol 4/5) or joblib file")


def open_stream(fileobj, limit: int) -> tuple[str, BudgetedReader]:
    head = fileobj.read(8)
    fileobj.seek(0)
    kind = sniff(head)
    if kind == "pickle":
        raw = fileobj
    elif kind == "zlib":
        raw = io.BufferedReader(ZlibReader(fileobj), buffer_size=CHUNK)
    elif kind == "gzip":
        raw = gzip.GzipFile(fileobj=fileobj, mode="rb")
    elif kind == "bz2":
        raw = bz2.BZ2File(fileobj, mode="rb")
    else:
        raw = io.BufferedReader(LzmaReader(fileobj, lzma.FORMAT_XZ if kind == "xz" else lzma.FORMAT_ALONE),
                                buffer_size=CHUNK)
    return kind, BudgetedReader(raw, limit)


DECOMPRESSION_ERRORS = (zlib.error, gzip.BadGzipFile, lzma.LZMAError, EOFError, OSError)
