"""PredictionEdge: the predict route answered in front of the framework stacks, exactly as the
documented FastAPI route answers it, with the edge middleware's headers, metrics and body limit;
everything else passed on; unexpected errors answered 500 in the standard format."""

from __future__ import annotations

import asyncio
import io

import joblib

import pytest
from fastapi.testclient import TestClient
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse

from mlplatform.api import metrics
from mlplatform.api.app import create_api
from mlplatform.api.prediction_edge import PredictionEdge
from mlplatform.api.routes import predict as predict_route
from mlplatform.services import predictions

from tests.api.test_predict_routes import predict, upload
from tests.prediction_support import iris_rows
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)

pytestmark = pytest.mark.usefixtures("clean_store", "gate")
VARYING = {"X-Request-Id", "Server-Timing", "Content-Length", "Ratelimit-Remaining", "Ratelimit-Reset"}


class Recorder:
    """A wrapped app that says who reached it."""

    def __init__(self):
        self.paths: list[str] = []

    async def __call__(self, scope, receive, send):
        if scope["type"] == "lifespan":
            while (message := await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            return await send({"type": "lifespan.shutdown.complete"})
        self.paths.append(scope["path"])
        await PlainTextResponse("the wrapped app", status_code=418)(scope, receive, send)


@pytest.fixture
def recorder_client(settings, model_hosts):
    recorder = Recorder()
    with TestClient(PredictionEdge(recorder, settings)) as c:
        yield c, recorder


def test_the_edge_answers_the_predict_route_and_passes_everything_else_on(recorder_client, member, create_key):
    client, recorder = recorder_client
    r = client.post("/api/v1/models/iris/predict", json={"instances": iris_rows(1)},
                    headers={"X-API-Key": "mlp_not_a_key"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "invalid_api_key"
    assert recorder.paths == []
    for method, path in (("GET", "/api/v1/models/iris/predict"), ("POST", "/api/v1/models/iris/predictions"),
                         ("POST", "/api/v1/models/a/b/predict"), ("POST", "/v2/models/iris/infer"),
                         ("GET", "/")):
        assert client.request(method, path).status_code == 418
    assert recorder.paths == ["/api/v1/models/iris/predict", "/api/v1/models/iris/predictions",
                              "/api/v1/models/a/b/predict", "/v2/models/iris/infer", "/"]


def test_the_edge_and_the_documented_route_give_the_same_answer(client, settings, member):
    upload(client, member.headers)
    rows = iris_rows(3)
    with TestClient(create_api(settings)) as plain:  # the FastAPI route, no edge in front
        answers = [predict(c, member.headers, body={"instances": rows}, params={"proba": "true"})
                   for c in (client, plain)]
    edge, route = answers
    assert edge.status_code == route.status_code == 200
    assert edge.json()["predictions"] == joblib.load(io.BytesIO(model_bytes("logreg"))).predict(rows).tolist()
    assert {**edge.json(), "cached": None} == {**route.json(), "cached": None}
    assert not edge.json()["cached"] and route.json()["cached"]  # the second call hit the cache
    same = {k: v for k, v in edge.headers.items() if k.title() not in VARYING | {"X-Cache"}}
    assert same == {k: v for k, v in route.headers.items() if k.title() not in VARYING | {"X-Cache"}}
    assert "nosniff" in edge.headers["X-Content-Type-Options"]


def test_edge_answers_carry_the_request_id_and_are_counted_under_the_route_template(client, member, monkeypatch):
    seen = []
    monkeypatch.setattr(metrics, "observe", lambda method, route, status, seconds: seen.append((method, route, status)))
    r = predict(client, member.headers, name="no-such-model", extra_headers={"X-Request-ID": "edge-42"})
    assert r.status_code == 404 and r.headers["X-Request-ID"] == "edge-42"
    assert seen == [("POST", predict_route.ROUTE, 404)]


def test_bodies_over_the_prediction_limit_are_413_before_anything_runs(client, settings, member, expect_error):
    limit = predictions.body_limit(settings)
    r = client.post("/api/v1/models/iris/predict", content=b"x" * (limit + 1), headers=member.headers)
    expect_error(r, 413, "payload_too_large")
    assert r.json()["error"]["details"] == {"limit_bytes": limit}


def test_an_unexpected_error_is_a_logged_500_in_the_standard_format(settings, monkeypatch, caplog):
    async def broken(*_args):
        raise RuntimeError("boom")

    monkeypatch.setattr(predict_route, "respond", broken)
    with TestClient(PredictionEdge(Recorder(), settings), raise_server_exceptions=False) as c:
        r = c.post("/api/v1/models/iris/predict", json={})
    assert r.status_code == 500
    assert r.json() == {"error": {"code": "internal_error", "message": "Internal server error", "details": None}}
    assert "boom" not in r.text and "unhandled error on POST /api/v1/models/iris/predict" in caplog.text


def test_the_edge_matches_under_a_mount_as_reflex_mounts_it(settings, member, model_hosts):
    outer = Starlette()
    outer.mount("", PredictionEdge(Recorder(), settings))
    with TestClient(outer) as c:
        r = predict(c, member.headers, name="no-such-model")
    assert r.status_code == 404 and r.json()["error"]["code"] == "model_not_found"


def test_a_client_gone_mid_body_gets_no_answer_and_no_prediction(settings, monkeypatch):
    called = []
    monkeypatch.setattr(predict_route, "respond", lambda *args: called.append(args))
    sent = []
    messages = iter([{"type": "http.request", "body": b"{", "more_body": True}, {"type": "http.disconnect"}])
    scope = {"type": "http", "method": "POST", "path": "/api/v1/models/iris/predict", "query_string": b"",
             "headers": [], "client": ("127.0.0.1", 1)}

    async def receive():
        return next(messages)

    async def send(message):
        sent.append(message)

    asyncio.run(PredictionEdge(Recorder(), settings)(scope, receive, send))
    assert called == []
    assert [m["type"] for m in sent] == []
