"""Open Inference Protocol v2 under /v2 on real model hosts: health and server metadata, model
metadata and readiness, infer round trips with an API key for an array, a DataFrame and a text
model, probabilities on request, versions by number and alias, the REST headers, 422s naming the
column and row, credentials and scopes, OIP's error body, unknown paths, and the OpenAPI entries."""

from __future__ import annotations

import io
import json
import re

import joblib
import numpy as np
import pytest

from tests.prediction_support import MIXED_FRAME, iris_rows, model, model_file
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clean_store", "gate")
TIMING = re.compile(r"^auth;dur=[\d.]+, (resolve;dur=[\d.]+, )?(validate;dur=[\d.]+, )?cache;dur=[\d.]+, "
                    r"model;dur=[\d.]+, total;dur=[\d.]+$")


def upload(client, headers, name="iris", data=None) -> int:
    r = client.post(f"/api/v1/models/{name}/versions", headers=headers,
                    files={"file": ("model.joblib", model_bytes("logreg") if data is None else data)})
    assert r.status_code == 201, r.text
    return r.json()["version"]


def matrix(rows, name="input-0", datatype="FP64") -> dict:
    return {"name": name, "datatype": datatype, "shape": [len(rows), len(rows[0])], "data": [v for r in rows for v in r]}


def infer(client, headers, body, name="iris", version=None, **kw):
    path = f"/v2/models/{name}" + (f"/versions/{version}" if version is not None else "") + "/infer"
    return client.post(path, json=body, headers=headers, **kw)


def oip_error(r, status: int, code: str) -> dict:
    """OIP's error body: `error` is the message; the platform's code and details sit beside it."""
    assert r.status_code == status, r.text
    body = r.json()
    assert set(body) == {"error", "code", "details"} and isinstance(body["error"], str) and body["error"]
    assert body["code"] == code, body
    if status == 401:
        assert r.headers["www-authenticate"] == "Bearer"
    return body


def outputs(r) -> dict[str, dict]:
    assert r.status_code == 200, r.text
    return {o["name"]: o for o in r.json()["outputs"]}


def test_health_and_server_metadata_need_no_credentials(client):
    assert client.get("/v2/health/live").json() == {"live": True}
    r = client.get("/v2/health/ready")
    assert r.status_code == 200 and r.json() == {"ready": True}  # no batch worker runs here: not needed
    assert client.get("/v2").json() == {"name": "mlplatform", "version": "1", "extensions": []}


def test_metadata_and_infer_round_trip_with_an_api_key(client, member, create_key):
    upload(client, member.headers)
    key = {"X-API-Key": create_key(member, scopes=("predict",))["key"]}
    metadata = client.get("/v2/models/iris", headers=key).json()
    assert metadata == {"name": "iris", "versions": ["1"], "platform": "sklearn",
                        "inputs": [{"name": "input-0", "datatype": "FP64", "shape": [-1, 4]}],
                        "outputs": [{"name": "predict", "datatype": "INT64", "shape": [-1]},
                                    {"name": "predict_proba", "datatype": "FP64", "shape": [-1, 3]}]}
    rows = iris_rows(3)
    r = infer(client, key, {"id": "req-1", "inputs": [matrix(rows)]})
    assert r.json() == {"model_name": "iris", "model_version": "1", "id": "req-1", "outputs": [
        {"name": "predict", "datatype": "INT64", "shape": [3],
         "data": joblib_model().predict(np.array(rows)).tolist()}]}
    assert r.headers["X-Model-Version"] == "1" and r.headers["X-Cache"] == "miss"
    assert TIMING.match(r.headers["Server-Timing"]) and int(r.headers["RateLimit-Remaining"]) >= 0
    again = infer(client, key, {"inputs": [matrix(rows)]})
    assert again.headers["X-Cache"] == "hit" and again.json()["id"] == again.headers["X-Request-ID"]
    both = outputs(infer(client, key, {"inputs": [matrix(rows)],
                                       "outputs": [{"name": "predict_proba"}, {"name": "predict"}]}))
    assert both["predict_proba"]["shape"] == [3, 3] and both["predict"]["data"] == r.json()["outputs"][0]["data"]
    assert np.allclose(np.reshape(both["predict_proba"]["data"], (3, 3)), joblib_model().predict_proba(np.array(rows)))
    per_column = {"inputs": [{"name": f"f{i}", "datatype": "FP32", "shape": [3, 1], "data": [[r[i]] for r in rows]}
                             for i in range(4)]}
    assert outputs(infer(client, key, per_column))["predict"]["data"] == r.json()["outputs"][0]["data"]


def joblib_model():
    return joblib.load(io.BytesIO(model_bytes("logreg")))


def test_a_dataframe_model_with_a_categorical_column_and_a_text_model(client, member):
    h = member.headers
    upload(client, h, "mixed", model_file("mixed"))
    frame = MIXED_FRAME.head(5)
    metadata = client.get("/v2/models/mixed", headers=h).json()
    types = {"size": "FP64", "color": "BYTES", "n": "INT64", "flag": "BOOL"}
    assert [(t["name"], t["datatype"]) for t in metadata["inputs"]] == list(types.items())
    body = {"inputs": [{"name": c, "datatype": t, "shape": [5], "data": frame[c].tolist()} for c, t in types.items()],
            "outputs": [{"name": "predict"}, {"name": "predict_proba"}]}
    answer = outputs(infer(client, h, body, "mixed"))
    assert answer["predict"]["data"] == model("mixed").predict(frame).tolist()
    assert np.allclose(np.reshape(answer["predict_proba"]["data"], (5, 2)), model("mixed").predict_proba(frame))
    upload(client, h, "reviews", model_file("text"))
    texts = ["a great movie", "awful film"]
    body = {"inputs": [{"name": "text", "datatype": "BYTES", "shape": [2], "data": texts}]}
    answer = outputs(infer(client, h, body, "reviews"))["predict"]
    assert answer == {"name": "predict", "datatype": "BYTES", "shape": [2],
                      "data": model("text").predict(texts).tolist()}


def test_versions_by_number_and_alias_and_readiness(client, member, expect_error):
    h = member.headers
    for seed in (0, 1, 2):
        upload(client, h, data=model_bytes("logreg", seed))
    body = {"inputs": [matrix(iris_rows(1))]}
    assert infer(client, h, body).json()["model_version"] == "3"
    r = infer(client, h, body, version=1)
    assert r.json()["model_version"] == "1" and r.headers["X-Model-Version"] == "1"
    assert client.put("/api/v1/models/iris/aliases/canary", json={"version": 2}, headers=h).status_code == 200
    assert infer(client, h, body, version="canary").json()["model_version"] == "2"
    assert client.get("/v2/models/iris/versions/canary", headers=h).json()["versions"] == ["1", "2", "3"]
    assert client.get("/v2/models/iris/versions/2/ready", headers=h).json() == {"name": "iris", "ready": True}
    assert client.get("/v2/models/iris/ready", headers=h).status_code == 200
    client.patch("/api/v1/models/iris/versions/3", json={"status": "archived"}, headers=h)
    assert client.get("/v2/models/iris", headers=h).json()["versions"] == ["1", "2"]
    oip_error(infer(client, h, body, version=3), 409, "version_archived")
    oip_error(client.get("/v2/models/iris/versions/3/ready", headers=h), 409, "version_archived")
    oip_error(client.get("/v2/models/iris/versions/9", headers=h), 404, "version_not_found")
    oip_error(client.get("/v2/models/nope/ready", headers=h), 404, "model_not_found")
    oip_error(infer(client, h, body, version="Bad-Alias" * 10), 422, "invalid_alias")


def test_invalid_input_is_422_naming_column_and_row_with_the_headers(client, member):
    h = member.headers
    upload(client, h)
    cases = [  # (body, code, details)
        ({"inputs": [matrix([[1, 2, 3, 4], [1, 2, "x", 4]])]}, "invalid_type", {"column": "f2", "row": 1}),
        ({"inputs": [matrix([[1, 2, 3, 4], [1, 2, None, 4]])]}, "missing_value", {"column": "f2", "row": 1}),
        ({"inputs": [matrix([[1, 2, 3]])]}, "invalid_shape", {"column": "input-0", "row": None}),
        ({"inputs": [{"name": "f0", "datatype": "FP64", "shape": [1], "data": [1]}]}, "missing_column",
         {"column": "f1", "row": None}),
        ({"inputs": [matrix([[1, 2, 3, 4]])], "outputs": [{"name": "scores"}]}, "invalid_output",
         {"output": "scores"}),
    ]
    for body, code, details in cases:
        r = infer(client, h, body)
        assert oip_error(r, 422, code)["details"] == details
        assert TIMING.match(r.headers["Server-Timing"]) and r.headers["X-Cache"] == "miss"
    assert infer(client, h, {"inputs": [matrix([[1, 2, 3, 4], [1, 2, "x", 4]])]}).headers["X-Model-Version"] == "1"
    oip_error(client.post("/v2/models/iris/infer", content=b'{"inputs": [', headers=h), 400, "malformed_json")
    upload(client, h, "ridge", model_file("ridge"))
    r = infer(client, h, {"inputs": [matrix(iris_rows(1))], "outputs": [{"name": "predict_proba"}]}, "ridge")
    assert oip_error(r, 422, "invalid_output")["details"] == {"output": "predict_proba"}
    assert outputs(infer(client, h, {"inputs": [matrix(iris_rows(1))]}, "ridge"))["predict"]["datatype"] == "FP64"


def test_credentials_scopes_and_ownership(client, member, account, create_key):
    upload(client, member.headers)
    body = {"inputs": [matrix(iris_rows(1))]}
    r = infer(client, {}, body)
    oip_error(r, 401, "not_authenticated")
    assert "X-Model-Version" not in r.headers and TIMING.match(r.headers["Server-Timing"])
    oip_error(client.get("/v2/models/iris", headers={"X-API-Key": "mlp_nope_nope"}), 401, "invalid_api_key")
    reader = {"X-API-Key": create_key(member, scopes=("models:read",))["key"]}
    assert client.get("/v2/models/iris", headers=reader).status_code == 200
    assert client.get("/v2/models/iris/ready", headers=reader).status_code == 200
    oip_error(infer(client, reader, body), 403, "insufficient_scope")
    writer = {"X-API-Key": create_key(member, scopes=("models:write",))["key"]}
    oip_error(client.get("/v2/models/iris", headers=writer), 403, "insufficient_scope")
    bearer = {"Authorization": f"Bearer {create_key(member)['key']}"}
    assert infer(client, bearer, body).status_code == 200
    other = account("other@example.com")
    oip_error(infer(client, other.headers, body), 404, "model_not_found")
    oip_error(client.get("/v2/models/iris", headers=other.headers), 404, "model_not_found")


def test_unknown_paths_and_methods_answer_oip_errors(client):
    oip_error(client.get("/v2/nothing/here"), 404, "route_not_found")
    r = client.get("/v2/models/iris/infer")
    assert r.status_code == 405 and r.headers["Allow"] == "POST" and isinstance(r.json()["error"], str)


def test_infer_bodies_may_be_as_big_as_predict_bodies(client, member, settings):
    upload(client, member.headers)
    rows = (np.random.default_rng(0).random((settings.predict_max_rows, 4)) * 10).tolist()
    body = {"inputs": [{"name": "input-0", "datatype": "FP64", "shape": [len(rows), 4], "data": rows}]}
    content = json.dumps(body, indent=1).encode()
    assert len(content) > settings.max_body_bytes
    r = client.post("/v2/models/iris/infer", content=content, headers=member.headers)
    assert outputs(r)["predict"]["shape"] == [settings.predict_max_rows]


def test_the_v2_routes_are_documented(client):
    paths = client.get("/api/v1/openapi.json").json()["paths"]
    infer_op = paths["/v2/models/{name}/infer"]["post"]
    assert infer_op["summary"] and "predict_proba" in infer_op["description"]
    assert set(infer_op["requestBody"]["content"]["application/json"]["examples"]) == {"matrix", "columns", "text"}
    assert {"401", "403", "404", "409", "413", "422", "429", "503"} <= set(infer_op["responses"])
    schema = infer_op["responses"]["422"]["content"]["application/json"]["schema"]
    assert schema["$ref"].endswith("/OipError")
    for path in ("/v2/health/live", "/v2/health/ready", "/v2", "/v2/models/{name}",
                 "/v2/models/{name}/versions/{version}", "/v2/models/{name}/ready",
                 "/v2/models/{name}/versions/{version}/ready", "/v2/models/{name}/versions/{version}/infer"):
        operation = next(iter(paths[path].values()))
        assert operation["summary"].startswith("OIP") and operation["tags"] == ["open inference protocol"]
