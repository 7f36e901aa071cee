"""The host manager on the session's real hosts (conftest's `model_hosts`): status, the upload gate
on fresh hosts, routing by sha256, one load for many clients, crashes that fail one call only,
model files opened only inside the store, and a clean stop."""

from __future__ import annotations

import json
import os
import signal
import socket
import stat
import subprocess
import sys
import threading
import uuid

import numpy as np
import pytest
from sklearn.datasets import load_iris
from sklearn.ensemble import BaggingClassifier, RandomForestClassifier
from sklearn.neighbors import KNeighborsClassifier

from mlplatform.errors import InvalidInput, ModelRejected, ModelUnavailable
from mlplatform.inference import sandbox
from tests.hosts_support import ROOT, manager_var_dir, start_manager, start_private_manager, wait_until
from tests.inference import host_models

pytestmark = pytest.mark.usefixtures("model_hosts")


@pytest.fixture
def hosts(model_hosts):
    return model_hosts.client()


@pytest.fixture
def store(model_hosts):
    """A directory of this test's own inside the session manager's model store."""
    path = model_hosts.models_dir / f"t-{uuid.uuid4().hex[:8]}"
    path.mkdir(parents=True)
    return path


def host_entry(hosts, slot_id: str) -> dict:
    return next(h for h in hosts.status()["hosts"] if h["id"] == slot_id)


def test_status_reports_ready_locked_down_hosts(hosts, model_hosts, settings):
    status = hosts.status()
    assert len(status["hosts"]) == settings.host_processes
    assert status["spare"] in ("ready", "starting")
    for host in status["hosts"]:
        assert host["state"] == "ready" and host["pid"] > 0 and host["busy"] is None
        for layer in sandbox.MANDATORY:
            assert host["sandbox"][layer]["applied"], host["sandbox"]
        assert host["rss_bytes"] > 0 and host["memory_budget_bytes"] == settings.host_memory_mb * 1024 * 1024
    assert stat.S_IMODE(os.stat(model_hosts.socket).st_mode) == 0o600
    assert model_hosts.socket == settings.host_socket


def test_the_gate_inspects_each_file_in_a_fresh_host(hosts, store):
    path, _ = host_models.write(store, "iris", host_models.iris_logreg())
    pool_pids = {h["pid"] for h in hosts.status()["hosts"]}
    first, second = hosts.inspect(path), hosts.inspect(path)
    assert first["estimator"] == "sklearn.linear_model._logistic.LogisticRegression"
    assert first["n_features"] == 4 and first["classes"] == [0, 1, 2] and first["task"] == "classifier"
    assert first["load_seconds"] >= 0 and first["memory_bytes"] > 0
    measured = ("load_seconds", "memory_bytes")  # differ from host to host
    assert {k: v for k, v in first.items() if k not in measured} == {
        k: v for k, v in second.items() if k not in measured}
    assert {h["pid"] for h in hosts.status()["hosts"]} == pool_pids  # the pool was not used
    assert all(path.name not in json.dumps(h["loaded"]) for h in hosts.status()["hosts"])


def test_a_refused_file_names_its_reason_and_the_service_keeps_answering(hosts, store):
    bad = store / "unsafe"
    bad.write_bytes(b"\x80\x04\x8c\x05posix\x94\x8c\x06system\x94\x93\x94\x8c\x04true\x94\x85\x94R\x94.")
    with pytest.raises(ModelRejected) as refused:
        hosts.inspect(bad)
    assert refused.value.code == "unsafe_model" and "posix.system" in refused.value.message
    path, _ = host_models.write(store, "iris", host_models.iris_logreg())
    assert hosts.inspect(path)["n_features"] == 4


def test_predictions_are_routed_to_the_host_holding_the_model(hosts, store):
    a_path, a = host_models.write(store, "a", host_models.iris_logreg(1))
    b_path, b = host_models.write(store, "b", host_models.iris_logreg(2))
    first = hosts.predict(a, a_path, host_models.iris_batch(), proba=True)
    assert first["probabilities"].shape == (5, 3) and first["model_seconds"] >= 0
    assert np.array_equal(first["predictions"], host_models.iris_logreg(1).predict(
        np.column_stack(host_models.iris_batch().values)))
    for _ in range(3):
        assert hosts.predict(a, a_path, host_models.iris_batch())["host"] == first["host"]
    holders = [h["id"] for h in hosts.status()["hosts"] if a in h["loaded"]]
    assert holders == [first["host"]]
    hosts.predict(b, b_path, host_models.iris_batch())
    assert [h["id"] for h in hosts.status()["hosts"] if b in h["loaded"]] != []


@pytest.mark.parametrize("estimator", [
    RandomForestClassifier(n_estimators=3, random_state=0, n_jobs=-1),  # joblib threads
    KNeighborsClassifier(n_jobs=-1),
    BaggingClassifier(n_estimators=3, random_state=0, n_jobs=2),  # joblib worker processes
], ids=lambda e: type(e).__name__)
def test_models_saved_with_n_jobs_predict_in_the_sandbox(hosts, store, estimator):
    X, y = load_iris(return_X_y=True)
    estimator.fit(X, y)
    path, sha = host_models.write(store, "n_jobs", estimator)
    result = hosts.predict(sha, path, host_models.iris_batch(6), proba=True)
    assert np.array_equal(result["predictions"], estimator.predict(X[:6]))
    assert np.array_equal(result["probabilities"], estimator.predict_proba(X[:6]))


def test_the_same_model_used_by_two_client_processes_is_loaded_once(hosts, store, model_hosts):
    path, sha = host_models.write(store, "shared", host_models.iris_logreg(7))
    loads_before = sum(h["loads"] for h in hosts.status()["hosts"])
    script = ("import sys, json; "
              "from mlplatform.inference.client import HostClient; from tests.inference import host_models; "
              "c = HostClient(sys.argv[1], load_timeout=60, call_timeout=30); "
              "r = c.predict(sys.argv[2], sys.argv[3], host_models.iris_batch()); "
              "print(json.dumps({'host': r['host'], 'predictions': r['predictions'].tolist()}))")
    procs = [subprocess.Popen([sys.executable, "-c", script, str(model_hosts.socket), sha, str(path)],
                              stdout=subprocess.PIPE, text=True, cwd=ROOT) for _ in range(2)]
    outs = [json.loads(p.communicate(timeout=120)[0]) for p in procs]
    assert all(p.returncode == 0 for p in procs)
    assert outs[0] == outs[1]
    status = hosts.status()["hosts"]
    assert [h["id"] for h in status if sha in h["loaded"]] == [outs[0]["host"]]
    assert sum(h["loads"] for h in status) == loads_before + 1


def test_a_host_killed_mid_call_fails_only_that_call(hosts, store):
    path, sha = host_models.write(store, "slow", host_models.slow_knn())
    slot = hosts.predict(sha, path, host_models.slow_batch(2))["host"]  # loaded; now a slow call
    outcome = {}

    def slow_call():
        try:
            outcome["result"] = hosts.predict(sha, path, host_models.slow_batch(5000))
        except Exception as exc:  # noqa: BLE001 - recorded for the assertion below
            outcome["error"] = exc

    caller = threading.Thread(target=slow_call)
    caller.start()
    busy = wait_until(lambda: (e := host_entry(hosts, slot))["busy"] == "predict" and e, "the slow call runs")
    os.kill(busy["pid"], signal.SIGKILL)
    caller.join(120)
    error = outcome.get("error")
    assert isinstance(error, ModelUnavailable), outcome
    assert "SIGKILL" in error.message and error.details["reason"] == "host_crashed"
    again = hosts.predict(sha, path, host_models.slow_batch(2))  # reloaded on the replacement
    assert again["predictions"].shape == (2,)
    replaced = host_entry(hosts, again["host"]) if again["host"] == slot else host_entry(hosts, slot)
    assert replaced["pid"] != busy["pid"] and replaced["state"] == "ready"
    assert host_entry(hosts, slot)["restarts"] >= 1


def test_model_files_are_only_opened_inside_the_store(hosts, store, tmp_path):
    outside, sha = host_models.write(tmp_path, "outside", host_models.iris_logreg(13))  # loaded by no other test
    for path in (outside, store / ".." / ".." / ".." / outside.relative_to("/")):
        with pytest.raises(InvalidInput, match="inside the model store"):
            hosts.predict(sha, path, host_models.iris_batch())
    link = store / "link"
    link.symlink_to(outside)
    with pytest.raises(ModelUnavailable, match="cannot be opened"):
        hosts.inspect(link)
    inside, _ = host_models.write(store, "inside", host_models.iris_logreg(3))
    with pytest.raises(InvalidInput, match="does not match"):
        hosts.predict(sha, inside, host_models.iris_batch())


def test_unknown_ops_and_garbage_get_an_error_not_a_crash(hosts, model_hosts):
    with socket.socket(socket.AF_UNIX) as sock:
        sock.connect(str(model_hosts.socket))
        sock.sendall(b"\x00\x00\x00\x05hello")
        reply = sock.recv(65536)
    assert b"bad_request" in reply
    with pytest.raises(InvalidInput, match="unknown op"):
        hosts._call({"op": "exec"}, 10)
    assert hosts.status()["hosts"]


def test_sigterm_stops_every_host_and_removes_the_socket():
    manager = start_private_manager("stop", {"MLPLATFORM_HOST_PROCESSES": "1"})
    try:
        status = manager.client().status()
        pids = [h["pid"] for h in status["hosts"]]
        spare = wait_until(lambda: manager.client().status()["spare"] == "ready", "the spare is up")
        assert spare
    finally:
        manager.stop()
    assert manager.proc.returncode == 0, manager.log_text()
    assert not manager.socket.exists()
    for pid in pids:
        assert not os.path.exists(f"/proc/{pid}") or _zombie(pid)
    assert "Traceback" not in manager.log_text()


def _zombie(pid: int) -> bool:
    with open(f"/proc/{pid}/stat") as fh:
        return fh.read().split(") ")[1].startswith("Z")


def test_a_stale_socket_is_replaced_and_a_live_one_is_left_alone():
    var_dir = manager_var_dir("stale")
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(var_dir / "hosts.sock"))  # bound, never listening: what a killed manager leaves
    stale.close()
    manager = start_manager(var_dir, {"MLPLATFORM_HOST_PROCESSES": "1"})
    manager.owns_var_dir = True
    try:
        assert manager.client().status()["hosts"]
        second = subprocess.run([sys.executable, "-m", "mlplatform.inference.manager"],
                                env={**os.environ, "MLPLATFORM_VAR_DIR": str(var_dir)},
                                capture_output=True, text=True, timeout=120)
        assert second.returncode != 0 and "another model host manager" in second.stderr
        assert manager.client().status()["hosts"]  # still serving on its socket
    finally:
        manager.stop()
