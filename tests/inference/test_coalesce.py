"""Dynamic batching in AsyncHostClient (coalesce.py): calls that arrive while one of the same group
is in flight go together as one host call, each caller gets exactly its own rows, a bad row or a
size limit fails only its own caller, and no task is left waiting, even when a leader goes away.

Every test drives its calls as asyncio tasks inside `asyncio.run`. Calls are made to queue
deterministically: the fake manager holds answers until it lets them through, and every call that
starts waiting behind one in flight is counted (the coalescer's `_wait_for_turn` is wrapped). The
fake runs on threads, so the event loop waits for it with `asyncio.to_thread`, never blocking."""

from __future__ import annotations

import asyncio
import uuid
from pathlib import Path

import numpy as np
import pytest
from sklearn.datasets import load_iris

from mlplatform.errors import InvalidInput, ModelUnavailable
from mlplatform.inference import protocol
from mlplatform.inference.async_client import AsyncHostClient
from mlplatform.inference.batch import Batch
from mlplatform.inference.coalesce import PredictCoalescer
from tests.inference import host_models
from tests.inference.fake_manager import WAIT, FakeManager, arrival, close_connections

SHA, OTHER_SHA = "a" * 64, "b" * 64
PATH = Path("/store/aa/a")
BAD, CRASH = -1.0, -2.0  # a value in column "a" the fake refuses (bad input) or crashes on


def echo(*, reject_over_rows: int | None = None, summary: bool = False):
    """A manager's answer to each predict with the request's own rows: "predictions" is its first
    column and "numbers" its numeric columns side by side, so a caller can tell whose rows it got."""
    def reply(frame: protocol.Frame) -> list:
        batch = protocol.batch_from(frame)
        if BAD in batch.values[0]:
            return _error("predict_failed")
        if CRASH in batch.values[0]:
            return _error("host_crashed")
        if reject_over_rows is not None and batch.n_rows > reject_over_rows:
            return _error("resource_limit")
        numeric = [v for v in batch.values if v.dtype.kind in "biuf"]
        outputs = {"predictions": batch.values[0], "numbers": np.column_stack(numeric).astype(np.float64)}
        if summary:  # one value for the whole batch: not an output with a row per input row
            outputs["rows_seen"] = np.array([batch.n_rows])
        return protocol.result_parts({"ok": True, "host": "pool-1", "model_seconds": 0.001}, outputs)

    return reply


def _error(code: str) -> list:
    return protocol.pack({"ok": False, "error": {"code": code, "message": f"fake {code}", "details": {}}})


# ---- batches whose rows name their owner -----------------------------------------------------------

def _owned(owner: int, rows: int) -> np.ndarray:
    return owner * 1000 + np.arange(rows, dtype=np.float64)  # never BAD or CRASH


def block(owner: int, rows: int = 1, columns=("a", "b")) -> Batch:
    a = _owned(owner, rows)
    return Batch.from_block(list(columns), np.column_stack([a, a / 2][:len(columns)]))


def numbers(owner: int, rows: int = 1, columns=("a", "b"), int_dtype=np.int64) -> Batch:
    a = _owned(owner, rows)
    return Batch(list(columns), [a, (a * 2).astype(int_dtype)])


def texts(owner: int, rows: int = 1) -> Batch:
    a = _owned(owner, rows)
    return Batch(["a", "city"], [a, np.array([f"city-{v:g}" if v % 2 else None for v in a], dtype=object)])


def marked(value: float, rows: int = 1) -> Batch:
    """A batch whose last row carries a marker the fake reacts to."""
    batch = numbers(99, rows)
    batch.values[0][-1] = value
    return batch


def assert_own_rows(result: dict, batch: Batch):
    assert not isinstance(result, BaseException), result
    assert result["predictions"].tolist() == batch.values[0].tolist()
    numeric = [v for v in batch.values if v.dtype.kind in "biuf"]
    assert result["numbers"].tolist() == np.column_stack(numeric).astype(np.float64).tolist()
    assert (result["host"], result["model_seconds"]) == ("pool-1", 0.001)


# ---- callers as asyncio tasks ------------------------------------------------------------------------

class Callers:
    """Predict calls, each an asyncio task of its own, all on the running loop; `waiting` counts
    calls that queued behind one in flight (the coalescer's wait is wrapped to count them)."""

    def __init__(self, predict, coalescer: PredictCoalescer | None):
        self.predict, self.coalescer, self.tasks, self.batches = predict, coalescer, {}, {}
        self.waiting = asyncio.Semaphore(0)
        if coalescer is not None:
            wait_for_turn = coalescer._wait_for_turn

            async def counted(key, call):
                self.waiting.release()
                await wait_for_turn(key, call)

            coalescer._wait_for_turn = counted

    @classmethod
    def of(cls, hosts: AsyncHostClient) -> Callers:
        """Calls through `hosts` on the running loop (its coalescer is this loop's)."""
        async def predict(batch: Batch, *, sha: str = SHA, path: Path = PATH, proba: bool = False) -> dict:
            return await hosts.predict(sha, path, batch, proba=proba)

        return cls(predict, hosts._coalescers.get() if hosts.batch_max_rows > 0 else None)

    def start(self, name, batch: Batch, **call) -> asyncio.Task:
        self.batches[name] = batch
        self.tasks[name] = asyncio.create_task(self.predict(batch, **call), name=f"caller-{name}")
        return self.tasks[name]

    async def queued(self, count: int = 1) -> None:
        """Until `count` more calls have started waiting behind one in flight."""
        for _ in range(count):
            await asyncio.wait_for(self.waiting.acquire(), WAIT)

    async def join(self) -> dict:
        """Every caller's result, or the exception it ended with (CancelledError if cancelled)."""
        _, pending = await asyncio.wait(self.tasks.values(), timeout=WAIT * 3)
        assert not pending, f"callers never got their answers: {[t.get_name() for t in pending]}"
        return {name: outcome(task) for name, task in self.tasks.items()}


def outcome(task: asyncio.Task):
    if task.cancelled():
        return asyncio.CancelledError()
    return task.exception() or task.result()


def run(hosts: AsyncHostClient, scenario):
    """`scenario(callers)` on a fresh event loop, with the callers of `hosts` on that loop."""
    async def main():
        try:
            return await scenario(Callers.of(hosts))
        finally:
            await close_connections(hosts)

    return asyncio.run(main())


@pytest.fixture
def fake(tmp_path):
    managers = []

    def make(batch_max_rows: int = 1000, **options) -> tuple[AsyncHostClient, FakeManager]:
        manager = FakeManager(tmp_path / f"m{len(managers)}.sock", echo(**options), held=True)
        managers.append(manager)
        return AsyncHostClient(manager.path, load_timeout=5, call_timeout=5, batch_max_rows=batch_max_rows), manager

    yield make
    for manager in managers:
        manager.close()


async def hold_first_then_queue(manager: FakeManager, callers: Callers, first: Batch, followers: dict, **call):
    """`first` is sent and held on the manager; then each follower, in order, queues behind it."""
    callers.start("first", first, **call)
    await arrival(manager)
    for name, batch in followers.items():
        callers.start(name, batch, **call)
        await callers.queued()


def rows_sent(manager: FakeManager) -> list[list]:
    return [protocol.batch_from(r).values[0].tolist() for r in manager.requests]


# ---- tests -----------------------------------------------------------------------------------------

@pytest.mark.parametrize("make", [block, numbers, texts], ids=["block", "columns", "object_columns"])
def test_calls_behind_one_in_flight_go_as_one_stacked_call_and_get_their_own_rows(fake, make):
    hosts, manager = fake()
    followers = {owner: make(owner, rows=owner) for owner in (1, 2, 3)}

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, make(0), followers)
        assert len(callers.coalescer._waiting[next(iter(callers.coalescer._waiting))]) == 3
        manager.open()
        results = await callers.join()
        assert callers.coalescer._waiting == {}  # nothing left in flight
        return callers.batches, results

    batches, results = run(hosts, scenario)
    assert rows_sent(manager) == [
        batches["first"].values[0].tolist(),
        [v for owner in (1, 2, 3) for v in followers[owner].values[0].tolist()],  # in arrival order
    ]
    combined = manager.requests[1]
    assert combined.header["block"] is True if make is block else "block" not in combined.header
    assert protocol.batch_from(combined).values[-1].tolist() == [
        v for owner in (1, 2, 3) for v in followers[owner].values[-1].tolist()]  # object columns too
    for name, batch in batches.items():
        assert_own_rows(results[name], batch)
    assert results["first"]["batched"] == 1 and all(results[o]["batched"] == 3 for o in (1, 2, 3))
    assert len(manager.connections) == 1  # the first call's connection, kept and reused by the combined call


def test_different_models_flags_or_column_layouts_are_never_combined(fake):
    hosts, manager = fake()
    groups = {  # each sends one call, held; then two calls of the same group queue behind it
        "model": (lambda o: numbers(o), {}),
        "other_model": (lambda o: numbers(o), {"sha": OTHER_SHA}),
        "other_path": (lambda o: numbers(o), {"path": Path("/store/aa/other")}),
        "proba": (lambda o: numbers(o), {"proba": True}),
        "column_names": (lambda o: numbers(o, columns=("a", "c")), {}),
        "column_dtype": (lambda o: numbers(o, int_dtype=np.int32), {}),
        "block": (lambda o: block(o), {}),
    }
    owners = {name: {g * 10 + 1, g * 10 + 2} for g, name in enumerate(groups)}

    async def scenario(callers: Callers):
        for g, (name, (make, call)) in enumerate(groups.items()):
            callers.start(f"{name}-first", make(g * 10), **call)
            await arrival(manager)
        for name, (make, call) in groups.items():
            for owner in sorted(owners[name]):
                callers.start(f"{name}-{owner}", make(owner), **call)
                await callers.queued()
        assert sorted(map(len, callers.coalescer._waiting.values())) == [2] * len(groups)
        manager.open()
        return callers.batches, await callers.join()

    batches, results = run(hosts, scenario)
    combined = [{int(v // 1000) for v in rows} for rows in rows_sent(manager)[len(groups):]]
    assert sorted(map(sorted, combined)) == sorted(map(sorted, owners.values()))
    for name, batch in batches.items():
        assert_own_rows(results[name], batch)
    sent_as = {(r.header["sha256"], r.header["path"], r.header["proba"]) for r in manager.requests}
    assert sent_as == {(SHA, str(PATH), False), (OTHER_SHA, str(PATH), False), (SHA, "/store/aa/other", False),
                       (SHA, str(PATH), True)}


def test_at_most_max_rows_go_in_one_call_and_a_bigger_call_goes_alone_at_once(fake):
    hosts, manager = fake(batch_max_rows=5)

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, numbers(0), {owner: numbers(owner, rows=2) for owner in (1, 2, 3)})
        callers.start("big", numbers(4, rows=6))  # over the cap: not queued behind the held call
        await arrival(manager)
        manager.open()
        return callers.batches, await callers.join()

    batches, results = run(hosts, scenario)
    assert [len(rows) for rows in rows_sent(manager)] == [1, 6, 4, 2]
    assert [results[name]["batched"] for name in ("first", 1, 2, 3, "big")] == [1, 2, 2, 1, 1]
    for name, batch in batches.items():
        assert_own_rows(results[name], batch)


def test_zero_max_rows_turns_combining_off(fake):
    hosts, manager = fake(batch_max_rows=0)

    async def scenario(callers: Callers):
        assert callers.coalescer is None
        for owner in range(4):
            callers.start(owner, numbers(owner))
        await arrival(manager, 4)  # all four reached the manager while none was answered
        manager.open()
        return callers.batches, await callers.join()

    batches, results = run(hosts, scenario)
    assert len(manager.requests) == 4 and len(manager.connections) == 4
    assert hosts._coalescers._objects == {}  # no loop ever made a coalescer
    for owner, batch in batches.items():
        assert_own_rows(results[owner], batch)
        assert results[owner]["batched"] == 1


def test_bad_input_in_a_combined_call_fails_only_its_own_caller(fake):
    hosts, manager = fake()

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, numbers(0), {
            "good": numbers(1, 2), "bad": marked(BAD, 2), "also_good": numbers(3, 1)})
        manager.open()
        return callers.batches, await callers.join()

    batches, results = run(hosts, scenario)
    assert isinstance(results["bad"], InvalidInput) and results["bad"].code == "predict_failed"
    for name in ("first", "good", "also_good"):
        assert_own_rows(results[name], batches[name])
        assert results[name]["batched"] == 1
    assert len(manager.requests) == 1 + 1 + 3  # first, the combined call, then each follower alone


def test_a_size_limit_on_the_combined_call_sends_each_caller_alone(fake):
    hosts, manager = fake(reject_over_rows=2)

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, numbers(0), {owner: numbers(owner, 2) for owner in (1, 2, 3)})
        manager.open()
        return callers.batches, await callers.join()

    batches, results = run(hosts, scenario)
    for name, batch in batches.items():
        assert_own_rows(results[name], batch)
        assert results[name]["batched"] == 1
    assert [len(rows) for rows in rows_sent(manager)][:2] == [1, 6] and len(manager.requests) == 5


def test_a_crash_during_the_combined_call_reaches_every_caller_in_it(fake):
    hosts, manager = fake()

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, numbers(0), {"crashes": marked(CRASH), "innocent": numbers(2)})
        manager.open()
        results = await callers.join()
        assert callers.coalescer._waiting == {}
        return callers.batches, results

    batches, results = run(hosts, scenario)
    assert_own_rows(results["first"], batches["first"])
    for name in ("crashes", "innocent"):
        assert isinstance(results[name], ModelUnavailable) and results[name].details["reason"] == "host_crashed"
    assert len(manager.requests) == 2  # not retried: the host is gone for everyone


def test_outputs_without_a_row_per_input_row_are_fetched_alone(fake):
    hosts, manager = fake(summary=True)

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, numbers(0), {owner: numbers(owner, owner) for owner in (1, 2, 3)})
        manager.open()
        return callers.batches, await callers.join()

    batches, results = run(hosts, scenario)
    for owner in (1, 2, 3):
        assert_own_rows(results[owner], batches[owner])
        assert results[owner]["rows_seen"].tolist() == [owner] and results[owner]["batched"] == 1
    assert len(manager.requests) == 1 + 1 + 3


def test_a_cancelled_leader_releases_its_followers_and_hands_the_queue_over(fake):
    """The caller sending a combined call goes away (its request was cancelled) mid-call: the
    others in that call get ModelUnavailable at once, not a hang, the call queued behind is sent
    next, and the key works as before."""
    hosts, manager = fake()

    async def scenario(callers: Callers):
        await hold_first_then_queue(manager, callers, numbers(0), {"leader": numbers(1), "follower": numbers(2, 2)})
        manager.let_through(1)  # the first call ends; the two queued behind it go as one, held
        await arrival(manager)
        callers.start("next", numbers(3))  # queues behind the combined call in flight
        await callers.queued()
        callers.tasks["leader"].cancel()
        await settled(callers.tasks["follower"])  # while the manager still holds the combined call
        await arrival(manager)  # "next" was handed the queue and sent
        manager.open()
        results = await callers.join()
        assert callers.coalescer._waiting == {}
        later = await hosts.predict(SHA, PATH, numbers(4))  # the same key, afterwards
        assert callers.coalescer._waiting == {}
        return callers.batches, results, later

    batches, results, later = run(hosts, scenario)
    assert isinstance(results["leader"], asyncio.CancelledError)
    follower = results["follower"]
    assert isinstance(follower, ModelUnavailable) and "abandoned" in follower.message and follower.retry_after >= 1
    assert_own_rows(results["first"], batches["first"])
    assert_own_rows(results["next"], batches["next"])
    assert results["next"]["batched"] == 1
    assert_own_rows(later, numbers(4))
    assert later["batched"] == 1
    assert [len(rows) for rows in rows_sent(manager)] == [1, 3, 1, 1]


async def settled(task: asyncio.Task) -> None:
    """Until `task` has ended (its outcome is read from the task)."""
    done, _ = await asyncio.wait([task], timeout=WAIT)
    assert done, f"{task.get_name()} never got its answer"


# ---- the coalescer on its own: failures of the leader, stuck and cancelled calls --------------------

KEY = ("k",)


class HeldSend:
    """A send function: the first `held` calls each wait until their gate opens; later calls do
    `then` (if given) before answering each row with its own first column."""

    def __init__(self, held: int = 1, then=None):
        self.gates = [asyncio.Event() for _ in range(held)]
        self.arrived, self.then, self.sent = asyncio.Semaphore(0), then, []

    async def __call__(self, batch: Batch) -> tuple[dict, dict]:
        index = len(self.sent)
        self.sent.append(batch.n_rows)
        self.arrived.release()
        if index < len(self.gates):
            await self.gates[index].wait()
        elif self.then is not None:
            self.then()
        return {"predictions": batch.values[0].copy()}, {"host": "h", "model_seconds": 0.0}

    async def arrival(self, count: int = 1) -> None:
        for _ in range(count):
            await asyncio.wait_for(self.arrived.acquire(), WAIT)


async def coalesced_callers(coalescer: PredictCoalescer, send: HeldSend, count: int) -> Callers:
    """`count` calls as tasks; the first is in flight (held in `send`), the others wait behind it."""
    async def predict(batch: Batch) -> dict:
        return await coalescer.predict(KEY, batch, send)

    callers = Callers(predict, coalescer)
    callers.start(0, numbers(0))
    await send.arrival()
    for owner in range(1, count):
        callers.start(owner, numbers(owner))
        await callers.queued()
    assert len(coalescer._waiting[KEY]) == count - 1
    return callers


def test_an_unexpected_failure_of_the_leader_reaches_every_follower():
    def boom():
        raise RuntimeError("boom")

    async def scenario():
        coalescer, send = PredictCoalescer(max_rows=100, wait_timeout=WAIT * 3), HeldSend(then=boom)
        callers = await coalesced_callers(coalescer, send, 4)
        send.gates[0].set()
        results = await callers.join()
        assert results[0]["batched"] == 1
        assert all(isinstance(results[o], RuntimeError) for o in (1, 2, 3))
        assert send.sent == [1, 3] and coalescer._waiting == {}

    asyncio.run(scenario())


def test_a_follower_gives_up_after_its_allowance_and_leaves_the_queue():
    async def scenario():
        coalescer, send = PredictCoalescer(max_rows=100, wait_timeout=0.2), HeldSend()
        callers = await coalesced_callers(coalescer, send, 2)
        await settled(callers.tasks[1])  # gives up after 0.2 s while the first call is still held
        gave_up = outcome(callers.tasks[1])
        assert isinstance(gave_up, ModelUnavailable) and "within 0.2 s" in gave_up.message
        assert len(coalescer._waiting[KEY]) == 0  # left the queue; the first call is still in flight
        send.gates[0].set()
        results = await callers.join()
        assert results[0]["predictions"].tolist() == [0.0]
        assert send.sent == [1] and coalescer._waiting == {}  # the one that gave up was never sent

    asyncio.run(scenario())


def test_a_follower_cancelled_as_it_is_chosen_to_lead_abandons_its_group():
    """The call chosen to send the next group is cancelled before it could: the others of that
    group get ModelUnavailable and the calls behind them are handed the queue."""
    async def scenario():
        coalescer, send = PredictCoalescer(max_rows=2, wait_timeout=WAIT * 3), HeldSend()
        callers = await coalesced_callers(coalescer, send, 4)  # 1 and 2 go as one group, then 3
        hand_over = coalescer._hand_over

        def cancel_then_hand_over(key):  # cancelled in the very step it is chosen to lead
            if len(send.sent) == 1:
                callers.tasks[1].cancel()
            hand_over(key)

        coalescer._hand_over = cancel_then_hand_over
        send.gates[0].set()
        results = await callers.join()
        assert results[0]["batched"] == 1
        assert isinstance(results[1], asyncio.CancelledError)
        assert isinstance(results[2], ModelUnavailable) and "abandoned" in results[2].message
        assert results[3]["predictions"].tolist() == [3000.0] and results[3]["batched"] == 1
        assert send.sent == [1, 1] and coalescer._waiting == {}  # the abandoned group was never sent

    asyncio.run(scenario())


def test_a_member_of_a_combined_call_in_flight_may_be_cancelled_alone():
    async def scenario():
        coalescer, send = PredictCoalescer(max_rows=100, wait_timeout=WAIT * 3), HeldSend(held=2)
        callers = await coalesced_callers(coalescer, send, 4)
        send.gates[0].set()
        await send.arrival()  # the combined call of 1, 2 and 3, held
        callers.tasks[2].cancel()
        await settled(callers.tasks[2])
        assert outcome(callers.tasks[2]).__class__ is asyncio.CancelledError
        send.gates[1].set()
        results = await callers.join()
        for owner in (1, 3):
            assert results[owner]["predictions"].tolist() == [owner * 1000.0] and results[owner]["batched"] == 3
        assert send.sent == [1, 3] and coalescer._waiting == {}

    asyncio.run(scenario())


def test_a_member_of_a_combined_call_in_flight_gives_up_after_its_allowance():
    async def scenario():
        coalescer, send = PredictCoalescer(max_rows=100, wait_timeout=WAIT * 3), HeldSend(held=2)
        callers = await coalesced_callers(coalescer, send, 2)
        coalescer.wait_timeout = 0.3  # for the next call to queue: it will be the combined call's member
        callers.start(2, numbers(2))
        await callers.queued()
        send.gates[0].set()
        await send.arrival()  # the combined call of 1 and 2, held
        await settled(callers.tasks[2])  # 0.3 s after it queued
        gave_up = outcome(callers.tasks[2])
        assert isinstance(gave_up, ModelUnavailable) and "within 0.3 s" in gave_up.message
        send.gates[1].set()
        results = await callers.join()
        assert results[1]["predictions"].tolist() == [1000.0] and results[1]["batched"] == 2
        assert send.sent == [1, 2] and coalescer._waiting == {}

    asyncio.run(scenario())


# ---- real model hosts ------------------------------------------------------------------------------

def real_hosts(settings) -> AsyncHostClient:
    return AsyncHostClient(settings.host_socket, load_timeout=60, call_timeout=30, batch_max_rows=1000)


def test_concurrent_predictions_on_real_hosts_are_combined_and_exact(model_hosts, settings):
    model = host_models.iris_logreg(31)
    path, sha = host_models.write(model_hosts.models_dir / f"t-{uuid.uuid4().hex[:8]}", "coalesce", model)
    hosts = real_hosts(settings)
    X, _ = load_iris(return_X_y=True)
    slices = {i: slice(i * 7, i * 7 + 1 + i % 5) for i in range(20)}  # 1 to 5 rows each, overlapping none
    sent, predict_once = [], hosts._predict_once

    async def scenario(callers: Callers):
        await hosts.predict(sha, path, host_models.iris_batch(1))  # loaded before the calls
        in_flight, all_waiting = asyncio.Event(), asyncio.Event()

        async def held_first(*args):
            sent.append(args[2].n_rows)
            if len(sent) == 1:  # the first call stays in flight until every other one waits behind it
                in_flight.set()
                await asyncio.wait_for(all_waiting.wait(), WAIT * 3)
            return await predict_once(*args)

        hosts._predict_once = held_first
        call = {"sha": sha, "path": path, "proba": True}
        callers.start(0, Batch.from_input(X[slices[0]]), **call)
        await asyncio.wait_for(in_flight.wait(), WAIT)
        for i in range(1, 20):
            callers.start(i, Batch.from_input(X[slices[i]]), **call)
        await callers.queued(19)
        all_waiting.set()
        return await callers.join()

    results = run(hosts, scenario)
    assert sent == [1, sum(len(range(150)[s]) for i, s in slices.items() if i)]  # 20 requests, 2 host calls
    for i, rows in slices.items():
        assert not isinstance(results[i], BaseException), results[i]
        assert np.array_equal(results[i]["predictions"], model.predict(X[rows]))
        np.testing.assert_allclose(results[i]["probabilities"], model.predict_proba(X[rows]), rtol=1e-12)
        assert results[i]["batched"] == (1 if i == 0 else 19)


def test_many_tasks_predicting_at_once_on_real_hosts_get_exact_answers(model_hosts, settings):
    model = host_models.iris_logreg(32)
    path, sha = host_models.write(model_hosts.models_dir / f"t-{uuid.uuid4().hex[:8]}", "coalesce", model)
    hosts = real_hosts(settings)
    X, _ = load_iris(return_X_y=True)
    failures, batched = [], []

    async def predict_rows(worker: int):
        for i in range(15):
            start = (worker * 15 + i) % 150
            rows = slice(start, start + 1 + i % 3)
            as_block = Batch.from_block([f"f{j}" for j in range(4)], X[rows]) if i % 2 else Batch.from_input(X[rows])
            result = await hosts.predict(sha, path, as_block, proba=True)
            batched.append(result["batched"])
            if not (np.array_equal(result["predictions"], model.predict(X[rows]))
                    and np.allclose(result["probabilities"], model.predict_proba(X[rows]), rtol=1e-12, atol=0)):
                failures.append((worker, i))

    async def scenario(callers: Callers):
        # started together: the first call of the first task is in flight when the others start theirs
        await asyncio.wait_for(asyncio.gather(*(predict_rows(w) for w in range(12))), 120)

    run(hosts, scenario)
    assert failures == [] and len(batched) == 12 * 15
    assert max(batched) > 1  # calls were combined
