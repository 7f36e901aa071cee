"""Model hosts under their limits, each case on a manager of its own with small settings: LRU
eviction within the memory budget, address-space, CPU and wall-clock limits that fail one call
(resource_limit) while the service keeps answering, and error replies that keep a host serving."""

from __future__ import annotations

import numpy as np
import pytest

from mlplatform.errors import InvalidInput, ModelRejected
from mlplatform.inference.batch import Batch
from tests.hosts_support import start_manager, start_private_manager
from tests.inference import host_models

MB = 1024 * 1024


def manager_with(label: str, **settings):
    env = {f"MLPLATFORM_{k.upper()}": str(v) for k, v in settings.items()}
    return start_private_manager(label, {"MLPLATFORM_HOST_PROCESSES": "1", **env})


@pytest.fixture(scope="module")
def small_memory():
    manager = manager_with("lru", host_memory_mb=64)
    yield manager
    manager.stop()


def only_host(client) -> dict:
    (host,) = client.status()["hosts"]
    return host


def simulate_lru(events: list[tuple[str, str]], sizes: dict, files: dict, budget: int) -> list[str]:
    """What the host's LRU must hold after `events` ("load"/"use", name): before a load, evict
    least recently used until the file fits; after it, evict others until within the budget."""
    held: list[str] = []  # least recently used first
    for kind, name in events:
        if name in held:
            held.remove(name)
        elif kind == "load":
            while held and sum(sizes[n] for n in held) > budget - files[name]:
                held.pop(0)
        held.append(name)
        while sum(sizes[n] for n in held) > budget and len(held) > 1:
            held.pop(0 if held[0] != name else 1)
    return held


def test_models_are_evicted_least_recently_used_first_within_the_budget(small_memory):
    client = small_memory.client()
    store = small_memory.models_dir / "lru"
    models = {name: host_models.write(store, name, host_models.sized_knn(20, seed)) for seed, name in enumerate("abcd")}
    sizes, events = {}, []
    for name in ("a", "b", "c"):
        client.load(models[name][1], models[name][0])
        sizes[name] = next(m["memory_bytes"] for m in only_host(client)["models"] if m["sha256"] == models[name][1])
        events.append(("load", name))
    client.predict(models["b"][1], models["b"][0], Batch.from_input(np.zeros((1, 64))))
    events.append(("use", "b"))
    client.load(models["d"][1], models["d"][0])
    host = only_host(client)
    sizes["d"] = next(m["memory_bytes"] for m in host["models"] if m["sha256"] == models["d"][1])
    files = {name: path.stat().st_size for name, (path, _) in models.items()}
    expected = simulate_lru(events + [("load", "d")], sizes, files, 64 * MB)
    assert host["loaded"] == [models[name][1] for name in expected]
    assert host["memory_bytes"] <= 64 * MB and len(expected) < 4  # something was evicted
    assert "b" in expected and "d" in expected  # b was used after a and c were loaded
    assert host["restarts"] == 0


def test_a_model_larger_than_the_budget_is_refused(small_memory):
    client = small_memory.client()
    path, _ = host_models.write(small_memory.models_dir / "big", "big", host_models.sized_knn(80, 9))
    with pytest.raises(ModelRejected) as refused:
        client.inspect(path)
    assert refused.value.code == "resource_limit"
    assert only_host(client)["state"] == "ready"


def test_errors_are_replies_and_the_host_keeps_serving(small_memory):
    client = small_memory.client()
    path, sha = host_models.write(small_memory.models_dir / "err", "iris", host_models.iris_logreg(4))
    pid = only_host(client)["pid"]
    with pytest.raises(InvalidInput, match="missing input columns"):
        client.predict(sha, path, Batch(["x"], [np.zeros(2)]))
    words = Batch(["f0", "f1", "f2", "f3"], [np.array(["a", "b"], dtype=object)] + [np.zeros(2)] * 3)
    with pytest.raises(InvalidInput) as wrong:
        client.predict(sha, path, words)
    assert wrong.value.code == "predict_failed" and "ValueError" in wrong.value.message
    assert client.predict(sha, path, host_models.iris_batch(3))["predictions"].shape == (3,)
    assert client.unload(sha)["unloaded_from"] == ["pool-0"]
    assert sha not in only_host(client)["loaded"]
    assert only_host(client)["pid"] == pid


def test_a_load_over_the_address_space_limit_fails_cleanly():
    manager = manager_with("as", host_address_space_mb=768, host_memory_mb=2048,
                           max_model_decompressed_bytes=2 * 1024 * MB)
    try:
        client = manager.client()
        store = manager.models_dir / "as"
        huge, _ = host_models.write(store, "huge", host_models.huge_linear(75_000_000), compress=3)  # 600 MB
        with pytest.raises(ModelRejected) as refused:
            client.inspect(huge)
        assert refused.value.code == "resource_limit", refused.value.message
        path, sha = host_models.write(store, "iris", host_models.iris_logreg())
        assert client.inspect(path)["n_features"] == 4
        assert client.predict(sha, path, host_models.iris_batch())["predictions"].shape == (5,)
    finally:
        manager.stop()


def test_a_call_over_its_cpu_time_fails_and_the_service_keeps_answering():
    manager = manager_with("cpu", host_cpu_seconds=1, host_call_timeout_seconds=120)
    try:
        client = manager.client(call_timeout=120)
        path, sha = host_models.write(manager.models_dir / "cpu", "slow", host_models.slow_knn())
        with pytest.raises(ModelRejected) as refused:
            client.predict(sha, path, host_models.slow_batch(3000))
        assert refused.value.code == "resource_limit" and "CPU time" in refused.value.message
        assert client.predict(sha, path, host_models.slow_batch(3))["predictions"].shape == (3,)
    finally:
        manager.stop()


def test_a_call_over_its_wall_clock_limit_fails_and_its_host_is_replaced():
    manager = manager_with("wall", host_call_timeout_seconds=0.5)
    try:
        client = manager.client()
        path, sha = host_models.write(manager.models_dir / "wall", "slow", host_models.slow_knn())
        client.load(sha, path)
        pid = only_host(client)["pid"]
        with pytest.raises(ModelRejected) as refused:
            client.predict(sha, path, host_models.slow_batch(3000))
        assert refused.value.code == "resource_limit" and "longer than 0.5 s" in refused.value.message
        assert client.predict(sha, path, host_models.slow_batch(3))["predictions"].shape == (3,)
        host = only_host(client)
        assert host["pid"] != pid and host["restarts"] == 1
    finally:
        manager.stop()


def test_hosts_that_cannot_lock_down_refuse_to_serve_and_readiness_says_why(monkeypatch):
    """A var dir inside a tree hosts may read (here: the mlplatform package) fails the lock-down,
    a mandatory step: no host serves, and the reason reaches status, readiness and callers."""
    import shutil
    import tempfile
    from pathlib import Path

    from mlplatform.errors import ModelUnavailable
    from mlplatform.services import health

    package = Path(__file__).resolve().parents[2] / "mlplatform"
    var_dir = Path(tempfile.mkdtemp(prefix=".test-var-", dir=package))
    manager = start_manager(var_dir, {"MLPLATFORM_HOST_PROCESSES": "1"})
    try:
        client = manager.client()
        (host,) = client.status()["hosts"]
        assert host["state"] == "failed" and "which model hosts may read" in host["error"]
        monkeypatch.setattr(health, "get_host_client", lambda _settings: client)
        check = health._model_hosts()
        assert not check.ok and "which model hosts may read" in check.detail
        path, sha = host_models.write(manager.models_dir, "iris", host_models.iris_logreg())
        with pytest.raises(ModelUnavailable, match="refused to start"):
            client.inspect(path)
        with pytest.raises(ModelUnavailable):
            client.predict(sha, path, host_models.iris_batch())
    finally:
        manager.stop()
        shutil.rmtree(var_dir, ignore_errors=True)
