"""The lock-down a model host applies to itself after `loader.preload()` and before it reads any
untrusted byte, and the per-call CPU budget.

Layers, in the order they are applied (some need what a later one takes away):
  env       keep only a few harmless variables (the manager already spawns with a minimal env)
  workdir   cwd = the private temp dir the manager made for this host
  user      as root: drop to nobody (65534), no supplementary groups
  userns    new user + network namespace: no network interface but a down loopback
  rlimits   RLIMIT_AS, RLIMIT_FSIZE=0 (SIGXFSZ ignored: writes fail with EFBIG), RLIMIT_CORE=0,
            RLIMIT_NOFILE; RLIMIT_CPU per call (`cpu_budget`)
  landlock  read-only access to the Python installation, the venv and the mlplatform package;
            no write anywhere, no TCP, no signals out of the sandbox
  seccomp   see seccomp.py
Mandatory: env, rlimits, seccomp, plus one layer that keeps the host away from the platform's own
files (the model store, the SQLite database, var/): user when running as root, else landlock (a
host running as the platform's uid could read them otherwise). If one fails the host refuses to
serve. The other layers (userns; landlock as root) degrade with a logged warning.
"""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import resource
import signal
import sysconfig
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

from mlplatform.inference import landlock, seccomp

log = logging.getLogger(__name__)

NOBODY = 65534
NUMERIC_TUNING_VARS = ("OPENBLAS_CORETYPE", "OPENBLAS_L2_SIZE", "MKL_CBWR", "MKL_ENABLE_INSTRUCTIONS",
                       "NPY_DISABLE_CPU_FEATURES", "NPY_ENABLE_CPU_FEATURES")
KEPT_ENV = ("PATH", "LANG", "LC_ALL", "HOME", "TMPDIR", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS",
            "MKL_NUM_THREADS", *NUMERIC_TUNING_VARS)
SECRET_MARKERS = ("MLPLATFORM_", "DATABASE_URL", "REDIS_URL", "SECRET", "PASSWORD", "TOKEN", "KEY")
SYSTEM_READ_PATHS = ("/usr/lib", "/usr/lib64", "/lib", "/lib64", "/usr/local/lib", "/etc/ld.so.cache")
# /proc/self resolves to this process's own /proc/<pid> when the rule is made: threadpoolctl and
# OpenMP read their own maps/status there; other processes' entries stay out of reach.
OWN_PROC = "/proc/self"
MANDATORY = ("env", "rlimits", "seccomp")
NOFILE = 64
CPU_GRACE_SECONDS = 2  # after the soft limit, how long a C loop may run before it is killed
KILL_SIGNAL = signal.SIGPROF  # CpuKiller's signal
CLONE_NEWUSER, CLONE_NEWNET = 0x10000000, 0x40000000
PR_SET_NO_NEW_PRIVS, PR_SET_DUMPABLE = 38, 4
SYS_CAPSET = 126

_libc = ctypes.CDLL(None, use_errno=True)


class SandboxError(RuntimeError):
    """A mandatory layer could not be applied: the host must not serve."""


class CpuLimitExceeded(BaseException):
    """Raised by the SIGXCPU handler inside a call. A BaseException, so library code catching
    `Exception` cannot swallow it."""


@dataclass
class Config:
    private_dir: str
    address_space_mb: int
    cpu_seconds: int
    forbidden_paths: list[str] = field(default_factory=list)  # var dir, model store: must stay unreadable
    project_package: str = str(Path(__file__).resolve().parent.parent)


@dataclass
class Layer:
    applied: bool
    detail: str

    def as_dict(self) -> dict:
        return {"applied": self.applied, "detail": self.detail}


def read_paths(config: Config) -> list[str]:
    """What a host may read: the interpreter's stdlib and site-packages (venv and base), the
    mlplatform package, system libraries. Refuses a list that contains a forbidden path."""
    paths = {config.project_package, *SYSTEM_READ_PATHS}
    paths.update(sysconfig.get_path(key) for key in ("stdlib", "platstdlib", "purelib", "platlib"))
    resolved = sorted({os.path.realpath(p) for p in paths}) + [OWN_PROC]
    for forbidden in config.forbidden_paths:
        bad = os.path.realpath(forbidden)
        clash = [p for p in resolved if bad == p or bad.startswith(p.rstrip("/") + "/")]
        if clash:
            raise SandboxError(f"{forbidden} lies inside {clash[0]}, which model hosts may read")
    return resolved


def mandatory_layers(root: bool) -> tuple[str, ...]:
    """What must hold before a host serves: as root the drop to nobody separates it from the
    platform's files; as the platform's own uid only Landlock does."""
    return MANDATORY + (("user",) if root else ("landlock",))


def lock_down(config: Config) -> dict[str, dict]:
    """Apply every layer; return {layer: {applied, detail}}. Raises SandboxError when a
    mandatory layer fails. Call from the main thread of a single-threaded process."""
    threads = len(os.listdir("/proc/self/task"))
    if threads != 1:
        raise SandboxError(f"lock-down needs a single-threaded process, found {threads} threads")
    layers: dict[str, Layer] = {}
    layers["env"] = _guard(_scrub_env)
    layers["workdir"] = _guard(lambda: _workdir(config.private_dir))
    ruleset = _prepare(layers, "landlock", lambda: landlock.Ruleset(read_paths(config)))
    sfilter = _prepare(layers, "seccomp", seccomp.Filter)
    root = os.geteuid() == 0
    layers["user"] = _guard(_drop_to_nobody) if root else Layer(False, f"not root (uid {os.geteuid()})")
    layers["userns"] = _guard(_new_user_and_net_namespace)
    layers["rlimits"] = _guard(lambda: _rlimits(config))
    _guard(_no_new_privs)
    if ruleset is not None:
        layers["landlock"] = _guard(lambda: _restrict(ruleset))
    if sfilter is not None:
        layers["seccomp"] = _guard(lambda: _load(sfilter))
    report = {name: layer.as_dict() for name, layer in layers.items()}
    mandatory = mandatory_layers(root)
    failed = [f"{n}: {layers[n].detail}" for n in mandatory if not layers[n].applied]
    if failed:
        raise SandboxError("mandatory sandbox layer failed: " + "; ".join(failed))
    for name, layer in layers.items():
        if not layer.applied:
            log.warning("sandbox layer %s not applied: %s", name, layer.detail)
    return report


def _guard(step) -> Layer:
    try:
        return Layer(True, step() or "ok")
    except (OSError, SandboxError, ValueError) as exc:
        return Layer(False, f"{type(exc).__name__}: {exc}")


def _prepare(layers: dict[str, Layer], name: str, build):
    try:
        return build()
    except (OSError, SandboxError, AttributeError) as exc:
        layers[name] = Layer(False, f"{type(exc).__name__}: {exc}")
        if isinstance(exc, SandboxError):
            raise
        return None


def _scrub_env() -> str:
    for name in list(os.environ):
        if name not in KEPT_ENV:
            del os.environ[name]
    leaked = [n for n in os.environ if any(m in n.upper() for m in SECRET_MARKERS)]
    if leaked:
        raise SandboxError(f"secret-looking variables survived: {leaked}")
    return "kept " + ",".join(sorted(os.environ))


def _workdir(path: str) -> str:
    os.chdir(path)
    os.environ["HOME"] = os.environ["TMPDIR"] = path
    return path


def _drop_to_nobody() -> str:
    os.setgroups([])
    os.setresgid(NOBODY, NOBODY, NOBODY)
    os.setresuid(NOBODY, NOBODY, NOBODY)  # root -> non-root also clears every capability
    if os.getresuid() != (NOBODY,) * 3 or os.getgroups():
        raise SandboxError("still privileged after setresuid")
    return f"uid/gid {NOBODY}"


def _new_user_and_net_namespace() -> str:
    uid, gid = os.geteuid(), os.getegid()
    _libc.prctl(PR_SET_DUMPABLE, 1, 0, 0, 0)  # changing uid made /proc/self root-owned; we write to it
    if _libc.unshare(CLONE_NEWUSER | CLONE_NEWNET) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"unshare: {os.strerror(err)}")
    for name, text in (("setgroups", "deny"), ("uid_map", f"{uid} {uid} 1"), ("gid_map", f"{gid} {gid} 1")):
        fd = os.open(f"/proc/self/{name}", os.O_WRONLY)
        try:
            os.write(fd, text.encode())
        finally:
            os.close(fd)
    _drop_capabilities()  # a new user namespace grants every capability inside it
    return "private user and network namespace"


def _drop_capabilities() -> None:
    header = (ctypes.c_uint32 * 2)(0x20080522, 0)  # _LINUX_CAPABILITY_VERSION_3, this process
    data = (ctypes.c_uint32 * 6)()  # effective, permitted, inheritable x 2 words: all zero
    if _libc.syscall(SYS_CAPSET, header, data) != 0:
        err = ctypes.get_errno()
        raise OSError(err, f"capset: {os.strerror(err)}")


def _rlimits(config: Config) -> str:
    address_space = config.address_space_mb * 1024 * 1024
    resource.setrlimit(resource.RLIMIT_AS, (address_space, address_space))
    signal.signal(signal.SIGXFSZ, signal.SIG_IGN)
    resource.setrlimit(resource.RLIMIT_FSIZE, (0, 0))
    resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    resource.setrlimit(resource.RLIMIT_NOFILE, (NOFILE, NOFILE))
    signal.signal(signal.SIGXCPU, _on_sigxcpu)
    return f"AS={config.address_space_mb}MB FSIZE=0 CORE=0 NOFILE={NOFILE} CPU={config.cpu_seconds}s/call"


def _no_new_privs() -> None:
    if _libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0 or _libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl")


def _restrict(ruleset: landlock.Ruleset) -> str:
    ruleset.restrict_self()
    return f"ABI {ruleset.abi}; read-only: " + ", ".join(ruleset.paths)


def _load(sfilter: seccomp.Filter) -> str:
    rules = sfilter.rules
    sfilter.load()
    return f"{rules} deny rules"


# ---- per-call CPU budget -----------------------------------------------------------------------

_in_call = False


def _on_sigxcpu(_signum, _frame) -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_CPU)
    resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))  # no second signal while unwinding
    if _in_call:
        raise CpuLimitExceeded()


def _cpu_used() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


@contextlib.contextmanager
def cpu_budget(seconds: int, killer: "CpuKiller | None") -> Iterator[None]:
    """Soft RLIMIT_CPU `seconds` from now (SIGXCPU -> CpuLimitExceeded at the next bytecode), and
    a process-CPU-time timer that kills the host (KILL_SIGNAL) CPU_GRACE_SECONDS later, for C loops that never
    return to the interpreter. (A hard RLIMIT_CPU could do that once, but an unprivileged process
    cannot raise it again for the next call; the timer can be re-armed.)"""
    global _in_call
    used = _cpu_used()
    _, hard = resource.getrlimit(resource.RLIMIT_CPU)
    soft = int(used) + seconds + 1  # RLIMIT_CPU counts whole seconds
    resource.setrlimit(resource.RLIMIT_CPU, (soft if hard == resource.RLIM_INFINITY else min(soft, hard), hard))
    if killer:
        killer.arm(seconds + CPU_GRACE_SECONDS)
    _in_call = True
    try:
        yield
    finally:
        _in_call = False
        if killer:
            killer.arm(0)
        resource.setrlimit(resource.RLIMIT_CPU, (hard, hard))


class _SigEvent(ctypes.Structure):
    _fields_ = [("value", ctypes.c_void_p), ("signo", ctypes.c_int), ("notify", ctypes.c_int),
                ("pad", ctypes.c_int * 12)]


class _TimeSpec(ctypes.Structure):
    _fields_ = [("sec", ctypes.c_long), ("nsec", ctypes.c_long)]


class CpuKiller:
    """timer_create(CLOCK_PROCESS_CPUTIME_ID) delivering KILL_SIGNAL; created before lock-down.
    SIGPROF rather than SIGKILL: its default action also terminates, nothing in a host handles or
    sends it, and the manager can then tell "CPU limit" from any other kill by the exit signal."""

    def __init__(self) -> None:
        signal.signal(KILL_SIGNAL, signal.SIG_DFL)
        self.timer = ctypes.c_void_p()
        event = _SigEvent(None, KILL_SIGNAL, 0)  # SIGEV_SIGNAL
        if _libc.timer_create(2, ctypes.byref(event), ctypes.byref(self.timer)) != 0:  # CLOCK_PROCESS_CPUTIME_ID
            raise OSError(ctypes.get_errno(), "timer_create")

    def arm(self, seconds: float) -> None:
        """CPU seconds from now until SIGKILL; 0 disarms."""
        spec = (_TimeSpec * 2)(_TimeSpec(0, 0), _TimeSpec(int(seconds), 0))  # interval, value
        if _libc.timer_settime(self.timer, 0, spec, None) != 0:
            raise OSError(ctypes.get_errno(), "timer_settime")
