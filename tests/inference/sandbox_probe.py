"""Run inside a process prepared exactly like a model host (host.prepare: preload + lock-down), then
try what a malicious model would try. Started by test_sandbox.py with the manager's own command
line pieces; prints one JSON line: the sandbox report and, per probe, whether it was refused.

    python -I -B sandbox_probe.py <project root> <host config JSON> <probe context JSON>
"""

from __future__ import annotations

import ctypes
import json
import os
import sys
import threading


def attempt(fn) -> dict:
    try:
        value = fn()
    except BaseException as exc:  # noqa: BLE001 - a refusal is the expected outcome
        return {"refused": True, "error": f"{type(exc).__name__}: {exc}"}
    return {"refused": False, "value": repr(value)[:200]}


def syscall(number: int, *args) -> int:
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    if libc.syscall(number, *args) < 0:
        err = ctypes.get_errno()
        raise OSError(err, os.strerror(err))
    return 0


def probes(ctx: dict) -> dict:
    import socket
    import subprocess

    import numpy as np

    def thread_runs():
        box = []
        t = threading.Thread(target=lambda: box.append(float(np.ones(10).sum())))
        t.start()
        t.join()
        return box

    return {
        "socket_inet": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
        "socket_inet6_udp": lambda: socket.socket(socket.AF_INET6, socket.SOCK_DGRAM),
        "socket_unix": lambda: socket.socket(socket.AF_UNIX, socket.SOCK_STREAM),
        "socketpair": lambda: socket.socketpair(),
        "write_new_tmp_file": lambda: open(ctx["new_tmp_file"], "w"),
        "write_new_private_file": lambda: open(os.path.join(os.getcwd(), "x"), "w"),
        "write_existing_tmp_file": lambda: os.open(ctx["writable_tmp_file"], os.O_WRONLY),
        "append_existing_tmp_file": lambda: os.open(ctx["writable_tmp_file"], os.O_RDONLY | os.O_APPEND),
        "read_existing_tmp_file": lambda: open(ctx["writable_tmp_file"]).read(),
        "unlink_tmp_file": lambda: os.unlink(ctx["writable_tmp_file"]),
        "mkdir_tmp": lambda: os.mkdir(ctx["new_tmp_file"] + ".d"),
        "chmod_private_dir": lambda: os.chmod(os.getcwd(), 0o777),
        "rename_tmp_file": lambda: os.rename(ctx["writable_tmp_file"], ctx["new_tmp_file"]),
        "read_model_file": lambda: open(ctx["model_file"], "rb").read(),
        "list_model_store": lambda: os.listdir(ctx["models_dir"]),
        "read_database_file": lambda: open(ctx["database_file"], "rb").read(),
        "read_etc_passwd": lambda: open("/etc/passwd").read(),
        "read_parent_environ": lambda: open(f"/proc/{os.getppid()}/environ", "rb").read(),
        "read_init_cmdline": lambda: open("/proc/1/cmdline", "rb").read(),
        "execv": lambda: os.execv("/bin/true", ["true"]),
        "subprocess": lambda: subprocess.run(["/bin/true"], check=True),
        "fork": lambda: os.fork(),
        "signal_parent": lambda: os.kill(os.getppid(), 0),
        "ptrace_parent": lambda: syscall(101, 16, os.getppid(), 0, 0),  # PTRACE_ATTACH
        "memfd_create": lambda: os.memfd_create("x"),
        "io_uring_setup": lambda: syscall(425, 1, ctypes.create_string_buffer(120)),
        "unshare_mount_ns": lambda: syscall(272, 0x00020000),
        "thread_runs": thread_runs,
        "numpy_works": lambda: float(np.arange(5).sum()),
    }


def cpu_probes(host) -> dict:
    """Per-call CPU budget: a Python loop is interrupted (CpuLimitExceeded); run last, a C loop
    that never returns to the interpreter gets the process killed (its exit signal says so)."""
    from mlplatform.inference import sandbox

    def python_loop():
        with sandbox.cpu_budget(1, host.killer):
            while True:
                pass

    return {"cpu_python_loop": attempt(python_loop)}


def c_loop(host) -> None:
    import numpy as np

    from mlplatform.inference import sandbox

    with sandbox.cpu_budget(1, host.killer):
        np.linalg.svd(np.random.default_rng(0).random((4000, 4000)))  # one LAPACK call, many CPU seconds


def main() -> int:
    root, config, ctx = sys.argv[1], json.loads(sys.argv[2]), json.loads(sys.argv[3])
    sys.path.insert(0, root)
    from mlplatform.inference import host as host_module

    host = host_module.prepare(config)
    results = {name: attempt(fn) for name, fn in probes(ctx).items()}
    results.update(cpu_probes(host))
    identity = {"resuid": list(os.getresuid()), "resgid": list(os.getresgid()), "groups": os.getgroups(),
                "env": dict(os.environ), "cwd": os.getcwd()}
    print(json.dumps({"sandbox": host.sandbox_report, "results": results, "identity": identity}), flush=True)
    if ctx.get("c_loop"):
        c_loop(host)
        print(json.dumps({"c_loop": "survived"}), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
