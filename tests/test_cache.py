"""cache.py's multi-window limiter (the Lua script), the log throttle, steps that run on the event
loop unless they must block (inline_or_in_thread, LocalTTLCache) and the shared Redis round trips."""

import asyncio
import itertools
import logging
import threading

import pytest
import redis
import redis.asyncio
import redis.asyncio.client
from cachetools import TTLCache

from mlplatform import cache

from tests import support


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


# --- inline_or_in_thread, may_block, LocalTTLCache ---------------------------------------------


def run_step(step):
    """inline_or_in_thread(step) on a fresh loop; returns (the loop's thread, step's result)."""

    async def main():
        return threading.get_ident(), await cache.inline_or_in_thread(step)

    return asyncio.run(main())


def test_a_step_that_never_blocks_runs_inline_once():
    threads = []

    def step():
        threads.append(threading.get_ident())
        return "answer"

    loop_thread, result = run_step(step)
    assert result == "answer" and threads == [loop_thread]


def test_a_step_that_may_block_runs_again_from_the_start_in_a_worker_thread():
    threads = []

    def step():
        threads.append(threading.get_ident())
        cache.may_block()
        return f"answered on call {len(threads)}"

    loop_thread, result = run_step(step)
    assert len(threads) == 2 and threads[0] == loop_thread and threads[1] != loop_thread
    assert result == "answered on call 2"


def test_may_block_does_nothing_outside_inline_or_in_thread():
    cache.may_block()

    async def main():
        cache.may_block()  # on a loop, but not in a step
        await cache.inline_or_in_thread(lambda: None)
        cache.may_block()  # the step is over: its inline mark is gone

    asyncio.run(main())


def test_a_steps_own_exception_propagates_inline():
    calls = []

    def step():
        calls.append(threading.get_ident())
        raise ValueError("refused")

    with pytest.raises(ValueError, match="refused"):
        run_step(step)
    assert len(calls) == 1  # not retried in a thread


def test_a_steps_own_exception_propagates_from_the_worker_thread():
    calls = []

    def step():
        calls.append(threading.get_ident())
        cache.may_block()
        raise ValueError("refused in the thread")

    async def main():
        loop_thread = threading.get_ident()
        with pytest.raises(ValueError, match="refused in the thread"):
            await cache.inline_or_in_thread(step)
        return loop_thread

    loop_thread = asyncio.run(main())
    assert len(calls) == 2 and calls[0] == loop_thread and calls[1] != loop_thread


def test_local_ttl_cache_serves_a_hit_inline_and_loads_a_miss_in_a_worker_thread():
    memo = cache.LocalTTLCache(60)
    loads, steps = [], []

    def load(value):
        def do():
            loads.append(threading.get_ident())
            return value
        return do

    def lookup(cache_key, value):
        def step():
            steps.append(threading.get_ident())
            return memo.get_or_load(cache_key, load(value))
        return step

    assert memo.get_or_load("warm", load("cached")) == "cached"  # outside a step: loads at once
    assert len(loads) == 1
    loads.clear()

    async def main():
        loop_thread = threading.get_ident()
        hit = await cache.inline_or_in_thread(lookup("warm", "not loaded"))
        hit_steps = list(steps)
        miss = await cache.inline_or_in_thread(lookup("cold", "loaded"))
        miss_steps, miss_loads = list(steps[len(hit_steps):]), list(loads)
        again = await cache.inline_or_in_thread(lookup("cold", "loaded again"))
        return loop_thread, hit, hit_steps, miss, miss_steps, miss_loads, again

    loop_thread, hit, hit_steps, miss, miss_steps, miss_loads, again = asyncio.run(main())
    assert hit == "cached" and hit_steps == [loop_thread]
    assert miss == "loaded" and miss_steps[0] == loop_thread and len(miss_steps) == 2
    assert miss_loads == [miss_steps[1]] and miss_loads[0] != loop_thread  # once, in the thread
    assert again == "loaded" and steps[-1] == loop_thread  # the third step ran inline...
    assert len(steps) == 4 and loads == miss_loads  # ...and did not call its loader


def test_an_entry_expiring_during_a_lookup_is_answered_or_missed_never_an_error():
    clock = itertools.count(step=0.6)  # every look at the clock moves it on
    memo = cache.LocalTTLCache(1)
    memo._data = TTLCache(maxsize=10, ttl=1, timer=lambda: next(clock))
    memo._data["k"] = "stored"  # at 0.0: expires at 1.0
    # one look (0.6) finds it; a second look for the same lookup (1.2) would find it gone: KeyError
    assert memo.get_or_load("k", lambda: "loaded") == "stored"
    assert memo.get_or_load("k", lambda: "loaded") == "loaded"  # 1.8: expired, loaded again


# --- SharedRoundTrips ----------------------------------------------------------------------------


class PipelineSpy:
    """Every pipeline sent to Redis, as the commands it carried; hold_next() holds back the next
    one until its release event is set."""

    def __init__(self) -> None:
        self.sent: list[list[tuple]] = []
        self._gates: list[tuple[asyncio.Event, asyncio.Event]] = []

    def hold_next(self) -> tuple[asyncio.Event, asyncio.Event]:
        """(entered: set once the held pipeline is on its way, release: set it to let it go)."""
        gate = (asyncio.Event(), asyncio.Event())
        self._gates.append(gate)
        return gate


@pytest.fixture
def pipelines(monkeypatch):
    spy = PipelineSpy()
    real = redis.asyncio.client.Pipeline.execute

    async def execute(self, *args, **kwargs):
        spy.sent.append([tuple(command) for command, _ in self.command_stack])
        if spy._gates:
            entered, release = spy._gates.pop(0)
            entered.set()
            await release.wait()
        return await real(self, *args, **kwargs)

    monkeypatch.setattr(redis.asyncio.client.Pipeline, "execute", execute)
    return spy


@pytest.fixture
def dead_redis(monkeypatch):
    """The prediction path's Redis client points at a port nobody listens on."""
    dead = f"redis://127.0.0.1:{support.free_port()}/0"
    monkeypatch.setattr(
        cache, "get_async_redis", lambda: redis.asyncio.Redis.from_url(dead, socket_connect_timeout=1.0)
    )


def within(awaitable, seconds: float = 30):
    """A caller left waiting fails the test instead of stalling it."""
    return asyncio.wait_for(awaitable, seconds)


def set_and_get(name: str, value: str) -> tuple[tuple, ...]:
    k = cache.key("t", "rt", name)
    return ("SET", k, value), ("GET", k)


async def held_first_and_five_queued(pipelines) -> tuple[asyncio.Task, list[asyncio.Task], asyncio.Event]:
    """A first call whose round trip is held on its way, and five calls made meanwhile (queued):
    (first, queued, the event that lets the held round trip go)."""
    trips = cache.shared_round_trips()
    entered, release = pipelines.hold_next()
    first = asyncio.create_task(trips.run(*set_and_get("first", "v")))
    await entered.wait()
    queued = [asyncio.create_task(trips.run(*set_and_get(f"k{i}", f"v{i}"))) for i in range(5)]
    for _ in range(3):
        await asyncio.sleep(0)  # a yield: the queued calls get to hand in their commands
    return first, queued, release


def test_a_lone_call_goes_at_once_in_a_pipeline_of_its_own(pipelines):
    async def main():
        trips = cache.shared_round_trips()
        first = await trips.run(*set_and_get("a", "1"))
        second = await trips.run(("GET", cache.key("t", "rt", "a")))
        return first, second

    assert asyncio.run(main()) == ([True, b"1"], [b"1"])
    assert pipelines.sent == [list(set_and_get("a", "1")), [("GET", cache.key("t", "rt", "a"))]]


def test_calls_made_while_a_round_trip_is_on_its_way_go_together_as_one_pipeline(pipelines):
    async def main():
        first, queued, release = await held_first_and_five_queued(pipelines)
        sent_while_held = len(pipelines.sent)
        release.set()
        return sent_while_held, await within(first), await within(asyncio.gather(*queued))

    sent_while_held, first, queued = asyncio.run(main())
    assert sent_while_held == 1
    assert first == [True, b"v"]
    assert queued == [[True, f"v{i}".encode()] for i in range(5)]  # each caller, its own replies
    assert pipelines.sent == [
        list(set_and_get("first", "v")),
        [command for i in range(5) for command in set_and_get(f"k{i}", f"v{i}")],
    ]
    assert cache.get_redis().get(cache.key("t", "rt", "k4")) == b"v4"


def test_a_refused_command_fails_only_in_its_callers_replies(pipelines):
    bad = cache.key("t", "rt", "not-a-number")
    cache.get_redis().set(bad, b"abc")

    async def main():
        trips = cache.shared_round_trips()
        return await within(asyncio.gather(  # started together: one round trip
            trips.run(*set_and_get("before", "1")),
            trips.run(("INCR", bad), ("GET", bad)),
            trips.run(*set_and_get("after", "2")),
        ))

    before, refused, after = asyncio.run(main())
    assert len(pipelines.sent) == 1 and len(pipelines.sent[0]) == 6
    assert before == [True, b"1"] and after == [True, b"2"]
    assert isinstance(refused[0], redis.ResponseError) and refused[1] == b"abc"


def test_a_dead_redis_answers_every_caller_of_the_round_trip_with_exceptions(pipelines, dead_redis):
    async def main():
        trips = cache.shared_round_trips()
        calls = asyncio.gather(
            trips.run(*set_and_get("a", "1")),
            trips.run(("GET", cache.key("t", "rt", "b"))),
            trips.run(*set_and_get("c", "3")),
        )
        return await within(calls)

    replies = asyncio.run(main())
    assert len(pipelines.sent) == 1
    assert [len(r) for r in replies] == [2, 1, 2]
    assert all(isinstance(reply, redis.ConnectionError) for r in replies for reply in r)


def test_charge_windows_raises_a_redis_error_when_redis_is_down(dead_redis):
    with pytest.raises(redis.RedisError):
        asyncio.run(within(cache.charge_windows([cache.key("t", "{d}", "a")], [5], 60)))


def test_a_caller_cancelled_while_waiting_does_not_break_the_others(pipelines):
    async def main():
        trips = cache.shared_round_trips()
        first, queued, release = await held_first_and_five_queued(pipelines)
        queued[2].cancel()
        await asyncio.sleep(0)
        release.set()
        answered = await within(asyncio.gather(first, *queued, return_exceptions=True))
        later = await within(trips.run(*set_and_get("later", "x")))  # the next call still goes
        return answered, later

    (first, *queued), later = asyncio.run(main())
    assert first == [True, b"v"]
    assert isinstance(queued[2], asyncio.CancelledError)
    assert [queued[i] for i in (0, 1, 3, 4)] == [[True, f"v{i}".encode()] for i in (0, 1, 3, 4)]
    assert later == [True, b"x"]
    assert len(pipelines.sent) == 3
