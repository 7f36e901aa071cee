"""A fake model host manager for AsyncHostClient tests: a real unix socket served by threads.

Connections stay open for further requests (as the real manager's do). Every request is recorded
and counted on `arrived`; answers wait until `let_through` or `open` allows them (a manager made
with `held=False` starts open). The event loop waits for the threads with `asyncio.to_thread`.
"""

from __future__ import annotations

import asyncio
import math
import socket
import threading
from collections.abc import Callable
from pathlib import Path

from mlplatform.inference import protocol
from mlplatform.inference.async_client import AsyncHostClient

WAIT = 10  # seconds: a cap on waiting for an event that should come at once, never a pause


class FakeManager:
    def __init__(self, path: Path, reply: Callable[[protocol.Frame], list] | list, *, held: bool = False):
        """`reply`: the parts answering a request, or a function of the request giving them."""
        self.path, self.reply, self.requests, self.connections = path, reply, [], []
        self.arrived = threading.Semaphore(0)
        self._answers = threading.Condition()
        self._allowed, self._answered = (0 if held else math.inf), 0
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        threading.Thread(target=self._accept, daemon=True).start()

    def hold(self) -> None:
        """Answers from now on wait for `let_through` or `open`."""
        with self._answers:
            self._allowed = self._answered

    def let_through(self, answers: int = 1) -> None:
        with self._answers:
            self._allowed += answers
            self._answers.notify_all()

    def open(self) -> None:
        self.let_through(math.inf)

    def _accept(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            self.connections.append(conn)
            threading.Thread(target=self._serve, args=(conn,), daemon=True).start()

    def _serve(self, conn):
        with conn:
            while True:
                try:
                    frame = protocol.recv(conn)
                except (EOFError, OSError):
                    return
                self.requests.append(frame)
                self.arrived.release()
                with self._answers:
                    self._answers.wait_for(lambda: self._answered < self._allowed, WAIT)
                    self._answered += 1
                try:
                    protocol.send(conn, self.reply(frame) if callable(self.reply) else self.reply)
                except OSError:  # the caller went away (cancelled) and closed its connection
                    return

    def close(self):
        """The manager goes away: its socket and every connection it had are closed."""
        self.open()
        self.server.close()
        for conn in self.connections:
            try:
                conn.shutdown(socket.SHUT_RDWR)  # its serving thread sees the end and closes it
            except OSError:
                pass


async def arrival(manager: FakeManager, count: int = 1) -> None:
    """Until `count` more requests have reached the manager (waited for off the event loop)."""
    for _ in range(count):
        assert await asyncio.to_thread(manager.arrived.acquire, timeout=WAIT), "an expected request never came"


async def close_connections(hosts: AsyncHostClient) -> None:
    """The idle connections of the running loop, closed before the loop ends."""
    idle = hosts._idle.get()
    while idle:
        _, writer = idle.pop()
        writer.close()
        try:
            await writer.wait_closed()
        except OSError:
            pass
