"""PerLoop: one object per running asyncio event loop.

asyncio connections (Redis, the model host manager) belong to the loop that opened them. A web
worker runs one loop for its whole life, but other callers (the test client, `asyncio.run` in a
script) come and go with loops of their own: each gets its own object, and objects of loops
that have closed are dropped when a new loop asks.
"""

from __future__ import annotations

import asyncio
import threading
from collections.abc import Callable
from typing import Generic, TypeVar

T = TypeVar("T")


class PerLoop(Generic[T]):
    def __init__(self, make: Callable[[], T]):
        self._make = make
        self._objects: dict[asyncio.AbstractEventLoop, T] = {}
        self._lock = threading.Lock()  # loops may run in several threads (test clients)

    def get(self) -> T:
        loop = asyncio.get_running_loop()
        found = self._objects.get(loop)
        if found is not None:
            return found
        with self._lock:
            for closed in [other for other in self._objects if other.is_closed()]:
                del self._objects[closed]
            return self._objects.setdefault(loop, self._make())

    def clear(self) -> None:
        with self._lock:
            self._objects.clear()
