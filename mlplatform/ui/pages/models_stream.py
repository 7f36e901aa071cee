"""A read-only byte stream fed, chunk by chunk, from a streamed browser upload.

The registry service reads model files as an ordinary blocking stream (in a worker thread); the
browser's upload arrives as an async iterator of chunks on the event loop. This pipe joins them,
so an upload is never spooled whole (and never lands in Reflex's public upload directory), its
size is enforced as the bytes arrive, and a reader that gives up stops the producer at once.

The producer side is async and waits on the event loop, not in a thread: a thread per waiting
upload could exhaust the loop's default executor, which every other event handler shares.
"""

from __future__ import annotations

import asyncio
import io
import threading
from collections import deque


class ChunkPipe(io.RawIOBase):
    def __init__(self, loop: asyncio.AbstractEventLoop, max_chunks: int = 8):
        super().__init__()
        self._loop = loop
        self._chunks: deque[bytes] = deque()
        self._pending = memoryview(b"")
        self._cond = threading.Condition()
        self._space = asyncio.Event()  # set by the reader (via the loop) whenever it takes a chunk
        self._max_chunks = max_chunks  # backpressure: the browser waits while the reader is busy
        self._finished = False
        self._abandoned = False
        self._error: BaseException | None = None

    # --- producer side (the upload handler, on the event loop) ---------------------------------

    async def put(self, data: bytes) -> bool:
        """Queue one chunk, waiting while the reader is behind. False once the reader has gone."""
        while True:
            with self._cond:
                if self._abandoned:
                    return False
                if len(self._chunks) < self._max_chunks:
                    self._chunks.append(data)
                    self._cond.notify_all()
                    return True
                self._space.clear()  # under the lock: a take after this check sets it again
            await self._space.wait()

    def finish(self) -> None:
        """The whole file was queued: the reader sees end of file after the last chunk."""
        with self._cond:
            self._finished = True
            self._cond.notify_all()

    def fail(self, error: BaseException) -> None:
        """Stop the reader: its next read raises `error` (e.g. the upload went over the size cap)."""
        with self._cond:
            self._error, self._finished = error, True
            self._chunks.clear()
            self._cond.notify_all()

    # --- reader side (the registry service, in a worker thread) --------------------------------

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        if not self._pending:
            with self._cond:
                self._cond.wait_for(lambda: self._chunks or self._finished)
                if self._error is not None:
                    raise self._error
                if not self._chunks:
                    return 0
                self._pending = memoryview(self._chunks.popleft())
            self._wake_producer()
        count = min(len(buffer), len(self._pending))
        buffer[:count] = self._pending[:count]
        self._pending = self._pending[count:]
        return count

    def close(self) -> None:
        # A reader that stops early (refusal, error) must not leave the producer waiting forever.
        with self._cond:
            self._abandoned = True
            self._chunks.clear()
        self._wake_producer()
        super().close()

    def _wake_producer(self) -> None:
        if not self._loop.is_closed():
            self._loop.call_soon_threadsafe(self._space.set)
