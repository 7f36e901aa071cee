"""The manager's hosts: pool slots (one long-lived host each, replaced when it dies, requests
pipelined to it), routing of models to slots by sha256, and the fresh spare host for upload gates."""

from __future__ import annotations

import asyncio
import logging
import shutil
import tempfile
import time

from mlplatform.config import Settings
from mlplatform.inference import protocol
from mlplatform.inference.hostproc import HostFailed, HostProcess, Requeue

log = logging.getLogger(__name__)

RESTART_BACKOFF_SECONDS = 5
REQUEUES = 2  # a call queued behind calls that killed their hosts is sent again this often
STATUS_TIMEOUT_SECONDS = 5
STOP_WAIT_SECONDS = 30
STATUS_FIELDS = ("models", "rss_bytes", "vm_bytes", "loads", "memory_budget_bytes", "sandbox")


class HostSlot:
    """One pool position: the current host process (replaced when it dies) and its queue."""

    def __init__(self, pool: Pool, index: int):
        self.pool, self.index = pool, index
        self.lock = asyncio.Lock()  # held while the host is (re)started
        self.host: HostProcess | None = None
        self.loaded: list[str] = []
        self.loading: set[str] = set()  # models a call in flight carries the file of
        self.memory_bytes = 0
        self.queued = 0
        self.restarts = 0
        self.last_failure: tuple[float, str] | None = None

    @property
    def slot_id(self) -> str:
        return f"pool-{self.index}"

    async def ensure_host(self) -> HostProcess:
        """The live host, starting one if needed (call with the lock held)."""
        if self.host is not None and self.host.alive:
            return self.host
        if self.host is not None:
            await self.host.kill()
            self.host, self.loaded, self.memory_bytes = None, [], 0
            self.restarts += 1
        if self.last_failure and time.monotonic() - self.last_failure[0] < RESTART_BACKOFF_SECONDS:
            raise HostFailed("unavailable", f"model host {self.slot_id} cannot start: {self.last_failure[1]}")
        try:
            self.host = await HostProcess.start(self.pool.settings, self.slot_id, self.pool.run_dir)
        except HostFailed as exc:
            self.last_failure = (time.monotonic(), exc.message)
            raise HostFailed("unavailable", exc.message) from None
        self.last_failure = None
        return self.host

    async def call(self, op: str, parts: list, fds: list[int], timeout: float) -> protocol.Frame:
        self.queued += 1
        try:
            for attempt in range(REQUEUES + 1):
                async with self.lock:
                    host = await self.ensure_host()
                try:
                    frame = await host.call(parts, fds, timeout, op)
                except Requeue:
                    if attempt == REQUEUES:
                        raise HostFailed("unavailable", f"model host {self.slot_id} keeps failing") from None
                    continue
                except HostFailed:
                    self._lost(host)
                    raise
                self.loaded = list(frame.header.get("loaded", self.loaded))
                self.memory_bytes = frame.header.get("memory_bytes", self.memory_bytes)
                return frame
        finally:
            self.queued -= 1

    def _lost(self, host: HostProcess) -> None:
        if self.host is not host:
            return  # already replaced
        self.host, self.loaded, self.memory_bytes = None, [], 0
        self.restarts += 1
        self.pool.forget_slot(self)
        self.pool.background(self.replace())  # ready for the next call

    async def replace(self) -> None:
        async with self.lock:
            try:
                await self.ensure_host()
            except HostFailed as exc:
                log.error("model host could not be replaced", extra={"host": self.slot_id, "error": exc.message})

    async def status(self) -> dict:
        host = self.host
        entry = {"id": self.slot_id, "pid": host.pid if host else None, "busy": host.busy if host else None,
                 "queued": self.queued, "restarts": self.restarts, "loaded": self.loaded,
                 "memory_bytes": self.memory_bytes,
                 "state": "ready" if host and host.alive else "failed" if self.last_failure else "starting",
                 "error": self.last_failure[1] if self.last_failure else None}
        if host and host.alive and host.idle:  # a busy host is reported as last seen
            try:
                frame = await host.call(protocol.pack({"op": "status"}), [], STATUS_TIMEOUT_SECONDS, "status")
                entry.update({k: frame.header[k] for k in STATUS_FIELDS if k in frame.header})
            except Requeue:
                entry["state"] = "starting"
            except HostFailed as exc:
                self._lost(host)
                entry["state"] = f"failed: {exc.message}"
        return entry


class Pool:
    def __init__(self, settings: Settings):
        self.settings = settings
        self.slots = [HostSlot(self, i) for i in range(settings.host_processes)]
        self.pending: dict[str, HostSlot] = {}  # sha256 -> slot chosen for it, before it reports it loaded
        self.spare: asyncio.Task | None = None
        self.spares_started = 0
        self._tasks: set[asyncio.Task] = set()
        self.run_dir = tempfile.mkdtemp(prefix="mlplatform-hosts-")  # the hosts' private dirs
        # gates at once (each runs a fresh host): a burst of uploads cannot start unbounded hosts
        self.gates = asyncio.Semaphore(max(2, settings.host_processes))

    def background(self, coro) -> asyncio.Task:
        """Run `coro` on its own, keeping a reference until it is done (asyncio only keeps weak ones)."""
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def start(self) -> None:
        self._start_spare()
        await asyncio.gather(*(slot.replace() for slot in self.slots))

    def _start_spare(self) -> None:
        self.spares_started += 1
        self.spare = self.background(HostProcess.start(self.settings, f"gate-{self.spares_started}", self.run_dir))

    async def take_spare(self) -> HostProcess:
        """A fresh host for one upload gate; the next spare starts right away."""
        task, self.spare = self.spare, None
        self._start_spare()
        host = None
        try:
            host = await task if task else None
        except HostFailed:
            pass  # try once more below, with a host of our own
        if host and host.alive:
            return host
        self.spares_started += 1
        return await HostProcess.start(self.settings, f"gate-{self.spares_started}", self.run_dir)

    def route(self, sha: str) -> HostSlot:
        """The slot holding `sha`, else the one already chosen for it, else the least loaded."""
        for slot in self.slots:
            if sha in slot.loaded:
                return slot
        if sha in self.pending:
            return self.pending[sha]
        slot = min(self.slots, key=lambda s: (s.memory_bytes, len(s.loaded), s.queued))
        self.pending[sha] = slot
        return slot

    def forget_slot(self, slot: HostSlot) -> None:
        for sha in [s for s, chosen in self.pending.items() if chosen is slot]:
            del self.pending[sha]

    def spare_state(self) -> str:
        spare = self.spare
        if spare is None or not spare.done():
            return "starting"
        return "failed" if spare.cancelled() or spare.exception() else "ready"

    async def stop(self) -> None:
        """Stop every host. Hosts still starting (spare, replacements) are waited for first, so
        none is left behind; the private dirs go with them."""
        if self._tasks:
            await asyncio.wait(set(self._tasks), timeout=STOP_WAIT_SECONDS)
        hosts = [slot.host for slot in self.slots if slot.host]
        spare = self.spare
        if spare and spare.done() and not spare.cancelled() and spare.exception() is None:
            hosts.append(spare.result())
        await asyncio.gather(*(h.stop() for h in hosts), return_exceptions=True)
        shutil.rmtree(self.run_dir, ignore_errors=True)
