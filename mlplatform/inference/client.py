"""HostClient: the blocking client of the model host manager (web workers, RQ workers, services).

Each thread keeps one unix-socket connection to the manager and reuses it call after call
(connecting costs more than a small prediction); a connection that failed or timed out is dropped,
and a call that finds its kept connection closed by the manager (restarted) is sent once more on
a new one: every op is safe to repeat. Only plain data crosses: JSON headers and raw numeric/str arrays (protocol.py); nothing here unpickles.
Errors map to domain errors: refusals and limits to ModelRejected(code=...), a crashed or
unreachable host service to ModelUnavailable, a model that cannot predict on the given input to
InvalidInput.
"""

from __future__ import annotations

import functools
import socket
import threading
from pathlib import Path

from mlplatform.config import Settings
from mlplatform.errors import InvalidInput, ModelRejected, ModelUnavailable
from mlplatform.inference import protocol
from mlplatform.inference.batch import Batch

REJECTED_CODES = ("unsafe_model", "not_an_estimator", "unsupported_format", "version_mismatch",
                  "load_failed", "resource_limit")
INPUT_CODES = ("predict_failed", "bad_request")
QUEUE_ALLOWANCE_SECONDS = 30  # a call may wait behind others on its host before it runs
STATUS_TIMEOUT_SECONDS = 10  # readiness probes must not hang


class HostClient:
    def __init__(self, socket_path: Path, *, load_timeout: float, call_timeout: float):
        self.socket_path = Path(socket_path)
        self.load_timeout = load_timeout
        self.call_timeout = call_timeout
        self._local = threading.local()

    def inspect(self, path: Path) -> dict:
        """The upload gate: a fresh sandboxed host loads the file, describes it and predicts on a
        probe row. Returns the signature plus load_seconds and memory_bytes."""
        header, _ = self._call({"op": "inspect", "path": str(path)}, self._allow(self.load_timeout))
        return {**header["signature"], "load_seconds": header["load_seconds"],
                "memory_bytes": header["memory_bytes"]}

    def predict(self, sha256: str, path: Path, batch: Batch, *, proba: bool = False) -> dict:
        header = {"op": "predict", "sha256": sha256, "path": str(path), "proba": proba}
        reply, outputs = self._call(header, self._allow(self.load_timeout + self.call_timeout), batch)
        return {**outputs, "host": reply.get("host"), "model_seconds": reply.get("model_seconds")}

    def load(self, sha256: str, path: Path) -> dict:
        header, _ = self._call({"op": "load", "sha256": sha256, "path": str(path)}, self._allow(self.load_timeout))
        return header

    def unload(self, sha256: str) -> dict:
        header, _ = self._call({"op": "unload", "sha256": sha256}, self._allow(self.call_timeout))
        return header

    def status(self) -> dict:
        """Hosts, their pids, loaded models and memory per model."""
        header, _ = self._call({"op": "status"}, STATUS_TIMEOUT_SECONDS)
        return header

    @staticmethod
    def _allow(seconds: float) -> float:
        """The manager enforces the real limit; the socket only waits a little longer (queueing)."""
        return seconds + QUEUE_ALLOWANCE_SECONDS

    def _call(self, header: dict, timeout: float, batch: Batch | None = None) -> tuple[dict, dict]:
        parts = protocol.batch_parts(header, batch) if batch is not None else protocol.pack(header)
        return checked_reply(self._exchange(parts, timeout))

    def _exchange(self, parts: list, timeout: float) -> protocol.Frame:
        while True:
            sock, reused = self._connection(timeout)
            try:
                sock.settimeout(timeout)
                protocol.send(sock, parts)
                return protocol.recv(sock)
            except (EOFError, BrokenPipeError, ConnectionResetError) as exc:
                self._drop()
                if not reused:  # a fresh connection failing is the service's fault, not a stale socket
                    raise unreachable(exc) from None
            except OSError as exc:  # socket.timeout included: the reply may still come, so drop
                self._drop()
                raise unreachable(exc) from None
            except protocol.ProtocolError as exc:
                self._drop()
                raise ModelUnavailable(f"the model host service answered badly: {exc}") from None

    def _connection(self, timeout: float) -> tuple[socket.socket, bool]:
        sock = getattr(self._local, "sock", None)
        if sock is not None:
            return sock, True
        sock = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        try:
            sock.settimeout(timeout)
            sock.connect(str(self.socket_path))
        except OSError as exc:
            sock.close()
            raise unreachable(exc) from None
        self._local.sock = sock
        return sock, False

    def _drop(self) -> None:
        sock = getattr(self._local, "sock", None)
        self._local.sock = None
        if sock is not None:
            sock.close()


def checked_reply(frame: protocol.Frame) -> tuple[dict, dict]:
    """(the reply's header fields, its outputs by name); an error reply raises its domain error."""
    reply = {k: v for k, v in frame.header.items() if k not in ("buffers", "outputs")}
    if not reply.get("ok"):
        raise _domain_error(reply.get("error") or {})
    return reply, protocol.result_from(frame)


def unreachable(exc: Exception) -> ModelUnavailable:
    return ModelUnavailable(f"the model host service is not reachable: {exc}", retry_after=2)


def _domain_error(error: dict) -> Exception:
    code = error.get("code", "unavailable")
    message = error.get("message") or "the model host failed"
    details = error.get("details") or {}
    if code in REJECTED_CODES:
        return ModelRejected(message, code=code, details=details)
    if code in INPUT_CODES:
        return InvalidInput(message, code=code, details=details)
    return ModelUnavailable(message, details={"reason": code, **details})


@functools.lru_cache(maxsize=8)
def _client(socket_path: Path, load_timeout: float, call_timeout: float) -> HostClient:
    return HostClient(socket_path, load_timeout=load_timeout, call_timeout=call_timeout)


def get_host_client(settings: Settings) -> HostClient:
    """One client per process and socket (cached)."""
    return _client(settings.host_socket, settings.host_load_timeout_seconds, settings.host_call_timeout_seconds)
