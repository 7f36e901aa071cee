"""cache.py's multi-window limiter (the Lua script) and the log throttle."""

import asyncio
import logging

from mlplatform import cache


def charge_windows(*args, **kwargs):
    return asyncio.run(cache.charge_windows(*args, **kwargs))


def test_charge_windows_charges_every_window_or_none():
    r = cache.get_redis()
    keys = [cache.key("t", "{x}", "a"), cache.key("t", "{x}", "b")]
    assert charge_windows(keys, [3, 1], 60) == (False, [(1, 60_000), (1, 60_000)], None)
    refused, found, _ = charge_windows(keys, [3, 1], 60)
    assert refused and [count for count, _ in found] == [1, 1]  # "b" is full: "a" is not charged
    assert 0 < found[0][1] <= 60_000 and 0 < found[1][1] <= 60_000
    assert r.get(keys[0]) == b"1"
    assert charge_windows(keys[:1], [3], 60)[1][0][0] == 2


def test_a_window_starts_at_its_first_request_and_expires():
    r = cache.get_redis()
    key = cache.key("t", "{y}", "a")
    charge_windows([key], [5], 7)
    assert 0 < r.pttl(key) <= 7_000
    r.delete(key)  # the window ended: the next request opens a new one
    assert charge_windows([key], [5], 7) == (False, [(1, 7_000)], None)


def test_charge_windows_reads_a_key_in_the_same_round_trip_and_survives_a_script_flush():
    r = cache.get_redis()
    window, stored = cache.key("t", "{z}", "a"), cache.key("t", "elsewhere")
    r.set(stored, b"answer")
    assert charge_windows([window], [5], 60, also_get=stored) == (False, [(1, 60_000)], b"answer")
    assert charge_windows([window], [5], 60, also_get=cache.key("t", "absent"))[2] is None
    r.script_flush()  # a restarted Redis forgot the script: loaded again, the call still counts
    refused, found, fetched = charge_windows([window], [5], 60, also_get=stored)
    assert not refused and found[0][0] == 3 and fetched == b"answer" and r.get(window) == b"3"


def test_throttled_log_logs_once_per_interval_and_counts_the_rest(monkeypatch):
    now = [1000.0]
    monkeypatch.setattr(cache.time, "monotonic", lambda: now[0])
    logger = logging.getLogger("tests.throttled")
    records: list[logging.LogRecord] = []
    handler = logging.Handler()
    handler.emit = records.append
    logger.addHandler(handler)
    try:
        throttle = cache.ThrottledLog(logger, interval_seconds=60)
        for _ in range(3):
            throttle.warning("redis down: %s", "refused")
        now[0] += 59
        throttle.warning("redis down: %s", "refused")
        now[0] += 1
        throttle.warning("redis down: %s", "timeout")
    finally:
        logger.removeHandler(handler)
    assert [r.getMessage() for r in records] == [
        "redis down: refused", "redis down: timeout (3 similar warnings suppressed)"
    ]
    assert [r.suppressed for r in records] == [0, 3]
