"""`python -m mlplatform.inference.manager`: the model host service.

Listens on settings.host_socket (a unix socket, mode 0600) and keeps `host_processes` pool hosts
plus one fresh spare: each upload gate (`inspect`) takes the spare, uses it once and discards it,
and a new spare starts at once, so a gate rarely waits for a host to import its libraries.
Predictions are routed by sha256 to the pool host that holds the model (loaded on first use into
the least-loaded host); each host runs one request at a time. The manager opens model files
itself, read-only and only inside the model store, and passes descriptors to the hosts. A host
that crashes or times out fails its call and is replaced; the manager carries on.
"""

from __future__ import annotations

import asyncio
import hashlib
import logging
import os
import signal
import stat
import sys
import time
from pathlib import Path

from mlplatform import logs
from mlplatform.config import Settings, get_settings
from mlplatform.inference import protocol
from mlplatform.inference.hostproc import HostFailed
from mlplatform.inference.pool import STATUS_TIMEOUT_SECONDS, HostSlot, Pool

log = logging.getLogger(__name__)



class RequestError(Exception):
    def __init__(self, code: str, message: str, details: dict | None = None):
        super().__init__(message)
        self.code, self.message, self.details = code, message, details or {}


class Manager:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.pool = Pool(settings)
        self.store_root = settings.models_dir.resolve()  # resolved once: it is asked on every request
        self.server: asyncio.base_events.Server | None = None
        self.started_at = time.time()

    # ---- model files -----------------------------------------------------------------------------
    def store_path(self, path: str) -> Path:
        """`path` if it names something inside the model store; checked on every request, also
        when the model is already loaded, so a path outside the store never gets an answer."""
        target = Path(os.path.abspath(path))
        if self.store_root not in target.parents:
            raise RequestError("bad_request", "model files are only opened inside the model store")
        return target

    def open_model(self, path: str) -> int:
        """A read-only descriptor for a regular file inside the model store (no symlinks)."""
        target = self.store_path(path)
        try:
            fd = os.open(target, os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC | os.O_NOCTTY)
        except OSError as exc:
            raise RequestError("not_found", f"model file cannot be opened: {exc.strerror}") from None
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            os.close(fd)
            raise RequestError("bad_request", "model path is not a regular file")
        return fd

    async def verified_fd(self, sha: str, path: str) -> int:
        fd = self.open_model(path)
        digest = await asyncio.to_thread(_sha256_of, fd)
        if digest != sha:
            os.close(fd)
            raise RequestError("bad_request", "the file's content does not match the given sha256")
        return fd

    # ---- ops ---------------------------------------------------------------------------------------
    async def op_inspect(self, frame: protocol.Frame) -> list:
        fd = self.open_model(_text(frame, "path"))
        try:
            async with self.pool.gates:
                reply, host_id = await self._gate(fd)
        finally:
            os.close(fd)
        return protocol.pack_raw({**_public(reply.header), "host": host_id}, [], [])

    async def _gate(self, fd: int) -> tuple[protocol.Frame, str]:
        try:
            host = await self.pool.take_spare()
        except HostFailed as exc:
            raise RequestError("unavailable", exc.message) from None
        try:
            reply = await host.call(protocol.pack({"op": "inspect"}), [fd], self.settings.host_load_timeout_seconds,
                                    "inspect")
        except HostFailed as exc:  # a file that crashes or stalls its sandbox is refused, not retried
            raise RequestError(exc.code if exc.code == "resource_limit" else "load_failed", exc.message,
                               exc.details) from None
        finally:
            self.pool.background(host.stop())  # used once
        return reply, host.host_id

    async def op_predict(self, frame: protocol.Frame) -> list:
        sha, path = _text(frame, "sha256"), _text(frame, "path")
        self.store_path(path)
        header = {"op": "predict", "sha256": sha, "proba": bool(frame.header.get("proba")),
                  "columns": frame.header.get("columns"), "block": frame.header.get("block") is True}
        parts = protocol.pack_raw(header, frame.descriptors, frame.buffers)
        slot = self.pool.route(sha)
        try:
            reply = await self._predict_on(slot, sha, path, parts)
            if (reply.header.get("error") or {}).get("code") == "not_loaded":  # evicted meanwhile
                slot.loaded = [s for s in slot.loaded if s != sha]
                reply = await self._predict_on(slot, sha, path, parts)
        finally:
            self.pool.pending.pop(sha, None)  # from here on the slot's "loaded" list routes it
        return protocol.pack_raw({**_public(reply.header), "host": slot.slot_id}, reply.descriptors, reply.buffers)

    async def _predict_on(self, slot: HostSlot, sha: str, path: str, parts: list) -> protocol.Frame:
        """Calls behind one that carries the file need not carry it: the host answers in order,
        so it has loaded the model by then (or they answer not_loaded and come back with it)."""
        if sha in slot.loaded or sha in slot.loading:
            return await self._call(slot, "predict", parts, None, self.settings.host_call_timeout_seconds)
        slot.loading.add(sha)
        try:
            fd = await self.verified_fd(sha, path)
            timeout = self.settings.host_call_timeout_seconds + self.settings.host_load_timeout_seconds
            return await self._call(slot, "predict", parts, fd, timeout)
        finally:
            slot.loading.discard(sha)

    async def op_load(self, frame: protocol.Frame) -> list:
        sha = _text(frame, "sha256")
        slot = self.pool.route(sha)
        fd = await self.verified_fd(sha, _text(frame, "path"))
        try:
            reply = await self._call(slot, "load", protocol.pack({"op": "load", "sha256": sha}), fd,
                                     self.settings.host_load_timeout_seconds)
        finally:
            self.pool.pending.pop(sha, None)
        return protocol.pack({**_public(reply.header), "host": slot.slot_id})

    async def op_unload(self, frame: protocol.Frame) -> list:
        sha = _text(frame, "sha256")
        unloaded = []
        for slot in self.pool.slots:
            if sha in slot.loaded:
                await self._call(slot, "unload", protocol.pack({"op": "unload", "sha256": sha}), None,
                                 STATUS_TIMEOUT_SECONDS)
                unloaded.append(slot.slot_id)
        return protocol.pack({"ok": True, "unloaded_from": unloaded})

    async def op_status(self, _frame: protocol.Frame) -> list:
        hosts = await asyncio.gather(*(slot.status() for slot in self.pool.slots))
        return protocol.pack({"ok": True, "hosts": hosts, "spare": self.pool.spare_state(), "pid": os.getpid(),
                              "socket": str(self.settings.host_socket), "started_at": self.started_at})

    async def _call(self, slot: HostSlot, op: str, parts: list, fd: int | None, timeout: float) -> protocol.Frame:
        try:
            return await slot.call(op, parts, [fd] if fd is not None else [], timeout)
        finally:
            if fd is not None:
                os.close(fd)

    # ---- serving -----------------------------------------------------------------------------------
    async def handle_client(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        ops = {"inspect": self.op_inspect, "predict": self.op_predict, "load": self.op_load,
               "unload": self.op_unload, "status": self.op_status}
        try:
            while True:
                try:
                    frame = await protocol.read_frame(reader)
                except (asyncio.IncompleteReadError, ConnectionError):
                    return
                except protocol.ProtocolError as exc:
                    await protocol.write_frame(writer, _error("bad_request", str(exc)))
                    return
                op = frame.header.get("op")
                try:
                    handler = ops.get(op)
                    if handler is None:
                        raise RequestError("bad_request", f"unknown op {op!r}")
                    parts = await handler(frame)
                except (RequestError, HostFailed) as exc:
                    parts = _error(exc.code, exc.message, exc.details)
                except Exception as exc:  # noqa: BLE001 - the manager answers, it does not die
                    log.exception("manager request failed", extra={"op": op})
                    parts = _error("unavailable", f"model host service error: {type(exc).__name__}")
                await protocol.write_frame(writer, parts)
        except (ConnectionError, asyncio.CancelledError):
            pass
        finally:
            writer.close()

    async def start(self) -> None:
        path = self.settings.host_socket
        await _remove_stale_socket(path)
        await self.pool.start()
        old_umask = os.umask(0o177)  # the socket is born 0600: only the platform's own user connects
        try:
            self.server = await asyncio.start_unix_server(self.handle_client, path=str(path))
        finally:
            os.umask(old_umask)
        os.chmod(path, 0o600)
        log.info("model host manager listening", extra={"socket": str(path), "hosts": len(self.pool.slots)})

    async def stop(self) -> None:
        if self.server:  # only a socket we created is ours to remove
            self.server.close()
            self.settings.host_socket.unlink(missing_ok=True)
        await self.pool.stop()


def _sha256_of(fd: int) -> str:
    digest, offset = hashlib.sha256(), 0
    while chunk := os.pread(fd, 1 << 20, offset):
        digest.update(chunk)
        offset += len(chunk)
    return digest.hexdigest()


def _text(frame: protocol.Frame, key: str) -> str:
    value = frame.header.get(key)
    if not isinstance(value, str) or not value:
        raise RequestError("bad_request", f"{key} is required")
    return value


def _public(header: dict) -> dict:
    return {k: v for k, v in header.items() if k not in ("buffers", "op")}


def _error(code: str, message: str, details: dict | None = None) -> list:
    return protocol.pack({"ok": False, "error": {"code": code, "message": message, "details": details or {}}})


async def _remove_stale_socket(path: Path) -> None:
    if not path.exists():
        return
    try:
        _, writer = await asyncio.open_unix_connection(str(path))
    except OSError:
        path.unlink(missing_ok=True)  # nobody listens: left over from a killed manager
        return
    writer.close()
    raise SystemExit(f"another model host manager is listening on {path}")


async def serve(settings: Settings) -> None:
    manager = Manager(settings)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(sig, stop.set)
    settings.var_dir.mkdir(parents=True, exist_ok=True)
    try:
        await manager.start()
        await stop.wait()
        log.info("model host manager stopping")
    finally:
        await manager.stop()


def main() -> int:
    settings = get_settings()
    logs.configure(settings.log_level)
    asyncio.run(serve(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
