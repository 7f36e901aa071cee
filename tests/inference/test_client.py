"""HostClient: domain errors for every failure, a cached client per settings, and the readiness
check built on its status call."""

from __future__ import annotations

import socket
import threading
from pathlib import Path

import numpy as np
import pytest

from mlplatform.config import Settings
from mlplatform.errors import InvalidInput, ModelRejected, ModelUnavailable
from mlplatform.inference import client as client_module
from mlplatform.inference import protocol
from mlplatform.inference.batch import Batch
from mlplatform.inference.client import HostClient, get_host_client


def test_an_absent_service_is_model_unavailable(tmp_path):
    hosts = HostClient(tmp_path / "none.sock", load_timeout=1, call_timeout=1)
    with pytest.raises(ModelUnavailable, match="not reachable") as unavailable:
        hosts.status()
    assert unavailable.value.retry_after >= 1
    with pytest.raises(ModelUnavailable):
        hosts.predict("0" * 64, tmp_path / "m", Batch.from_input(np.zeros((1, 2))))


class FakeManager:
    """A unix socket that answers every request with one canned frame, recording requests."""

    def __init__(self, path: Path, reply: list):
        self.path, self.reply, self.requests = path, reply, []
        self.server = socket.socket(socket.AF_UNIX)
        self.server.bind(str(path))
        self.server.listen()
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self):
        while True:
            try:
                conn, _ = self.server.accept()
            except OSError:
                return
            with conn:
                self.requests.append(protocol.recv(conn))
                protocol.send(conn, self.reply)

    def close(self):
        self.server.close()


@pytest.fixture
def fake(tmp_path):
    managers = []

    def make(reply: list) -> HostClient:
        managers.append(FakeManager(tmp_path / f"m{len(managers)}.sock", reply))
        hosts = HostClient(managers[-1].path, load_timeout=5, call_timeout=5)
        hosts.fake = managers[-1]
        return hosts

    yield make
    for m in managers:
        m.close()


def error(code: str, message: str = "why", **details) -> list:
    return protocol.pack({"ok": False, "error": {"code": code, "message": message, "details": details}})


@pytest.mark.parametrize("code", client_module.REJECTED_CODES)
def test_refusals_are_model_rejected_with_their_code(fake, code):
    hosts = fake(error(code, "global 'posix.system' is not on the allowlist", offending="posix.system"))
    with pytest.raises(ModelRejected) as refused:
        hosts.inspect(Path("/store/ab/cd"))
    assert refused.value.code == code and "posix.system" in refused.value.message
    assert refused.value.details == {"offending": "posix.system"}


@pytest.mark.parametrize("code", ["predict_failed", "bad_request"])
def test_bad_input_is_invalid_input(fake, code):
    with pytest.raises(InvalidInput) as bad:
        fake(error(code)).predict("a" * 64, Path("/m"), Batch.from_input(np.zeros((1, 2))))
    assert bad.value.code == code


@pytest.mark.parametrize("code", ["host_crashed", "unavailable", "not_found", "something_new"])
def test_everything_else_is_model_unavailable(fake, code):
    with pytest.raises(ModelUnavailable) as unavailable:
        fake(error(code, "the model host crashed during predict (killed by SIGSEGV)")).status()
    assert unavailable.value.details["reason"] == code


def test_a_garbled_answer_is_model_unavailable(fake):
    with pytest.raises(ModelUnavailable, match="answered badly"):
        fake([b"\x00\x00\x00\x03abc"]).status()


def test_predict_sends_the_batch_and_returns_arrays_and_timing(fake):
    reply = protocol.result_parts({"ok": True, "host": "pool-1", "model_seconds": 0.002},
                                  {"predictions": np.array(["yes", "no"])})
    hosts = fake(reply)
    batch = Batch(["age", "city"], [np.array([1.0, 2.0]), np.array(["Oslo", None], dtype=object)])
    result = hosts.predict("b" * 64, Path("/store/bb/b"), batch, proba=True)
    assert result["predictions"].tolist() == ["yes", "no"]
    assert (result["host"], result["model_seconds"]) == ("pool-1", 0.002)
    (request,) = hosts.fake.requests
    assert {k: request.header[k] for k in ("op", "sha256", "path", "proba", "columns")} == {
        "op": "predict", "sha256": "b" * 64, "path": "/store/bb/b", "proba": True, "columns": ["age", "city"]}
    sent = protocol.batch_from(request)
    assert sent.values[0].tolist() == [1.0, 2.0] and sent.values[1].tolist() == ["Oslo", None]


def test_the_inspect_reply_is_the_signature_plus_load_measures(fake):
    signature = {"estimator": "sklearn.tree._classes.DecisionTreeClassifier", "n_features": 4}
    hosts = fake(protocol.pack({"ok": True, "signature": signature, "load_seconds": 0.01, "memory_bytes": 4096,
                                "probe_seconds": 0.001, "host": "gate-3"}))
    assert hosts.inspect(Path("/store/x")) == {**signature, "load_seconds": 0.01, "memory_bytes": 4096}


def test_one_client_per_process_and_socket(tmp_path):
    first = Settings(var_dir=tmp_path / "a")
    assert get_host_client(first) is get_host_client(Settings(var_dir=tmp_path / "a"))
    other = get_host_client(Settings(var_dir=tmp_path / "b"))
    assert other is not get_host_client(first) and other.socket_path == tmp_path / "b" / "hosts.sock"
    assert (other.load_timeout, other.call_timeout) == (first.host_load_timeout_seconds,
                                                        first.host_call_timeout_seconds)


def test_readiness_reports_the_model_hosts(model_hosts):
    from mlplatform.services import health

    check = health._model_hosts()
    assert check.ok and check.name == "model_hosts" and "ready" in check.detail


def test_readiness_fails_without_the_host_service(monkeypatch, tmp_path):
    from mlplatform.services import health

    monkeypatch.setattr(health, "get_host_client",
                        lambda _s: HostClient(tmp_path / "gone.sock", load_timeout=1, call_timeout=1))
    check = health._model_hosts()
    assert not check.ok and "not reachable" in check.detail
