"""The prediction cache: answers in Redis under a key made of the model file's SHA-256 and a
canonical hash of the validated input.

The key hashes a format tag, the version's file SHA-256, the proba flag and every column in
batch order (validation has already put them in the signature's order and coerced them to the
signature's dtypes): its name, its dtype and its values' bytes (numbers little-endian, every NaN
the same; strings length-prefixed UTF-8, None marked apart from ""). So JSON `1` and `1.0`, or
the same columns sent in another order, meet on one key once validated, while another file (a
new version, another model) never shares one. Two versions holding byte-identical files do
share answers: they compute the same function. -0.0 and 0.0 stay apart (a model may tell them
apart).

Values are compact JSON (the answer part the predict service stores: lists of numbers and
strings; JSON keeps them readable in redis-cli and needs no extra package). Redis faults never
raise: a failed lookup (`read` of the error) misses and `put` drops the answer, both logged at
most once a minute per process.
Lookups are counted by outcome (hit / miss / error / off) and stores by outcome (stored /
too_large / error) in Prometheus (the api's /metrics serves the default registry, or every
worker's numbers in multiprocess mode).
"""

from __future__ import annotations

import functools
import hashlib
import json
import logging
import struct

import numpy as np
import redis
from prometheus_client import Counter

from mlplatform import cache
from mlplatform.config import get_settings
from mlplatform.errors import InvalidInput
from mlplatform.inference.batch import Batch
from mlplatform.models import MAX_CACHE_TTL_SECONDS

log = logging.getLogger(__name__)
FORMAT = b"mlplatform-prediction-cache/1"  # change when the key's recipe changes
MAX_VALUE_BYTES = 4 * 1024 * 1024  # bigger answers are rarely asked again; they would crowd out small ones
LOOKUPS = Counter("mlplatform_prediction_cache_lookups", "Prediction cache lookups", ["outcome"])
STORES = Counter("mlplatform_prediction_cache_stores", "Prediction cache stores", ["outcome"])
for _outcome in ("hit", "miss", "error", "off"):
    LOOKUPS.labels(_outcome)
for _outcome in ("stored", "too_large", "error"):
    STORES.labels(_outcome)
_redis_down = cache.ThrottledLog(log)
_U64 = struct.Struct("<Q")


def cache_key(sha256: str, batch: Batch, *, proba: bool) -> str:
    """The Redis key of this version's answer to this validated batch."""
    h = hashlib.sha256(FORMAT)
    _put_bytes(h, sha256.encode("ascii"))
    h.update(b"\x01" if proba else b"\x00")
    h.update(_U64.pack(len(batch.columns)))
    if batch.block is not None:
        _hash_block(h, batch.columns, batch.block)
    else:
        for name, values in zip(batch.columns, batch.values):
            _hash_column(h, name, values)
    return cache.key("pred", h.hexdigest())


def read(key: str, raw: bytes | None | redis.RedisError) -> dict | None:
    """What a lookup of `key` found (`raw`: the stored bytes, None, or the Redis error that
    stopped the lookup), counted and decoded; None unless it is a usable answer."""
    if isinstance(raw, redis.RedisError):
        LOOKUPS.labels("error").inc()
        _redis_down.warning("redis unavailable, predictions served uncached: %s", raw)
        return None
    if raw is None:
        LOOKUPS.labels("miss").inc()
        return None
    try:
        value = json.loads(raw)
    except ValueError:
        value = None
    if not isinstance(value, dict):
        LOOKUPS.labels("error").inc()
        log.warning("unreadable prediction cache entry %s ignored", key)
        return None
    LOOKUPS.labels("hit").inc()
    return value


async def put(key: str, value: dict, ttl_seconds: int) -> None:
    """Store `value` for `ttl_seconds` (0: caching is off, nothing stored), in a round trip
    shared with the other requests of this event loop. Never raises for Redis; numpy scalars and
    arrays in `value` are stored as plain numbers and lists."""
    if ttl_seconds <= 0:
        return
    data = json.dumps(value, separators=(",", ":"), default=_plain).encode()
    if len(data) > MAX_VALUE_BYTES:
        STORES.labels("too_large").inc()
        return
    (reply,) = await cache.shared_round_trips().run(("SET", key, data, "EX", ttl_seconds))
    if isinstance(reply, Exception):
        STORES.labels("error").inc()
        _redis_down.warning("redis unavailable, prediction not cached: %s", reply)
        return
    STORES.labels("stored").inc()


def ttl_for(model_ttl: int | None) -> int:
    """Seconds to keep a model's answers: its own `cache_ttl_seconds` if set (0: off), else the
    platform's `prediction_cache_ttl_seconds`."""
    return get_settings().prediction_cache_ttl_seconds if model_ttl is None else model_ttl


def count_off() -> None:
    """Count a request that skipped the cache because its TTL is 0 (call instead of `get`)."""
    LOOKUPS.labels("off").inc()


def clean_cache_ttl(ttl: int | None, field: str = "cache_ttl_seconds") -> int | None:
    """None (the platform default) or whole seconds from 0 (off) to a year."""
    if ttl is None:
        return None
    if isinstance(ttl, bool) or not isinstance(ttl, int) or not 0 <= ttl <= MAX_CACHE_TTL_SECONDS:
        raise InvalidInput(
            f"Cache TTL must be a whole number of seconds from 0 (off) to {MAX_CACHE_TTL_SECONDS}",
            details={"field": field},
        )
    return ttl


def _put_bytes(h, data: bytes) -> None:
    h.update(_U64.pack(len(data)))
    h.update(data)


def _hash_column(h, name: str, values: np.ndarray) -> None:
    _put_bytes(h, name.encode("utf-8", "surrogatepass"))
    h.update(_U64.pack(len(values)))
    if values.dtype.kind in "biuf":
        array = np.ascontiguousarray(values, dtype=values.dtype.newbyteorder("<"))
        if array.dtype.kind == "f":
            nan = np.isnan(array)
            if nan.any():  # NaN has many bit patterns; the model sees one "missing"
                array = np.where(nan, np.array(np.nan, array.dtype), array)
        _put_bytes(h, array.dtype.str.encode("ascii"))
        h.update(memoryview(array).cast("B"))
        return
    _put_bytes(h, b"str")  # Batch holds only numeric/bool arrays and object arrays of str|None
    h.update(_strings(values))


def _hash_block(h, names: list[str], block: np.ndarray) -> None:
    """The bytes _hash_column would hash for each float64 column of the block (which holds no
    NaN: validation sends only finite all-float input this way), in one update: one header per
    column (cached per column list) and the column's slice of the block's column-major bytes."""
    data = np.asfortranarray(block, dtype="<f8").tobytes(order="F")
    step = 8 * len(block)
    head = _U64.pack(len(block)) + _U64.pack(3) + b"<f8"
    h.update(b"".join(name + head + data[i * step:(i + 1) * step]
                      for i, name in enumerate(_encoded_names(tuple(names)))))


@functools.lru_cache(maxsize=1024)
def _encoded_names(names: tuple[str, ...]) -> list[bytes]:
    """Each name as _hash_column puts it: length-prefixed UTF-8."""
    encoded = [name.encode("utf-8", "surrogatepass") for name in names]
    return [_U64.pack(len(e)) + e for e in encoded]


def _strings(values: np.ndarray) -> bytes:
    parts = []
    for value in values:
        if value is None:
            parts.append(b"\x00")
        else:
            data = value.encode("utf-8", "surrogatepass")
            parts.append(b"\x01" + _U64.pack(len(data)) + data)
    return b"".join(parts)


def _plain(value):
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray):
        return value.tolist()
    raise TypeError(f"cannot cache a {type(value).__name__}")
