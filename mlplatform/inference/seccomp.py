"""A seccomp filter for model hosts, built with the system's libseccomp.so.2 through ctypes.

Default: allow. Denied with EPERM: starting programs or processes, creating sockets, tracing other
processes, namespaces/mounts after set-up, io_uring (it bypasses this filter), anonymous
executable files, and every syscall that creates, writes, renames, removes or re-permissions a
file. `clone3` and `openat2` answer ENOSYS: their flags live in a struct the filter cannot read,
so glibc falls back to `clone`/`openat`, whose flags it can. Threads stay possible (`clone` with
CLONE_THREAD): OpenMP/BLAS pools and joblib's threading backend need them.

No Python binding is needed (python3-seccomp is not on PyPI); libseccomp ships with Debian's base
image because apt depends on it.
"""

from __future__ import annotations

import ctypes
import errno
import os

SCMP_ACT_ALLOW = 0x7FFF0000
SCMP_CMP_MASKED_EQ = 7
SCMP_FLTATR_CTL_NNP = 3
SCMP_FLTATR_CTL_TSYNC = 4
CLONE_THREAD = 0x00010000
WRITE_FLAGS = (os.O_WRONLY, os.O_RDWR, os.O_CREAT, os.O_TRUNC, os.O_APPEND)

DENIED = (
    # programs and processes
    "execve", "execveat", "fork", "vfork",
    # network: the host only uses the socketpair it inherited
    "socket", "socketpair", "connect", "bind", "listen", "accept", "accept4",
    # other processes and the kernel
    "ptrace", "process_vm_readv", "process_vm_writev", "process_madvise", "pidfd_getfd",
    "mount", "umount2", "pivot_root", "chroot", "unshare", "setns", "move_mount", "open_tree",
    "fsopen", "fsmount", "fspick", "mount_setattr",
    "io_uring_setup", "io_uring_enter", "io_uring_register", "memfd_create", "memfd_secret",
    "bpf", "perf_event_open", "userfaultfd", "keyctl", "add_key", "request_key",
    "kexec_load", "kexec_file_load", "init_module", "finit_module", "delete_module",
    "name_to_handle_at", "open_by_handle_at", "quotactl", "swapon", "swapoff", "reboot",
    # the file system: nothing is created, written, moved, removed or re-permissioned
    "creat", "unlink", "unlinkat", "rename", "renameat", "renameat2", "mkdir", "mkdirat", "rmdir",
    "chmod", "fchmod", "fchmodat", "fchmodat2", "chown", "fchown", "lchown", "fchownat",
    "link", "linkat", "symlink", "symlinkat", "truncate", "ftruncate", "mknod", "mknodat",
    "setxattr", "lsetxattr", "fsetxattr", "removexattr", "lremovexattr", "fremovexattr",
    "utime", "utimes", "utimensat", "futimesat", "fallocate",
)
NOT_IMPLEMENTED = ("clone3", "openat2")
OPEN_FLAGS_ARG = {"open": 1, "openat": 2}  # which argument holds the O_* flags


class ArgCmp(ctypes.Structure):
    _fields_ = [("arg", ctypes.c_uint), ("op", ctypes.c_int),
                ("datum_a", ctypes.c_uint64), ("datum_b", ctypes.c_uint64)]


def errno_action(code: int) -> int:
    return 0x00050000 | (code & 0xFFFF)  # SCMP_ACT_ERRNO


class Filter:
    """Build the filter (load the library, add rules) early, while files can still be opened;
    `load()` it last: from then on the whole process (every thread, TSYNC) is filtered."""

    def __init__(self) -> None:
        self.lib = ctypes.CDLL("libseccomp.so.2", use_errno=True)
        self.lib.seccomp_init.restype = ctypes.c_void_p
        self.lib.seccomp_init.argtypes = [ctypes.c_uint32]
        self.lib.seccomp_syscall_resolve_name.argtypes = [ctypes.c_char_p]
        self.lib.seccomp_rule_add_array.argtypes = [ctypes.c_void_p, ctypes.c_uint32, ctypes.c_int,
                                                    ctypes.c_uint, ctypes.POINTER(ArgCmp)]
        self.lib.seccomp_attr_set.argtypes = [ctypes.c_void_p, ctypes.c_int, ctypes.c_uint32]
        self.lib.seccomp_load.argtypes = [ctypes.c_void_p]
        self.lib.seccomp_release.argtypes = [ctypes.c_void_p]
        self.ctx = self.lib.seccomp_init(SCMP_ACT_ALLOW)
        if not self.ctx:
            raise OSError("seccomp_init failed")
        self.rules = 0
        self._check(self.lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_NNP, 1), "set no_new_privs")
        self._check(self.lib.seccomp_attr_set(self.ctx, SCMP_FLTATR_CTL_TSYNC, 1), "set TSYNC")
        self._add_rules()

    def _check(self, rc: int, what: str) -> None:
        if rc < 0:
            raise OSError(-rc, f"seccomp: {what}: {os.strerror(-rc)}")

    def _rule(self, action: int, name: str, *cmps: tuple[int, int, int]) -> None:
        nr = self.lib.seccomp_syscall_resolve_name(name.encode())
        if nr < 0:  # this kernel/arch has no such syscall: nothing to deny
            return
        args = (ArgCmp * max(len(cmps), 1))(*[ArgCmp(a, SCMP_CMP_MASKED_EQ, m, v) for a, m, v in cmps])
        self._check(self.lib.seccomp_rule_add_array(self.ctx, action, nr, len(cmps), args), f"rule {name}")
        self.rules += 1

    def _add_rules(self) -> None:
        eperm = errno_action(errno.EPERM)
        for name in DENIED:
            self._rule(eperm, name)
        for name in NOT_IMPLEMENTED:
            self._rule(errno_action(errno.ENOSYS), name)
        # clone: threads only (a new process is a clone without CLONE_THREAD)
        self._rule(eperm, "clone", (0, CLONE_THREAD, 0))
        # open/openat: read-only; one rule per write flag (any of them set -> EPERM)
        for name, arg in OPEN_FLAGS_ARG.items():
            for flag in WRITE_FLAGS:
                self._rule(eperm, name, (arg, flag, flag))

    def load(self) -> None:
        try:
            self._check(self.lib.seccomp_load(self.ctx), "load")
        finally:
            self.lib.seccomp_release(self.ctx)
            self.ctx = None
