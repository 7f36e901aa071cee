"""A model host: the only kind of process that unpickles an uploaded file.

Started by the manager (manager.host_command) with a minimal environment and a JSON config on
argv; it preloads every allowlisted module, locks itself down (sandbox.lock_down), says "ready"
with the sandbox report, then serves one request at a time on the socketpair it inherited.
Model files arrive as already-open read-only descriptors (SCM_RIGHTS), never as paths.

Ops: inspect (the upload gate: load + describe + predict on a probe row, then forget), load,
predict (loads first when the manager passes a descriptor), unload, status. Every reply is plain
data: JSON plus raw numeric/str arrays. A refusal or a failure is an error reply and the host
keeps serving; only a crash, a kill or a broken frame ends it.
"""

from __future__ import annotations

import ctypes
import gc
import json
import logging
import os
import socket
import sys
import time
from collections import OrderedDict
from dataclasses import dataclass, field

import joblib

from mlplatform.inference import loader, protocol, sandbox, signature
from mlplatform.logs import JsonFormatter

log = logging.getLogger("mlplatform.inference.host")
PAGE = os.sysconf("SC_PAGE_SIZE")
_LIBC = ctypes.CDLL(None)  # resolved before lock-down


def release_freed_memory() -> None:
    """Hand memory freed during a load (the unpickler's buffers, check copies) back to the
    system: glibc keeps it otherwise, and the host's RSS, and each model's charge, would include it."""
    gc.collect()
    _LIBC.malloc_trim(0)


class HostError(Exception):
    """An error reply: `code` is a ModelRejected code, or predict_failed / bad_request / not_loaded."""

    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


@dataclass
class Loaded:
    model: object
    signature: dict
    memory_bytes: int
    load_seconds: float
    loaded_at: float = field(default_factory=time.time)
    predictions: int = 0


class ModelHost:
    def __init__(self, config: dict, statm_fd: int, killer: sandbox.CpuKiller | None, version_error=None):
        self.config = config
        self.limits = loader.Limits(max_decompressed_bytes=config["max_decompressed_bytes"],
                                    max_array_bytes=config["max_array_bytes"])
        self.budget = config["memory_mb"] * 1024 * 1024
        self.statm_fd, self.killer = statm_fd, killer
        self.version_error = version_error
        self.models: OrderedDict[str, Loaded] = OrderedDict()  # least recently used first
        self.loads = 0
        self.sandbox_report: dict = {}

    # ---- memory ----------------------------------------------------------------------------------
    def memory(self) -> tuple[int, int]:
        """(virtual size, resident set) in bytes, from /proc/self/statm opened before lock-down."""
        fields = os.pread(self.statm_fd, 128, 0).split()
        return int(fields[0]) * PAGE, int(fields[1]) * PAGE

    def used(self) -> int:
        return sum(m.memory_bytes for m in self.models.values())

    def _evict_until(self, limit: int, keep: str | None = None) -> None:
        for sha in list(self.models):
            if self.used() <= limit:
                break
            if sha != keep:
                self._unload(sha, reason="memory budget")

    def _unload(self, sha: str, reason: str) -> None:
        if self.models.pop(sha, None) is not None:
            release_freed_memory()
            log.info("unloaded model", extra={"sha256": sha, "reason": reason})

    # ---- load / predict ------------------------------------------------------------------------
    def _load(self, fd: int) -> Loaded:
        if self.version_error:
            raise self.version_error
        file_bytes = os.fstat(fd).st_size
        before = self.memory()[1]
        started = time.perf_counter()
        with os.fdopen(fd, "rb", closefd=False) as fileobj, sandbox.cpu_budget(self.config["cpu_seconds"], self.killer):
            model = loader.load_model(fileobj, self.limits)
        seconds = time.perf_counter() - started
        with sandbox.cpu_budget(self.config["cpu_seconds"], self.killer):
            sig = signature.describe(model)
        release_freed_memory()
        memory = max(self.memory()[1] - before, file_bytes)  # RSS may reuse freed pages: at least the file
        if memory > self.budget:
            raise HostError("resource_limit", f"the loaded model needs {memory >> 20} MB, more than the "
                            f"host memory budget of {self.budget >> 20} MB", {"memory_bytes": memory})
        self.loads += 1
        return Loaded(model, sig, memory, seconds)

    def _predict(self, entry: Loaded, batch, proba: bool) -> tuple[dict, float]:
        started = time.perf_counter()
        # A model saved with n_jobs asks joblib for worker processes (fork: forbidden) or a thread
        # pool (its multiprocessing locks create files in /dev/shm: forbidden): run sequentially,
        # one call on one core like the BLAS/OpenMP settings. Same results.
        with sandbox.cpu_budget(self.config["cpu_seconds"], self.killer), joblib.parallel_config(backend="sequential"):
            outputs = signature.predict(entry.model, entry.signature, batch, proba=proba)
        entry.predictions += 1
        return outputs, time.perf_counter() - started

    def inspect(self, frame: protocol.Frame) -> list:
        entry = self._load(_one_fd(frame))
        probe = signature.probe_batch(entry.signature)
        proba = bool(entry.signature.get("methods", {}).get("predict_proba"))
        outputs, probe_seconds = self._predict(entry, probe, proba)
        try:
            protocol.pack({}, list(outputs.values()))  # what predict would send must be plain data
        except protocol.ProtocolError as exc:
            raise HostError("load_failed", f"the model's output cannot be sent: {exc}") from None
        reply = {"ok": True, "signature": entry.signature, "load_seconds": entry.load_seconds,
                 "memory_bytes": entry.memory_bytes, "probe_seconds": probe_seconds}
        del entry, outputs
        gc.collect()
        return protocol.pack(reply)

    def load(self, frame: protocol.Frame) -> list:
        sha = _sha(frame)
        if sha not in self.models:
            self._load_into_lru(sha, _one_fd(frame))
        self.models.move_to_end(sha)
        return protocol.pack({"ok": True, **self._state()})

    def _load_into_lru(self, sha: str, fd: int) -> Loaded:
        self._evict_until(max(self.budget - os.fstat(fd).st_size, 0))
        entry = self.models[sha] = self._load(fd)
        self._evict_until(self.budget, keep=sha)
        log.info("loaded model", extra={"sha256": sha, "memory_bytes": entry.memory_bytes,
                                         "load_seconds": round(entry.load_seconds, 4)})
        return entry

    def predict(self, frame: protocol.Frame) -> list:
        sha = _sha(frame)
        entry = self.models.get(sha)
        if entry is None:
            if not frame.fds:
                raise HostError("not_loaded", f"model {sha} is not loaded in this host")
            entry = self._load_into_lru(sha, _one_fd(frame))
        self.models.move_to_end(sha)
        batch = protocol.batch_from(frame)
        outputs, seconds = self._predict(entry, batch, bool(frame.header.get("proba")))
        try:
            return protocol.result_parts({"ok": True, "model_seconds": seconds, **self._state()}, outputs)
        except protocol.ProtocolError as exc:
            raise HostError("predict_failed", f"the model's output cannot be sent: {exc}") from None

    def unload(self, frame: protocol.Frame) -> list:
        self._unload(_sha(frame), reason="requested")
        return protocol.pack({"ok": True, **self._state()})

    def status(self, _frame: protocol.Frame) -> list:
        vm, rss = self.memory()
        models = [{"sha256": sha, "memory_bytes": m.memory_bytes, "load_seconds": m.load_seconds,
                   "loaded_at": m.loaded_at, "predictions": m.predictions} for sha, m in self.models.items()]
        return protocol.pack({"ok": True, "pid": os.getpid(), "sandbox": self.sandbox_report, "vm_bytes": vm,
                              "rss_bytes": rss, "memory_budget_bytes": self.budget, "loads": self.loads,
                              "models": models, **self._state()})

    def _state(self) -> dict:
        return {"loaded": list(self.models), "memory_bytes": self.used()}

    # ---- serving -----------------------------------------------------------------------------------
    def handle(self, frame: protocol.Frame) -> list:
        op = frame.header.get("op")
        handler = {"inspect": self.inspect, "load": self.load, "predict": self.predict,
                   "unload": self.unload, "status": self.status}.get(op)
        try:
            if handler is None:
                raise HostError("bad_request", f"unknown op {op!r}")
            return handler(frame)
        except BaseException as exc:  # noqa: BLE001 - every failure becomes an error reply
            if isinstance(exc, (KeyboardInterrupt, SystemExit)):
                raise
            error = _as_host_error(exc, op)
            gc.collect()
            return protocol.pack({"ok": False, "error": {"code": error.code, "message": error.message,
                                                         "details": _plain(error.details)}, **self._state()})
        finally:
            for fd in frame.fds:
                _close(fd)

    def serve(self, sock: socket.socket) -> None:
        while True:
            try:
                frame = protocol.recv(sock, with_fds=True)
            except EOFError:
                return
            protocol.send(sock, self.handle(frame))


def _as_host_error(exc: BaseException, op: str | None) -> HostError:
    if isinstance(exc, HostError):
        return exc
    if isinstance(exc, loader.Rejected):
        return HostError(exc.code, exc.reason, exc.details)
    if isinstance(exc, sandbox.CpuLimitExceeded):
        return HostError("resource_limit", "the CPU time limit of the call was exceeded")
    if isinstance(exc, MemoryError):
        return HostError("resource_limit", "the memory limit of the model host was exceeded")
    if isinstance(exc, protocol.ProtocolError):
        return HostError("bad_request", str(exc))
    code = "predict_failed" if op == "predict" else "load_failed"
    return HostError(code, f"{type(exc).__name__}: {exc}"[:2000], {"exception": type(exc).__name__})


def _plain(details: dict) -> dict:
    return json.loads(json.dumps(details, default=str))


def _sha(frame: protocol.Frame) -> str:
    sha = frame.header.get("sha256")
    if not (isinstance(sha, str) and len(sha) == 64 and all(c in "0123456789abcdef" for c in sha)):
        raise HostError("bad_request", "sha256 must be 64 lowercase hex digits")
    return sha


def _one_fd(frame: protocol.Frame) -> int:
    if len(frame.fds) != 1:
        raise HostError("bad_request", f"expected one model file descriptor, got {len(frame.fds)}")
    return frame.fds[0]


def _close(fd: int) -> None:
    try:
        os.close(fd)
    except OSError:
        pass


def _configure_logging(level: str) -> None:
    handler = logging.StreamHandler(sys.stderr)  # the manager reads these lines and adds the host id
    handler.setFormatter(JsonFormatter())
    root = logging.getLogger()
    root.addHandler(handler)
    root.setLevel(level)
    logging.captureWarnings(True)  # library warnings become log lines, not free text


def prepare(config: dict) -> ModelHost:
    """Everything before the first untrusted byte: preload, then lock down (SandboxError if a
    mandatory layer fails)."""
    loader.preload()
    try:
        loader.check_versions()
        version_error = None
    except loader.Rejected as exc:
        version_error = exc  # every load answers version_mismatch; status still works
        log.error("installed versions differ from the allowlist's pins: %s", exc.reason)
    statm_fd = os.open("/proc/self/statm", os.O_RDONLY | os.O_CLOEXEC)
    host = ModelHost(config, statm_fd, sandbox.CpuKiller(), version_error)
    host.sandbox_report = sandbox.lock_down(sandbox.Config(
        private_dir=config["private_dir"], address_space_mb=config["address_space_mb"],
        cpu_seconds=config["cpu_seconds"], forbidden_paths=config.get("forbidden_paths", [])))
    return host


def main(config_json: str) -> int:
    config = json.loads(config_json)
    _configure_logging(config.get("log_level", "INFO"))
    sock = socket.socket(fileno=config["fd"])
    try:
        host = prepare(config)
    except sandbox.SandboxError as exc:
        log.error("refusing to serve: %s", exc)
        protocol.send(sock, protocol.pack({"op": "ready", "ok": False, "error": str(exc)}))
        return 3
    vm, rss = host.memory()
    protocol.send(sock, protocol.pack({"op": "ready", "ok": True, "pid": os.getpid(), "sandbox": host.sandbox_report,
                                       "vm_bytes": vm, "rss_bytes": rss}))
    host.serve(sock)
    return 0
