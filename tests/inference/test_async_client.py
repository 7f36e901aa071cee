"""AsyncHostClient: the same domain errors as HostClient, connections kept per event loop and
reused, a connection the manager closed retried once on a new one, a cancelled call's connection
never reused, and a cached client per settings. Each test runs its calls in `asyncio.run`."""

from __future__ import annotations

import asyncio
import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from mlplatform.config import Settings
from mlplatform.errors import InvalidInput, ModelRejected, ModelUnavailable
from mlplatform.inference import client as client_module
from mlplatform.inference import protocol
from mlplatform.inference.async_client import AsyncHostClient, get_async_host_client
from mlplatform.inference.batch import Batch
from tests.inference.fake_manager import WAIT, FakeManager, arrival, close_connections

SHA = "a" * 64
PATH = Path("/store/aa/a")


def echo(frame: protocol.Frame) -> list:
    """The request's first column back as its predictions: a caller can tell whose answer it got."""
    return protocol.result_parts({"ok": True, "host": "pool-1", "model_seconds": 0.002},
                                 {"predictions": protocol.batch_from(frame).values[0]})


def error(code: str, message: str = "why", **details) -> list:
    return protocol.pack({"ok": False, "error": {"code": code, "message": message, "details": details}})


@pytest.fixture
def fake(tmp_path):
    managers = []

    def make(reply=echo, *, path: Path | None = None, batch_max_rows: int = 0) -> tuple[AsyncHostClient, FakeManager]:
        managers.append(FakeManager(path or tmp_path / f"m{len(managers)}.sock", reply))
        hosts = AsyncHostClient(managers[-1].path, load_timeout=5, call_timeout=5, batch_max_rows=batch_max_rows)
        return hosts, managers[-1]

    yield make
    for manager in managers:
        manager.close()


def run(hosts: AsyncHostClient, scenario):
    """`scenario()` on a fresh event loop; the loop's kept connections are closed before it ends."""
    async def main():
        try:
            return await scenario()
        finally:
            await close_connections(hosts)

    return asyncio.run(main())


def rows(owner: int, n: int = 1) -> Batch:
    return Batch(["a", "b"], [owner * 1000 + np.arange(n, dtype=np.float64), np.arange(n)])


def predict_error(hosts: AsyncHostClient, batch: Batch | None = None) -> BaseException:
    async def scenario():
        with pytest.raises(Exception) as raised:
            await hosts.predict(SHA, PATH, batch or rows(1))
        return raised.value

    return run(hosts, scenario)


# ---- errors ------------------------------------------------------------------------------------------

@pytest.mark.parametrize("batch_max_rows", [0, 100], ids=["alone", "coalesced"])
def test_an_absent_service_is_model_unavailable(tmp_path, batch_max_rows):
    hosts = AsyncHostClient(tmp_path / "none.sock", load_timeout=1, call_timeout=1, batch_max_rows=batch_max_rows)

    async def scenario():
        for _ in range(2):  # the failure leaves nothing in flight: the second call fails the same way
            with pytest.raises(ModelUnavailable, match="not reachable") as unavailable:
                await hosts.predict(SHA, PATH, rows(1))
            assert unavailable.value.retry_after >= 1
        if batch_max_rows:
            assert hosts._coalescers.get()._waiting == {}

    run(hosts, scenario)


@pytest.mark.parametrize("code", client_module.REJECTED_CODES)
def test_refusals_are_model_rejected_with_their_code(fake, code):
    hosts, _ = fake(error(code, "the model needs more memory than allowed", limit_bytes=10))
    refused = predict_error(hosts)
    assert isinstance(refused, ModelRejected) and refused.code == code
    assert refused.message == "the model needs more memory than allowed" and refused.details == {"limit_bytes": 10}


@pytest.mark.parametrize("code", client_module.INPUT_CODES)
def test_bad_input_is_invalid_input(fake, code):
    bad = predict_error(fake(error(code))[0])
    assert isinstance(bad, InvalidInput) and bad.code == code


@pytest.mark.parametrize("code", ["host_crashed", "unavailable", "not_found", "something_new"])
def test_everything_else_is_model_unavailable(fake, code):
    unavailable = predict_error(fake(error(code, "the model host crashed during predict (killed by SIGSEGV)"))[0])
    assert isinstance(unavailable, ModelUnavailable) and unavailable.details["reason"] == code


def test_a_garbled_answer_is_model_unavailable(fake):
    garbled = predict_error(fake([b"\x00\x00\x00\x03abc"])[0])
    assert isinstance(garbled, ModelUnavailable) and "answered badly" in garbled.message


def test_errors_reach_the_caller_through_the_coalescer_too(fake):
    bad = predict_error(fake(error("predict_failed"), batch_max_rows=100)[0])
    assert isinstance(bad, InvalidInput) and bad.code == "predict_failed"


# ---- requests and connections ----------------------------------------------------------------------

def test_predict_sends_the_batch_and_returns_arrays_timing_and_batched(fake):
    hosts, manager = fake(protocol.result_parts({"ok": True, "host": "pool-1", "model_seconds": 0.002},
                                                {"predictions": np.array(["yes", "no"])}))
    batch = Batch(["age", "city"], [np.array([1.0, 2.0]), np.array(["Oslo", None], dtype=object)])

    async def scenario():
        return await hosts.predict("b" * 64, Path("/store/bb/b"), batch, proba=True)

    result = run(hosts, scenario)
    assert result["predictions"].tolist() == ["yes", "no"]
    assert (result["host"], result["model_seconds"], result["batched"]) == ("pool-1", 0.002, 1)
    (request,) = manager.requests
    assert {k: request.header[k] for k in ("op", "sha256", "path", "proba", "columns")} == {
        "op": "predict", "sha256": "b" * 64, "path": "/store/bb/b", "proba": True, "columns": ["age", "city"]}
    sent = protocol.batch_from(request)
    assert sent.values[0].tolist() == [1.0, 2.0] and sent.values[1].tolist() == ["Oslo", None]


@pytest.mark.parametrize("batch_max_rows", [0, 100], ids=["alone", "coalesced"])
def test_sequential_calls_on_one_loop_reuse_one_connection(fake, batch_max_rows):
    hosts, manager = fake(batch_max_rows=batch_max_rows)

    async def scenario():
        return [await hosts.predict(SHA, PATH, rows(owner)) for owner in range(5)]

    results = run(hosts, scenario)
    assert [r["predictions"].tolist() for r in results] == [[owner * 1000.0] for owner in range(5)]
    assert len(manager.requests) == 5 and len(manager.connections) == 1
    run(hosts, scenario)  # another loop: connections belong to the loop that opened them
    assert len(manager.requests) == 10 and len(manager.connections) == 2


def test_concurrent_calls_each_take_a_connection_and_leave_it_for_the_next(fake):
    hosts, manager = fake()
    manager.hold()

    async def scenario():
        calls = [asyncio.create_task(hosts.predict(SHA, PATH, rows(owner))) for owner in range(3)]
        for _ in calls:  # all three reach the manager while none is answered
            await arrival(manager)
        manager.open()
        first = await asyncio.wait_for(asyncio.gather(*calls), WAIT)
        then = [await hosts.predict(SHA, PATH, rows(owner)) for owner in range(3, 6)]
        return first + then

    results = run(hosts, scenario)
    assert [r["predictions"].tolist() for r in results] == [[owner * 1000.0] for owner in range(6)]
    assert len(manager.connections) == 3


def test_a_connection_the_manager_closed_is_retried_once_on_a_new_one(fake, tmp_path):
    path = tmp_path / "restarting.sock"
    hosts, before = fake(path=path)
    managers = {}

    async def scenario():
        first = await hosts.predict(SHA, PATH, rows(1))
        before.close()  # the manager restarts on the same socket; the kept connection is dead
        path.unlink()
        _, managers["after"] = fake(path=path)
        return first, await hosts.predict(SHA, PATH, rows(2))

    first, second = run(hosts, scenario)
    after = managers["after"]
    assert first["predictions"].tolist() == [1000.0] and second["predictions"].tolist() == [2000.0]
    assert len(before.requests) == 1 and len(after.requests) == 1 and len(after.connections) == 1


def test_a_fresh_connection_that_fails_is_not_retried(tmp_path):
    path = tmp_path / "hangs-up.sock"
    server = socket.socket(socket.AF_UNIX)
    server.bind(str(path))
    server.listen()
    accepted = []

    def hang_up():  # reads each request, then closes without answering
        while True:
            try:
                conn, _ = server.accept()
            except OSError:
                return
            accepted.append(conn)
            with conn:
                protocol.recv(conn)

    thread = threading.Thread(target=hang_up, daemon=True)
    thread.start()
    hosts = AsyncHostClient(path, load_timeout=1, call_timeout=1)
    try:
        gone = predict_error(hosts)
    finally:
        server.shutdown(socket.SHUT_RDWR)  # wakes the accepting thread (Linux)
        server.close()
    thread.join(WAIT)
    assert isinstance(gone, ModelUnavailable) and "not reachable" in gone.message
    assert len(accepted) == 1  # sent once: a retry would have been accepted before the call failed


def test_a_cancelled_call_never_leaves_its_connection_for_another(fake):
    """The answer to a cancelled call may still come on its connection: the next call must not
    read it as its own."""
    hosts, manager = fake()
    manager.hold()

    async def scenario():
        cancelled = asyncio.create_task(hosts.predict(SHA, PATH, rows(1)))
        await arrival(manager)
        cancelled.cancel()
        await asyncio.wait([cancelled], timeout=WAIT)
        assert cancelled.cancelled() and len(hosts._idle.get()) == 0
        manager.open()
        return await hosts.predict(SHA, PATH, rows(2))

    assert run(hosts, scenario)["predictions"].tolist() == [2000.0]
    assert len(manager.connections) == 2


# ---- one client per settings -------------------------------------------------------------------------

def test_one_client_per_settings_carrying_its_batch_cap(tmp_path):
    first = Settings(var_dir=tmp_path / "a")
    assert get_async_host_client(first) is get_async_host_client(Settings(var_dir=tmp_path / "a"))
    hosts = get_async_host_client(first)
    assert hosts.socket_path == tmp_path / "a" / "hosts.sock"
    assert hosts.batch_max_rows == first.predict_batch_max_rows
    assert hosts.timeout == (first.host_load_timeout_seconds + first.host_call_timeout_seconds
                             + client_module.QUEUE_ALLOWANCE_SECONDS)
    other = get_async_host_client(Settings(var_dir=tmp_path / "b"))
    assert other is not hosts and other.socket_path == tmp_path / "b" / "hosts.sock"
    capped = get_async_host_client(Settings(var_dir=tmp_path / "a", predict_batch_max_rows=7))
    assert capped is not hosts and capped.batch_max_rows == 7
    off = get_async_host_client(Settings(var_dir=tmp_path / "a", predict_batch_max_rows=0))
    assert off.batch_max_rows == 0 and off is not capped
