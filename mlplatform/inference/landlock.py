"""Landlock (Linux >= 5.13) through raw syscalls: read-only access to a few directory trees, and
nothing else on the file system; with ABI >= 4 no TCP bind/connect, with ABI >= 6 no abstract
unix sockets and no signals to processes outside the sandbox.

The ruleset is built while the paths can still be opened (before the host drops to an
unprivileged user that may not traverse them) and enforced later with `restrict_self()`.
Landlock applies to the calling thread (and later children): the host enforces it while it is
still single-threaded.
"""

from __future__ import annotations

import ctypes
import os
from collections.abc import Iterable

SYS_CREATE_RULESET, SYS_ADD_RULE, SYS_RESTRICT_SELF = 444, 445, 446  # x86_64 and aarch64 alike
CREATE_RULESET_VERSION = 1
RULE_PATH_BENEATH = 1

EXECUTE, WRITE_FILE, READ_FILE, READ_DIR = 1 << 0, 1 << 1, 1 << 2, 1 << 3
FS_ABI1 = (1 << 13) - 1  # EXECUTE .. MAKE_SYM
FS_BY_ABI = {1: FS_ABI1, 2: FS_ABI1 | 1 << 13, 3: FS_ABI1 | 3 << 13, 5: FS_ABI1 | 7 << 13}  # +REFER, TRUNCATE, IOCTL_DEV
NET_ALL = (1 << 0) | (1 << 1)  # BIND_TCP, CONNECT_TCP (ABI 4)
SCOPE_ALL = (1 << 0) | (1 << 1)  # ABSTRACT_UNIX_SOCKET, SIGNAL (ABI 6)
READ_ONLY_DIR = READ_FILE | READ_DIR
READ_ONLY_FILE = READ_FILE

_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


class RulesetAttr(ctypes.Structure):
    _fields_ = [("handled_access_fs", ctypes.c_uint64), ("handled_access_net", ctypes.c_uint64),
                ("scoped", ctypes.c_uint64)]


class PathBeneathAttr(ctypes.Structure):
    _pack_ = 1
    _fields_ = [("allowed_access", ctypes.c_uint64), ("parent_fd", ctypes.c_int32)]


def _syscall(*args) -> int:
    rc = _libc.syscall(*args)
    if rc < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return rc


def abi_version() -> int:
    """0 when the kernel has no Landlock (or it is disabled)."""
    try:
        return _syscall(SYS_CREATE_RULESET, None, ctypes.c_size_t(0), ctypes.c_uint32(CREATE_RULESET_VERSION))
    except OSError:
        return 0


def handled_fs(abi: int) -> int:
    return FS_BY_ABI[max(k for k in FS_BY_ABI if k <= abi)]


class Ruleset:
    """A ruleset allowing read-only access beneath `read_paths` (directories or files)."""

    def __init__(self, read_paths: Iterable[str]) -> None:
        self.abi = abi_version()
        if self.abi < 1:
            raise OSError("Landlock is not available in this kernel")
        attr = RulesetAttr(handled_fs(self.abi), NET_ALL if self.abi >= 4 else 0,
                           SCOPE_ALL if self.abi >= 6 else 0)
        size = ctypes.sizeof(RulesetAttr) if self.abi >= 6 else 16 if self.abi >= 4 else 8
        self.fd = _syscall(SYS_CREATE_RULESET, ctypes.byref(attr), ctypes.c_size_t(size), ctypes.c_uint32(0))
        self.paths: list[str] = []
        for path in read_paths:
            self._allow_read(path)

    def _allow_read(self, path: str) -> None:
        try:
            fd = os.open(path, os.O_PATH | os.O_CLOEXEC)
        except OSError:
            return  # a listed system directory this machine does not have
        try:
            access = READ_ONLY_DIR if os.path.isdir(path) else READ_ONLY_FILE
            rule = PathBeneathAttr(access, fd)
            _syscall(SYS_ADD_RULE, self.fd, RULE_PATH_BENEATH, ctypes.byref(rule), ctypes.c_uint32(0))
            self.paths.append(path)
        finally:
            os.close(fd)

    def restrict_self(self) -> None:
        """Needs no_new_privs (or CAP_SYS_ADMIN); irreversible for this thread and its children."""
        try:
            _syscall(SYS_RESTRICT_SELF, self.fd, ctypes.c_uint32(0))
        finally:
            os.close(self.fd)
