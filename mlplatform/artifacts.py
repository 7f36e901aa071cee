"""Content-addressed store for uploaded model files: `models_dir/<sha[:2]>/<sha256>`.

Uploads stream into a temporary file under `models_dir/tmp` (same filesystem, so the final
`os.replace` is atomic) while SHA-256 and the size cap are checked; the server chooses the path,
the client's filename is only metadata. Identical bytes are stored once. Directories are 0700 and
files 0600: only the platform user reads them (model hosts get opened descriptors from the host
manager). This module never parses a file; it only looks at the first bytes as they stream by to
label the container format.

A file may be shared by several versions, and two uploads of the same bytes may be in flight at
once, so removal needs care: every upload holds a shared `flock` on `<sha256>.lock` from before
the file is placed until its version is committed (or refused), and a file is only removed under
an exclusive lock, after the database says no version references it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import BinaryIO

from mlplatform.config import Settings
from mlplatform.errors import InvalidInput, PayloadTooLarge

CHUNK_BYTES = 1024 * 1024
DIR_MODE = 0o700
FILE_MODE = 0o600
# The prefixes joblib itself uses to recognise its compressed files (joblib.compressor).
_MAGIC = [
    (b"\x1f\x8b", "gzip"),
    (b"BZh", "bz2"),
    (b"\xfd7zXZ", "xz"),
    (b"]\x00\x00", "lzma"),
    (b"\x04\x22\x4d\x18", "lz4"),
    (b"\x78", "zlib"),
]


@dataclass
class _Pin:
    fd: int | None  # None once released: a closed descriptor's number may belong to another file

    def release(self) -> None:
        if self.fd is not None:
            os.close(self.fd)
            self.fd = None


@dataclass(frozen=True)
class StoredArtifact:
    sha256: str
    size: int
    path: Path
    format: str  # a label from the first bytes (e.g. "pickle-p5", "zlib"); the model host decides
    created: bool  # this upload wrote the file (False: identical bytes were already stored)
    _pin: _Pin | None = field(default=None, repr=False, compare=False)


def path_for(sha256: str, settings: Settings) -> Path:
    if len(sha256) != 64 or any(c not in "0123456789abcdef" for c in sha256):
        raise ValueError("not a lowercase hex SHA-256")
    return settings.models_dir / sha256[:2] / sha256


def store_upload(source: Iterable[bytes] | BinaryIO, settings: Settings) -> StoredArtifact:
    """Store the bytes and return where they are (no lock kept; see `stored` for uploads)."""
    with stored(source, settings) as artifact:
        return artifact


@contextlib.contextmanager
def stored(source: Iterable[bytes] | BinaryIO, settings: Settings) -> Iterator[StoredArtifact]:
    """Store the bytes and keep them pinned (shared lock) for the block, so a concurrent refused
    upload of the same bytes cannot remove the file before this one's version is committed."""
    tmp_dir = _ensure_dir(settings.models_dir / "tmp", settings)
    fd, tmp_name = tempfile.mkstemp(dir=tmp_dir, prefix="upload-")  # mode 0600
    tmp_path = Path(tmp_name)
    pin = None
    try:
        with os.fdopen(fd, "wb") as out:
            sha256, size, fmt = _copy(source, out, settings.max_model_bytes)
            out.flush()
            os.fsync(out.fileno())
        target = path_for(sha256, settings)
        _ensure_dir(target.parent, settings)
        pin = _Pin(_pin(_lock_path(target)))
        created = not target.exists()
        if created:
            os.replace(tmp_path, target)
            _fsync_dir(target.parent)
        yield StoredArtifact(sha256, size, target, fmt, created, pin)
    finally:
        tmp_path.unlink(missing_ok=True)
        if pin is not None:
            pin.release()


def remove_unreferenced(artifact: StoredArtifact, is_referenced: Callable[[str], bool]) -> bool:
    """Remove the stored file unless `is_referenced(sha256)` or another upload has it pinned.
    Call it inside `stored` (it reuses the pin). True when the file was removed."""
    if artifact._pin is None or artifact._pin.fd is None:
        raise ValueError("remove_unreferenced needs a pinned artifact (inside artifacts.stored)")
    try:  # converts our shared lock; fails while any other upload holds the same file
        fcntl.flock(artifact._pin.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    if is_referenced(artifact.sha256):
        return False
    artifact.path.unlink(missing_ok=True)
    _lock_path(artifact.path).unlink(missing_ok=True)
    return True


def _copy(source: Iterable[bytes] | BinaryIO, out: BinaryIO, limit: int) -> tuple[str, int, str]:
    digest = hashlib.sha256()
    size = 0
    head = b""
    for chunk in _chunks(source):
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(
                f"Model file exceeds {limit} bytes", details={"limit_bytes": limit}
            )
        if len(head) < 8:
            head += chunk[: 8 - len(head)]
        digest.update(chunk)
        out.write(chunk)
    if size == 0:
        raise InvalidInput("The model file is empty", code="empty_file", details={"field": "file"})
    return digest.hexdigest(), size, sniff_format(head)


def _chunks(source: Iterable[bytes] | BinaryIO) -> Iterator[bytes]:
    read = getattr(source, "read", None)
    if read is None:
        yield from (bytes(c) for c in source if c)
        return
    while chunk := read(CHUNK_BYTES):
        yield chunk


def sniff_format(head: bytes) -> str:
    """A label for the container format; decides nothing (the model host's loader does)."""
    if head[:1] == b"\x80" and len(head) > 1:
        return f"pickle-p{head[1]}"
    return next((name for magic, name in _MAGIC if head.startswith(magic)), "unknown")


def _lock_path(target: Path) -> Path:
    return target.with_name(target.name + ".lock")


def _pin(lock_path: Path) -> int:
    """A shared lock on the lock file that is in place now (a remover may have unlinked the one
    we opened while we waited; then open the new one)."""
    while True:
        fd = os.open(lock_path, os.O_RDWR | os.O_CREAT, FILE_MODE)
        fcntl.flock(fd, fcntl.LOCK_SH)
        try:
            if os.stat(lock_path).st_ino == os.fstat(fd).st_ino:
                return fd
        except FileNotFoundError:
            pass
        os.close(fd)


def _ensure_dir(path: Path, settings: Settings) -> Path:
    for directory in (settings.models_dir, path):
        if not directory.is_dir():
            directory.mkdir(mode=DIR_MODE, parents=True, exist_ok=True)
            os.chmod(directory, DIR_MODE)  # mkdir's mode is filtered by the umask
    return path


def _fsync_dir(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)
