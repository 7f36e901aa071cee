"""AsyncHostClient: the model host manager's client on a web worker's event loop.

The prediction path waits on the model host without holding a thread: each event loop keeps a
pool of idle unix-socket connections to the manager, and a call takes one (or opens one), so
calls in flight at once each have their own connection and the manager serves them
concurrently. A call that finds its kept connection closed by the manager (restarted) is sent
once more on a new one, like the blocking HostClient's; the frames and the errors are the same
(protocol.py, client.checked_reply).

Concurrent predictions of the same model version are combined (dynamic batching, coalesce.py):
for a small model nearly all of a call's time is per-call overhead in three processes (web,
manager, host), not the model. A call is never held back for a timer: only calls that would queue
behind one already in flight wait for it to end, and then go together as one call of stacked rows
(at most `batch_max_rows`; 0 combines none). Outputs are per row, so each caller gets its own
rows' answers; if the combined call fails on its input, each caller is sent alone, so one bad row
fails only its own request.
"""

from __future__ import annotations

import asyncio
import functools
from collections import deque
from pathlib import Path

from mlplatform.config import Settings
from mlplatform.errors import ModelUnavailable
from mlplatform.inference import protocol
from mlplatform.inference.batch import Batch
from mlplatform.inference.client import QUEUE_ALLOWANCE_SECONDS, checked_reply, unreachable
from mlplatform.inference.coalesce import PredictCoalescer, group_key
from mlplatform.loops import PerLoop

IDLE_CONNECTIONS = 64  # per loop; more calls at once than this open and close their own

Connection = tuple[asyncio.StreamReader, asyncio.StreamWriter]


class AsyncHostClient:
    def __init__(self, socket_path: Path, *, load_timeout: float, call_timeout: float, batch_max_rows: int = 0):
        self.socket_path = Path(socket_path)
        self.timeout = load_timeout + call_timeout + QUEUE_ALLOWANCE_SECONDS  # the manager enforces the real limit
        self.batch_max_rows = batch_max_rows
        self._idle: PerLoop[deque[Connection]] = PerLoop(deque)
        self._coalescers = PerLoop(lambda: PredictCoalescer(max_rows=batch_max_rows, wait_timeout=self.timeout))

    async def predict(self, sha256: str, path: Path, batch: Batch, *, proba: bool = False) -> dict:
        """The outputs (name -> array, a row per input row), the host that ran the model, its
        model_seconds and "batched": how many concurrent calls that host call combined (1: alone)."""
        async def send(rows: Batch) -> tuple[dict, dict]:
            return await self._predict_once(sha256, path, rows, proba)

        if self.batch_max_rows <= 0:
            outputs, details = await send(batch)
            return {**outputs, **details, "batched": 1}
        return await self._coalescers.get().predict(group_key(sha256, path, batch, proba=proba), batch, send)

    async def _predict_once(self, sha256: str, path: Path, batch: Batch, proba: bool) -> tuple[dict, dict]:
        header = {"op": "predict", "sha256": sha256, "path": str(path), "proba": proba}
        reply, outputs = checked_reply(await self._exchange(protocol.batch_parts(header, batch)))
        return outputs, {"host": reply.get("host"), "model_seconds": reply.get("model_seconds")}

    async def _exchange(self, parts: list) -> protocol.Frame:
        idle = self._idle.get()
        while True:
            reused = bool(idle)
            reader, writer = idle.pop() if reused else await self._connect()
            try:
                async with asyncio.timeout(self.timeout):
                    await protocol.write_frame(writer, parts)
                    frame = await protocol.read_frame(reader)
            except (asyncio.IncompleteReadError, BrokenPipeError, ConnectionResetError) as exc:
                writer.close()
                if not reused:  # a fresh connection failing is the service's fault, not a stale one
                    raise unreachable(exc) from None
                _close_all(idle)  # kept from the same lost manager: try a fresh one
                continue
            except (OSError, asyncio.TimeoutError) as exc:  # the reply may still come: drop the connection
                writer.close()
                raise unreachable(exc) from None
            except protocol.ProtocolError as exc:
                writer.close()
                raise ModelUnavailable(f"the model host service answered badly: {exc}") from None
            except BaseException:  # cancelled mid-call: the connection is in an unknown state
                writer.close()
                raise
            if len(idle) < IDLE_CONNECTIONS:
                idle.append((reader, writer))
            else:
                writer.close()
            return frame

    async def _connect(self) -> Connection:
        try:
            return await asyncio.wait_for(asyncio.open_unix_connection(str(self.socket_path)), self.timeout)
        except (OSError, asyncio.TimeoutError) as exc:
            raise unreachable(exc) from None


def _close_all(idle: deque[Connection]) -> None:
    while idle:
        idle.pop()[1].close()


@functools.lru_cache(maxsize=8)
def _client(socket_path: Path, load_timeout: float, call_timeout: float, batch_max_rows: int) -> AsyncHostClient:
    return AsyncHostClient(socket_path, load_timeout=load_timeout, call_timeout=call_timeout,
                           batch_max_rows=batch_max_rows)


def get_async_host_client(settings: Settings) -> AsyncHostClient:
    """One client per process and settings (cached); its connections and batching are per event loop."""
    return _client(settings.host_socket, settings.host_load_timeout_seconds, settings.host_call_timeout_seconds,
                   settings.predict_batch_max_rows)
