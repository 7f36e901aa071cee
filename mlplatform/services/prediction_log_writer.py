"""The prediction log's buffer and writer: rows wait in memory and a daemon thread per process
bulk-inserts them, so no request ever waits on the database for its log row.

- `add` never blocks on the database: it appends under a lock held for microseconds, or
  refuses the row when `max_rows` are already waiting (the caller counts it as dropped).
- The writer thread wakes every `flush_seconds`, or as soon as a full batch waits, and writes
  everything waiting in batches of `batch_rows` rows, one transaction per batch.
- A batch stays at the head of the buffer until its insert committed, so a database outage
  loses nothing: the writer backs off (doubling up to MAX_BACKOFF_SECONDS) and tries again,
  while new rows queue behind it up to `max_rows`.
- A batch the database refuses for its content (a data or integrity error: retrying cannot
  help) is written row by row instead, and only the rows refused again are given up on, so
  one bad row cannot block the log.
- `flush` drains synchronously in the caller's thread (tests, shutdown); one write lock keeps
  it and the thread from inserting the same rows twice.
- The thread is started lazily, on the first row (a forked child gets a new Writer: see
  prediction_log).
"""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable

from sqlalchemy.exc import DataError, IntegrityError

MAX_BACKOFF_SECONDS = 30.0
Insert = Callable[[list[dict]], None]
Report = Callable[[str, int, Exception | None], None]  # (outcome, rows, error): for counters and logs


class Writer:
    def __init__(self, insert: Insert, report: Report, *, batch_rows: int, flush_seconds: float, max_rows: int):
        self._insert, self._report = insert, report
        self.batch_rows, self.flush_seconds, self.max_rows = batch_rows, flush_seconds, max_rows
        self._rows: deque[dict] = deque()
        self._lock = threading.Lock()  # guards _rows; never held during an insert
        self._write_lock = threading.Lock()  # one writer at a time (thread or flush)
        self._wake = threading.Event()
        self._failures = 0  # consecutive failed inserts: sets the backoff
        self._thread: threading.Thread | None = None

    def pending(self) -> int:
        with self._lock:
            return len(self._rows)

    def add(self, row: dict) -> bool:
        """Queues a row; False when the buffer is full (the row is not kept)."""
        with self._lock:
            if len(self._rows) >= self.max_rows:
                return False
            self._rows.append(row)
            full_batch = len(self._rows) >= self.batch_rows
        self._ensure_thread()
        if full_batch and not self._failures:  # while backing off, the backoff decides
            self._wake.set()
        return True

    def flush(self, timeout: float) -> bool:
        """Writes everything waiting now; True once the buffer is empty. Retries a failing
        database (with the same backoff) until `timeout` seconds have passed."""
        deadline = time.monotonic() + timeout
        while True:
            if not self._write_lock.acquire(timeout=max(0.0, deadline - time.monotonic())):
                return False
            try:
                if self._drain():
                    return True
            finally:
                self._write_lock.release()
            if time.monotonic() + self._backoff() > deadline:
                return False
            time.sleep(self._backoff())

    def _ensure_thread(self) -> None:
        if self._thread is not None:
            return
        with self._lock:
            if self._thread is None:
                thread = threading.Thread(target=self._run, name="prediction-log-writer", daemon=True)
                try:
                    thread.start()
                except RuntimeError:  # interpreter shutting down: the row stays for the exit flush
                    return
                self._thread = thread

    def _run(self) -> None:
        while True:
            self._wake.wait(self._backoff() or self.flush_seconds)
            self._wake.clear()
            try:
                with self._write_lock:
                    self._drain()
            except Exception:  # noqa: BLE001  (a failing report, e.g. logging, must not end the thread)
                continue

    def _backoff(self) -> float:
        if not self._failures:
            return 0.0
        return min(MAX_BACKOFF_SECONDS, self.flush_seconds * 2 ** (self._failures - 1))

    def _drain(self) -> bool:
        """Writes batch after batch until the buffer is empty (True) or an insert fails (False:
        the batch stays at the head for the next try)."""
        while batch := self._head():
            try:
                self._write(batch)
            except Exception as exc:  # noqa: BLE001  (the rows stay queued and are retried)
                self._failures += 1
                self._report("retrying", len(batch), exc)
                return False
            self._failures = 0
        return True

    def _head(self) -> list[dict]:
        with self._lock:
            return [self._rows[i] for i in range(min(self.batch_rows, len(self._rows)))]

    def _done(self, n: int) -> None:
        """Removes the first n rows: written or given up on. Only writers remove rows, under the
        write lock, and `add` only appends, so the head is still the batch being written."""
        with self._lock:
            for _ in range(n):
                self._rows.popleft()

    def _write(self, batch: list[dict]) -> None:
        try:
            self._insert(batch)
        except (DataError, IntegrityError):
            self._write_one_by_one(batch)
            return
        self._done(len(batch))
        self._report("written", len(batch), None)

    def _write_one_by_one(self, batch: list[dict]) -> None:
        # each row is removed as soon as its fate is known: if the database goes away halfway,
        # the retry starts after the rows already written
        for row in batch:
            try:
                self._insert([row])
            except (DataError, IntegrityError) as exc:
                self._done(1)
                self._report("rejected", 1, exc)
            else:
                self._done(1)
                self._report("written", 1, None)
