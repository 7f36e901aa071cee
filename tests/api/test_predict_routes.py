"""POST /api/v1/models/{name}/predict on real model hosts: every body format and its errors,
version selection and deprecation, probabilities, scopes and ownership, the headers every answer
carries (errors too), the bigger body limit, rate limiting, and a host killed mid-request."""

from __future__ import annotations

import io
import json
import os
import re
import signal
import threading
from datetime import datetime, timedelta, timezone
from email.utils import parsedate_to_datetime

import joblib
import numpy as np
import pytest
from sqlmodel import select

from mlplatform import db
from mlplatform.models import ModelVersion

from tests.hosts_support import wait_until
from tests.inference import host_models
from tests.prediction_support import MIXED_FRAME, iris_rows, model, model_file
from tests.registry_support import clean_store, gate, model_bytes  # noqa: F401  (fixtures)

MODELS = "/api/v1/models"
pytestmark = pytest.mark.usefixtures("clean_store", "gate")
CSV = {"Content-Type": "text/csv"}
TIMING = re.compile(r"^auth;dur=[\d.]+, (resolve;dur=[\d.]+, )?(validate;dur=[\d.]+, )?cache;dur=[\d.]+, "
                    r"model;dur=[\d.]+, total;dur=[\d.]+$")


def upload(client, headers, name="iris", data=None) -> int:
    data = model_bytes("logreg") if data is None else data
    r = client.post(f"{MODELS}/{name}/versions", headers=headers,
                    files={"file": ("model.joblib", data, "application/octet-stream")})
    assert r.status_code == 201, r.text
    return r.json()["version"]


def predict(client, headers, name="iris", body=None, params=None, extra_headers=None, **kw):
    if body is None and "content" not in kw:
        body = {"instances": iris_rows(2)}
    kw = {"json": body, **kw} if body is not None else kw
    return client.post(f"{MODELS}/{name}/predict", params=params, headers={**headers, **(extra_headers or {})}, **kw)


def assert_headers(r, *, version: int | None, cache: str = "miss", limited: bool = True) -> None:
    assert r.headers["X-Cache"] == cache
    assert TIMING.match(r.headers["Server-Timing"]), r.headers["Server-Timing"]
    assert re.fullmatch(r"[0-9a-f]{32}", r.headers["X-Request-ID"])
    assert r.headers.get("X-Model-Version") == (str(version) if version is not None else None)
    if limited:
        assert int(r.headers["RateLimit-Limit"]) > 0 and int(r.headers["RateLimit-Remaining"]) >= 0
        assert int(r.headers["RateLimit-Reset"]) >= 1


def test_sunset_header_then_410_once_the_sunset_time_passed(client, member, expect_error):
    h = member.headers
    upload(client, h)
    upload(client, h, data=model_bytes("logreg", 1))
    sunset = datetime.now(timezone.utc) + timedelta(days=30)
    r = client.patch(f"{MODELS}/iris/versions/1", json={"status": "deprecated", "sunset_at": sunset.isoformat()},
                     headers=h)
    assert r.status_code == 200 and r.json()["sunset_at"] and r.json()["deprecated_at"]
    r = predict(client, h, params={"version": 1})
    assert r.status_code == 200
    assert parsedate_to_datetime(r.headers["Sunset"]) == sunset.replace(microsecond=0)
    with db.session() as s:  # time passes: move the sunset into the past
        row = s.exec(select(ModelVersion).where(ModelVersion.version == 1)).one()
        row.sunset_at = datetime.now(timezone.utc) - timedelta(seconds=1)
        s.add(row)
    expect_error(predict(client, h, params={"version": 1}), 410, "version_sunset")
    assert predict(client, h).headers["X-Model-Version"] == "2"
    r = client.patch(f"{MODELS}/iris/versions/1", json={"status": "active"}, headers=h)
    assert r.json()["sunset_at"] is None and r.json()["deprecated_at"] is None
    assert predict(client, h, params={"version": 1}).status_code == 200


def test_sunset_needs_a_deprecated_version_and_a_future_time(client, member, expect_error):
    h = member.headers
    upload(client, h)
    future = (datetime.now(timezone.utc) + timedelta(days=1)).isoformat()
    expect_error(client.patch(f"{MODELS}/iris/versions/1", json={"sunset_at": future}, headers=h), 422)
    past = (datetime.now(timezone.utc) - timedelta(days=1)).isoformat()
    expect_error(client.patch(f"{MODELS}/iris/versions/1", json={"status": "deprecated", "sunset_at": past},
                              headers=h), 422)


def test_every_body_format_answers_the_same_predictions(client, member):
    h = member.headers
    upload(client, h)
    rows = iris_rows(3)
    names = ["f0", "f1", "f2", "f3"]
    bodies = [
        {"dataframe_split": {"columns": names, "data": rows}},
        {"dataframe_split": {"data": rows}},
        {"dataframe_records": [dict(zip(names, r)) for r in rows]},
        {"instances": rows},
        {"inputs": {n: [r[i] for r in rows] for i, n in enumerate(names)}},
    ]
    answers = [predict(client, h, body=b) for b in bodies]
    csv = "f3,f2,f1,f0\n" + "\n".join(",".join(str(v) for v in r[::-1]) for r in rows)
    answers.append(predict(client, h, content=csv.encode(), extra_headers=CSV))
    first = answers[0]
    assert first.status_code == 200, first.text
    assert first.json() == {"predictions": first.json()["predictions"], "model": {"name": "iris", "version": 1},
                            "cached": False}
    assert first.json()["predictions"] == joblib.load(io.BytesIO(model_bytes("logreg"))).predict(rows).tolist()
    assert_headers(first, version=1, cache="miss")
    for r in answers[1:]:
        assert r.status_code == 200, r.text
        assert r.json()["predictions"] == first.json()["predictions"] and r.json()["cached"] is True
        assert_headers(r, version=1, cache="hit")


def test_text_and_mixed_models_over_http(client, member):
    h = member.headers
    upload(client, h, "reviews", model_file("text"))
    r = predict(client, h, "reviews", body={"instances": ["a great movie", "awful film"]}, params={"proba": "true"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == model("text").predict(["a great movie", "awful film"]).tolist()
    assert r.json()["classes"] == ["neg", "pos"] and len(r.json()["probabilities"][0]) == 2
    upload(client, h, "mixed", model_file("mixed"))
    csv = MIXED_FRAME.head(4).to_csv(index=False)  # pandas writes True/False and 1.0
    r = predict(client, h, "mixed", content=csv.encode(), extra_headers={"Content-Type": "text/csv; charset=utf-8"})
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] == model("mixed").predict(MIXED_FRAME.head(4)).tolist()


INPUT_ERRORS = [  # (request keywords, status, code, column, row)
    ({"body": {"instances": [[1, 2, 3, 4], [1, 2, "x", 4]]}}, 422, "invalid_type", "f2", 1),
    ({"body": {"instances": [[1, 2, 3, 4], [1, 2, None, 4]]}}, 422, "missing_value", "f2", 1),
    ({"body": {"instances": [[1, 2, 3]]}}, 422, "invalid_row", None, 0),
    ({"body": {"dataframe_records": [{"f0": 1, "f1": 2, "f2": 3}]}}, 422, "missing_column", "f3", 0),
    ({"body": {"dataframe_split": {"columns": ["f0", "f1", "f2", "f3", "x"], "data": [[1, 2, 3, 4, 5]]}}},
     422, "unknown_column", "x", None),
    ({"body": {"instances": []}}, 422, "empty_input", None, None),
    ({"body": {"rows": []}}, 422, "invalid_body", None, None),
    ({"content": b"f0,f1,f2,f3\n1,2,3,4\n1,2,abc,4\n", "extra_headers": CSV}, 422, "invalid_type", "f2", 1),
    ({"content": b"f0,f1,f2\n1,2,3\n", "extra_headers": CSV}, 422, "missing_column", "f3", None),
    ({"content": b"f0,f1,f2,f3\n1,2,3,4\n1,2,3\n", "extra_headers": CSV}, 422, "invalid_row", None, 1),
    ({"content": b'f0,f1,f2,f3\n1,2,3,"4\n', "extra_headers": CSV}, 400, "malformed_csv", None, None),
    ({"content": b'{"instances": [[1, 2', "extra_headers": {"Content-Type": "application/json"}},
     400, "malformed_json", None, None),
    ({"content": b"1,2,3,4", "extra_headers": {"Content-Type": "text/plain"}}, 415, "unsupported_media_type",
     None, None),
    ({"content": b"1,2,3,4"}, 415, "unsupported_media_type", None, None),
]


def test_input_errors_name_column_and_row_and_carry_the_headers(client, member, expect_error):
    upload(client, member.headers)  # once: uploads take a fresh host each
    for kw, status, code, column, row in INPUT_ERRORS:
        r = predict(client, member.headers, **kw)
        error = expect_error(r, status, code)
        if status == 422:
            assert error["details"] == {"column": column, "row": row}, (kw, error)
            if column:
                assert repr(column) in error["message"]
        resolved = status != 415  # content types are checked before the version is resolved
        assert_headers(r, version=1 if resolved else None, limited=resolved)


def test_versions_by_query_deprecation_and_archived(client, member, expect_error):
    h = member.headers
    for seed in (0, 1, 2):
        upload(client, h, data=model_bytes("logreg", seed))
    assert predict(client, h).headers["X-Model-Version"] == "3"
    r = predict(client, h, params={"version": 1})
    assert r.json()["model"] == {"name": "iris", "version": 1} and r.headers["X-Model-Version"] == "1"
    client.put(f"{MODELS}/iris/aliases/production", json={"version": 2}, headers=h)
    assert predict(client, h).json()["model"]["version"] == 2
    client.put(f"{MODELS}/iris/aliases/canary", json={"version": 1}, headers=h)
    assert predict(client, h, params={"version": "canary"}).json()["model"]["version"] == 1
    assert "Deprecation" not in predict(client, h).headers
    client.patch(f"{MODELS}/iris/versions/2", json={"status": "deprecated"}, headers=h)
    r = predict(client, h)
    assert r.status_code == 200 and re.fullmatch(r"@\d{10}", r.headers["Deprecation"])
    assert "Sunset" not in r.headers
    client.patch(f"{MODELS}/iris/versions/3", json={"status": "archived"}, headers=h)
    r = predict(client, h, params={"version": 3})
    expect_error(r, 409, "version_archived")
    expect_error(predict(client, h, params={"version": 9}), 404, "version_not_found")
    expect_error(predict(client, h, params={"version": "Bad Alias"}), 422, "invalid_alias")


def test_probabilities_when_asked_and_supported(client, member):
    h = member.headers
    upload(client, h)
    rows = iris_rows(2)
    r = predict(client, h, body={"instances": rows}, params={"proba": "true"})
    body = r.json()
    assert body["classes"] == [0, 1, 2] and np.array(body["probabilities"]).shape == (2, 3)
    assert np.allclose(np.sum(body["probabilities"], axis=1), 1.0)
    upload(client, h, "ridge", model_file("ridge"))
    r = predict(client, h, "ridge", body={"instances": rows}, params={"proba": "true"})
    assert r.status_code == 200 and set(r.json()) == {"predictions", "model", "cached"}


@pytest.mark.parametrize("params, field", [({"proba": "maybe"}, "proba"), ({"version": "v" * 65}, "version"),
                                           ({"version": ""}, "version"), ({"owner": "o" * 321}, "owner")])
def test_bad_query_options_are_422_naming_the_option(client, member, expect_error, params, field):
    upload(client, member.headers)
    error = expect_error(predict(client, member.headers, params=params), 422, "invalid_input")
    assert error["details"] == {"field": field}
    for yes in ("1", "TRUE", "on", "yes"):
        assert "probabilities" in predict(client, member.headers, params={"proba": yes}).json()
    assert "probabilities" not in predict(client, member.headers, params={"proba": "off"}).json()


def test_scopes_credentials_and_ownership(client, member, account, create_key, expect_error):
    upload(client, member.headers)
    reader = create_key(member, scopes=("models:read",))["key"]
    r = predict(client, {"Authorization": f"Bearer {reader}"})
    expect_error(r, 403, "insufficient_scope")
    assert_headers(r, version=None, limited=False)
    key = create_key(member, scopes=("predict",))["key"]
    assert predict(client, {"X-API-Key": key}).status_code == 200
    assert predict(client, {"Authorization": f"Bearer {key}"}).status_code == 200
    r = predict(client, {})
    expect_error(r, 401, "not_authenticated")
    assert_headers(r, version=None, limited=False)
    expect_error(predict(client, {"X-API-Key": "mlp_nope_nope"}), 401)
    other = account("other@example.com")
    expect_error(predict(client, other.headers), 404, "model_not_found")
    other_key = create_key(other, scopes=("predict",))["key"]
    expect_error(predict(client, {"X-API-Key": other_key}), 404, "model_not_found")


def test_rate_limited_calls_get_429_with_the_headers(client, member, expect_error):
    upload(client, member.headers)
    r = client.post("/api/v1/api-keys", json={"name": "tight", "scopes": ["predict"], "rate_limit_per_minute": 2},
                    headers=member.headers)
    key = {"X-API-Key": r.json()["key"]}
    remaining = [predict(client, key).headers["RateLimit-Remaining"] for _ in range(2)]
    assert remaining == ["1", "0"]
    r = predict(client, key)
    expect_error(r, 429)
    assert int(r.headers["Retry-After"]) >= 1 and r.headers["RateLimit-Remaining"] == "0"
    assert_headers(r, version=1)


def test_bodies_bigger_than_the_ordinary_limit_carry_up_to_the_row_limit(client, member, settings, expect_error):
    upload(client, member.headers)
    rows = (np.random.default_rng(0).random((settings.predict_max_rows, 4)) * 10).tolist()
    records = [{f"f{i}": v for i, v in enumerate(r)} for r in rows]
    body = json.dumps({"dataframe_records": records}, indent=1).encode()  # pretty-printed, as some clients send
    assert len(body) > settings.max_body_bytes
    r = predict(client, member.headers, content=body, extra_headers={"Content-Type": "application/json"})
    assert r.status_code == 200, r.text[:300]
    assert len(r.json()["predictions"]) == settings.predict_max_rows
    r = predict(client, member.headers, body={"instances": rows + rows[:1]})
    assert expect_error(r, 422, "too_many_rows")["details"]["row"] == settings.predict_max_rows
    from mlplatform.services.predictions import body_limit

    huge = b'{"instances": [' + b" " * body_limit(settings) + b"]}"
    expect_error(predict(client, member.headers, content=huge, extra_headers={"Content-Type": "application/json"}),
                 413, "payload_too_large")


def test_a_host_killed_mid_request_is_503_then_the_next_request_succeeds(client, member, model_hosts, expect_error):
    h = member.headers
    upload(client, h, "slow", host_models_file())
    hosts = model_hosts.client()
    small = {"instances": np.random.default_rng(1).random((2, 20)).tolist()}
    assert predict(client, h, "slow", body=small).status_code == 200  # loaded in a pool host
    outcome = {}

    def slow_call():
        big = {"instances": np.random.default_rng(2).random((5000, 20)).tolist()}
        outcome["response"] = predict(client, h, "slow", body=big)

    caller = threading.Thread(target=slow_call)
    caller.start()
    busy = wait_until(lambda: next((e for e in hosts.status()["hosts"] if e["busy"] == "predict"), None),
                      "the slow call runs")
    os.kill(busy["pid"], signal.SIGKILL)
    caller.join(120)
    r = outcome["response"]
    expect_error(r, 503, "model_unavailable")
    assert int(r.headers["Retry-After"]) >= 1
    assert_headers(r, version=1)
    again = predict(client, h, "slow", body={"instances": np.random.default_rng(3).random((2, 20)).tolist()})
    assert again.status_code == 200 and len(again.json()["predictions"]) == 2


def host_models_file() -> bytes:
    buffer = io.BytesIO()
    joblib.dump(host_models.slow_knn(), buffer)
    return buffer.getvalue()


def test_the_route_is_documented_with_bodies_and_errors(client):
    spec = client.get("/api/v1/openapi.json").json()
    operation = spec["paths"]["/api/v1/models/{name}/predict"]["post"]
    assert operation["summary"] and "dataframe_split" in operation["description"]
    content = operation["requestBody"]["content"]
    assert set(content["application/json"]["examples"]) >= {"dataframe_split", "dataframe_records", "instances",
                                                             "inputs"}
    assert "text/csv" in content
    assert {"401", "403", "404", "409", "413", "415", "422", "429", "503"} <= set(operation["responses"])
    assert {p["name"] for p in operation["parameters"]} >= {"name", "version", "proba"}


def test_every_call_over_rest_lands_in_the_prediction_log(client, member, create_key):
    from sqlalchemy import select

    from mlplatform.db import get_engine
    from mlplatform.models import PredictionLog
    from mlplatform.services import prediction_log

    upload(client, member.headers)
    key = create_key(member, scopes=("predict",))
    assert predict(client, {"X-API-Key": key["key"]}).status_code == 200
    assert predict(client, {"X-API-Key": key["key"]}).headers["X-Cache"] == "hit"
    assert predict(client, {"X-API-Key": "mlp_nope_nope"}).status_code == 401
    assert predict(client, member.headers, "nope").status_code == 404
    assert prediction_log.flush(10)
    with get_engine().connect() as conn:
        rows = conn.execute(select(PredictionLog.__table__).order_by(PredictionLog.id)).all()
    assert [(r.source, r.model_name, r.status, r.cached, r.api_key_id is not None) for r in rows] == [
        ("rest", "iris", "ok", False, True), ("rest", "iris", "ok", True, True),
        ("rest", "iris", "invalid_api_key", False, False), ("rest", "nope", "model_not_found", False, False)]
    assert rows[2].error_kind == "client" and rows[2].user_id is None and rows[0].user_id == member.user.id
    assert str(rows[0].api_key_id) == key["id"] and rows[3].user_id == member.user.id
