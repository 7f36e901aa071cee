"""An unmodified OIP v2 client against a real server: NVIDIA's tritonclient (HTTP) talks to the API
served by granian on a local port, with an API key header: health, server and model metadata,
model readiness, infer with its default binary tensors and with JSON tensors, requested outputs,
versions, a DataFrame and a text model, and errors it can read."""

from __future__ import annotations

import io
import os
import signal
import subprocess
import sys

import joblib
import numpy as np
import pytest

from tests.prediction_support import MIXED_FRAME, iris_rows, model, model_file
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)
from tests.support import ROOT, free_port

httpclient = pytest.importorskip("tritonclient.http")
from tritonclient.utils import InferenceServerException  # noqa: E402

pytestmark = pytest.mark.usefixtures("clean_store", "gate")


def asgi_app():
    """The API as granian serves it for these tests (same database, Redis and model hosts)."""
    from mlplatform.api.app import create_api
    from mlplatform.config import get_settings

    return create_api(get_settings())


@pytest.fixture(scope="module")
def server_url(model_hosts):
    from mlplatform.runner import poll_http

    port = free_port()
    server = subprocess.Popen(
        [sys.executable, "-m", "granian", "--interface", "asgi", "--host", "127.0.0.1", "--port", str(port),
         "--workers", "1", "--factory", "tests.api.test_oip_tritonclient:asgi_app"],
        cwd=ROOT, env=dict(os.environ), stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        assert poll_http(f"http://127.0.0.1:{port}/v2/health/live", lambda: server.poll() is None, 120), \
            server.stdout.read1().decode()
        yield f"127.0.0.1:{port}"
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(60)


def upload(client, headers, name: str, data: bytes) -> None:
    r = client.post(f"/api/v1/models/{name}/versions", headers=headers, files={"file": ("model.joblib", data)})
    assert r.status_code == 201, r.text


def api_key(key: str) -> dict[str, str]:
    """A fresh headers dict per call: tritonclient adds Inference-Header-Content-Length to the dict
    it is given for binary requests, so a reused dict would carry it into the next request."""
    return {"X-API-Key": key}


def tensor(name: str, array: np.ndarray, datatype: str, binary: bool = True):
    given = httpclient.InferInput(name, list(array.shape), datatype)
    given.set_data_from_numpy(array, binary_data=binary)
    return given


def test_tritonclient_reads_metadata_and_infers_with_an_api_key(client, member, create_key, server_url):
    upload(client, member.headers, "iris", model_bytes("logreg"))
    key = create_key(member, scopes=("predict",))["key"]
    triton = httpclient.InferenceServerClient(url=server_url)
    assert triton.is_server_live() and triton.is_server_ready()
    assert triton.get_server_metadata()["name"] == "mlplatform"
    assert triton.is_model_ready("iris", headers=api_key(key))
    assert not triton.is_model_ready("nope", headers=api_key(key))
    spec = triton.get_model_metadata("iris", headers=api_key(key))["inputs"][0]
    rows = np.array(iris_rows(4))
    expected = joblib.load(io.BytesIO(model_bytes("logreg")))
    result = triton.infer("iris", [tensor(spec["name"], rows, spec["datatype"])], headers=api_key(key),
                          request_id="r-1")
    assert result.as_numpy("predict").tolist() == expected.predict(rows).tolist()
    assert result.get_response()["id"] == "r-1" and result.get_response()["model_version"] == "1"
    wanted = [httpclient.InferRequestedOutput("predict"), httpclient.InferRequestedOutput("predict_proba")]
    result = triton.infer("iris", [tensor("input-0", rows.astype(np.float32), "FP32", binary=False)],
                          model_version="1", outputs=wanted, headers=api_key(key))
    assert np.allclose(result.as_numpy("predict_proba"), expected.predict_proba(rows), atol=1e-6)


def test_tritonclient_with_dataframe_and_text_models(client, member, create_key, server_url):
    upload(client, member.headers, "mixed", model_file("mixed"))
    upload(client, member.headers, "reviews", model_file("text"))
    key = create_key(member)["key"]
    triton = httpclient.InferenceServerClient(url=server_url)
    frame = MIXED_FRAME.head(4)
    inputs = [tensor("size", frame["size"].to_numpy(np.float64), "FP64"),
              tensor("color", frame["color"].to_numpy(object), "BYTES"),
              tensor("n", frame["n"].to_numpy(np.int64), "INT64"),
              tensor("flag", frame["flag"].to_numpy(bool), "BOOL")]
    assert triton.infer("mixed", inputs, headers=api_key(key)).as_numpy("predict").tolist() == \
        model("mixed").predict(frame).tolist()
    texts = np.array(["a great movie", "awful film"], dtype=object)
    labels = triton.infer("reviews", [tensor("text", texts, "BYTES")], headers=api_key(key)).as_numpy("predict")
    assert labels.tolist() == model("text").predict(list(texts)).tolist()


def test_tritonclient_errors_carry_the_message_and_status(client, member, create_key, server_url):
    upload(client, member.headers, "iris", model_bytes("logreg"))
    key = create_key(member)["key"]
    triton = httpclient.InferenceServerClient(url=server_url)
    bad = np.array([[1.0, 2.0, np.inf, 4.0]])
    with pytest.raises(InferenceServerException) as caught:
        triton.infer("iris", [tensor("input-0", bad, "FP64")], headers=api_key(key))
    assert caught.value.status() == "422" and "Column 'f2', row 0" in str(caught.value)
    with pytest.raises(InferenceServerException) as caught:
        triton.get_model_metadata("iris")
    assert caught.value.status() == "401" and "Authentication required" in str(caught.value)
