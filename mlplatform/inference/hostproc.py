"""The manager's handle on one model host process: spawn, call, stop.

A host is spawned with a minimal environment (no database or Redis URL, no MLPLATFORM_* setting,
no secret), in a new session, with its own private temp dir, and one end of a socketpair as its
only channel. It locks itself down before it says "ready" (host.main). A call that times out
kills the host; a host that dies answers EOF and its exit status says how (signal name).

Calls are pipelined: a request is written as soon as it comes (frames never interleave) and the
host, which serves one request at a time, finds the next one waiting when it answers, so it is
never idle between requests while the manager schedules. Replies come back in request order. A
call's time limit runs from when the host starts on it (the previous reply arrived). When the
host dies or is killed, the call it was working on fails with the reason; the calls queued
behind it fail with `Requeue`: they never ran, so the slot sends them to the replacement host.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
import shutil
import signal
import socket
import sys
import tempfile
import time
from collections import deque
from dataclasses import dataclass, field

from mlplatform.config import PROJECT_ROOT, Settings
from mlplatform.inference import protocol, sandbox

log = logging.getLogger(__name__)

NOBODY = 65534
START_TIMEOUT_SECONDS = 120
STOP_TIMEOUT_SECONDS = 5
MAX_LOG_LINE = 8192
BOOT = ("import sys; sys.path.insert(0, sys.argv[1]); "
        "from mlplatform.inference.host import main; sys.exit(main(sys.argv[2]))")
THREAD_VARS = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")
CPU_LIMIT_SIGNALS = (signal.SIGPROF, signal.SIGXCPU)  # sandbox.CpuKiller, kernel RLIMIT_CPU


class Requeue(Exception):
    """The host went away before it started on this call: send it again to the next host."""


class HostFailed(Exception):
    """A call ended the host (crash, kill, timeout) or the host could not start. `code` is
    resource_limit (timeout, CPU limit) or host_crashed."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


def host_env(private_dir: str) -> dict[str, str]:
    """Everything a host's environment holds: no secret, no URL, no platform setting."""
    env = {"PATH": "/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8", "HOME": private_dir, "TMPDIR": private_dir}
    env.update({name: "1" for name in THREAD_VARS})  # no BLAS/OpenMP pools: one call, one core
    # CPU-kernel choices of the numeric libraries, when the operator pinned them: without them a
    # host's BLAS may pick other kernels than the platform's other processes (last-bit differences)
    env.update({name: os.environ[name] for name in sandbox.NUMERIC_TUNING_VARS if name in os.environ})
    return env


def host_config(settings: Settings, host_id: str, fd: int, private_dir: str) -> dict:
    return {
        "host_id": host_id, "fd": fd, "private_dir": private_dir, "log_level": settings.log_level,
        "memory_mb": settings.host_memory_mb, "address_space_mb": settings.host_address_space_mb,
        "cpu_seconds": settings.host_cpu_seconds,
        "max_decompressed_bytes": settings.max_model_decompressed_bytes,
        "max_array_bytes": settings.host_memory_mb * 1024 * 1024,
        "forbidden_paths": [str(settings.var_dir), str(settings.models_dir)],
    }


def host_command(config: dict) -> list[str]:
    # -I: no PYTHON* variables, no user site, no current directory on sys.path; -B: no .pyc writes
    return [sys.executable, "-I", "-B", "-c", BOOT, str(PROJECT_ROOT), json.dumps(config)]


def make_private_dir(host_id: str, parent: str | None = None) -> str:
    path = tempfile.mkdtemp(prefix=f"host-{host_id}-" if parent else f"mlplatform-host-{host_id}-",
                            dir=parent)  # mode 0700
    if os.geteuid() == 0:
        os.chown(path, NOBODY, NOBODY)  # the host drops to nobody and keeps this as its cwd
    return path


def exit_reason(returncode: int | None) -> str:
    if returncode is None:
        return "still running"
    if returncode < 0:
        try:
            return f"killed by {signal.Signals(-returncode).name}"
        except ValueError:
            return f"killed by signal {-returncode}"
    return f"exited with status {returncode}"


@dataclass
class HostProcess:
    host_id: str
    proc: asyncio.subprocess.Process
    sock: socket.socket
    private_dir: str
    started_at: float
    ready: dict | None = None
    busy: str | None = None
    calls: int = 0
    log_task: asyncio.Task | None = None
    # calls written and not yet answered, oldest first: (reply future, op, time limit)
    waiting: deque = field(default_factory=deque)
    send_lock: asyncio.Lock = field(default_factory=asyncio.Lock)
    reader: asyncio.Task | None = None

    @property
    def pid(self) -> int:
        return self.proc.pid

    @classmethod
    async def start(cls, settings: Settings, host_id: str, run_dir: str | None = None) -> HostProcess:
        """Spawn a host (its private dir inside `run_dir`) and wait until it is locked down."""
        ours, theirs = socket.socketpair(socket.AF_UNIX, socket.SOCK_STREAM)
        private_dir = make_private_dir(host_id, run_dir)
        try:
            config = host_config(settings, host_id, theirs.fileno(), private_dir)
            proc = await asyncio.create_subprocess_exec(
                *host_command(config), stdin=asyncio.subprocess.DEVNULL, stdout=asyncio.subprocess.DEVNULL,
                stderr=asyncio.subprocess.PIPE, env=host_env(private_dir), cwd=private_dir,
                pass_fds=[theirs.fileno()], start_new_session=True)
        except BaseException:
            ours.close()
            shutil.rmtree(private_dir, ignore_errors=True)
            raise
        finally:
            theirs.close()
        ours.setblocking(False)
        host = cls(host_id, proc, ours, private_dir, time.time())
        host.log_task = asyncio.get_running_loop().create_task(host._forward_logs())
        await host._await_ready()
        return host

    async def _await_ready(self) -> None:
        try:
            frame = await asyncio.wait_for(protocol.sock_recv(self.sock), START_TIMEOUT_SECONDS)
        except (EOFError, OSError, asyncio.TimeoutError, protocol.ProtocolError) as exc:
            await self.kill()
            raise HostFailed("host_crashed", f"model host {self.host_id} did not start: "
                             f"{exit_reason(self.proc.returncode)} ({type(exc).__name__})") from None
        if not frame.header.get("ok"):
            await self.kill()
            raise HostFailed("host_crashed", f"model host {self.host_id} refused to start: {frame.header.get('error')}")
        self.ready = frame.header
        log.info("model host ready", extra={"host": self.host_id, "pid": self.pid,
                                            "seconds": round(time.time() - self.started_at, 3),
                                            "rss_bytes": frame.header.get("rss_bytes")})

    async def call(self, parts: list, fds: list[int], timeout: float, op: str) -> protocol.Frame:
        """One request and its reply (HostFailed, or Requeue for a call the host never began)."""
        self.calls += 1
        reply = asyncio.get_running_loop().create_future()
        async with self.send_lock:
            if not self.alive:
                raise Requeue()
            self.waiting.append((reply, op, timeout))
            try:
                await protocol.sock_send(self.sock, parts, fds)
            except (ConnectionError, OSError):
                pass  # the reader sees the host gone and answers every waiting call
            if self.reader is None or self.reader.done():
                self.reader = asyncio.get_running_loop().create_task(self._read_replies())
        return await reply

    @property
    def idle(self) -> bool:
        return not self.waiting

    async def _read_replies(self) -> None:
        while self.waiting:
            reply, op, timeout = self.waiting[0]
            self.busy = op
            try:
                frame = await asyncio.wait_for(protocol.sock_recv(self.sock), timeout)
            except asyncio.TimeoutError:
                await self.kill()
                log.warning("model host timed out", extra={"host": self.host_id, "pid": self.pid, "op": op})
                failure = HostFailed("resource_limit", f"the {op} call took longer than {timeout:g} s; its "
                                     "model host was stopped", {"timeout_seconds": timeout})
                return self._fail_waiting(failure)
            except (EOFError, OSError, protocol.ProtocolError) as exc:
                return self._fail_waiting(await self._crashed(op, exc))
            finally:
                self.busy = None
            self.waiting.popleft()
            if not reply.done():
                reply.set_result(frame)

    def _fail_waiting(self, failure: HostFailed) -> None:
        """The call the host was on gets the failure; the ones behind it are requeued."""
        for index, (reply, _op, _timeout) in enumerate(self.waiting):
            if not reply.done():
                reply.set_exception(failure if index == 0 else Requeue())
        self.waiting.clear()

    async def _crashed(self, op: str, exc: Exception) -> HostFailed:
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            await self.kill()  # a host that breaks the protocol is not trusted further
        reason = exit_reason(self.proc.returncode)
        details = {"exit": reason, "error": type(exc).__name__}
        log.warning("model host died", extra={"host": self.host_id, "pid": self.pid, "op": op, "exit": reason})
        if self.proc.returncode is not None and -self.proc.returncode in CPU_LIMIT_SIGNALS:
            return HostFailed("resource_limit", f"the {op} call exceeded its CPU time limit "
                              f"(model host {reason})", details)
        return HostFailed("host_crashed", f"the model host crashed during {op} ({reason})", details)

    @property
    def alive(self) -> bool:
        return self.proc.returncode is None and self.sock.fileno() != -1

    async def kill(self) -> None:
        if self.proc.returncode is None:
            try:
                self.proc.send_signal(signal.SIGKILL)
            except ProcessLookupError:
                pass
        await self.proc.wait()
        self._cleanup()

    async def stop(self) -> None:
        """Close the channel (the host sees EOF and exits); kill it if it lingers."""
        self.sock.close()
        try:
            await asyncio.wait_for(self.proc.wait(), STOP_TIMEOUT_SECONDS)
        except asyncio.TimeoutError:
            await self.kill()
        self._cleanup()

    def _cleanup(self) -> None:
        self.sock.close()
        shutil.rmtree(self.private_dir, ignore_errors=True)

    async def _forward_logs(self) -> None:
        """Host log lines (JSON) go to our stdout with the host id added; bounded in length."""
        stream = self.proc.stderr
        while True:
            try:
                line = await stream.readline()
            except ValueError:  # a line over the reader's limit: drop what is buffered
                line = await stream.read(65536)
            if not line:
                return
            text = line[:MAX_LOG_LINE].decode(errors="replace").rstrip("\n")
            try:
                entry = json.loads(text)
                entry = entry if isinstance(entry, dict) else {"msg": text}
            except ValueError:
                entry = {"level": "INFO", "logger": "mlplatform.inference.host", "msg": text}
            sys.stdout.write(json.dumps({**entry, "host": self.host_id, "pid": self.pid}, default=str) + "\n")
            sys.stdout.flush()
