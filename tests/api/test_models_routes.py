"""The registry's REST routes: shapes, status codes, ownership, scopes, uploads and their limits."""

import pytest
from fastapi.testclient import TestClient

from mlplatform.api.app import create_api
from mlplatform.api.routes.models import MULTIPART_OVERHEAD_BYTES

from tests.registry_support import (  # noqa: F401  (fixtures)
    UNSAFE, clean_store, gate, model_bytes, sha256, stored_files,
)

MODELS = "/api/v1/models"
pytestmark = pytest.mark.usefixtures("clean_store", "gate")


def upload(client, headers, name="iris", file=None, filename="iris.joblib", **extra):
    file = model_bytes("logreg") if file is None else file
    return client.post(f"{MODELS}/{name}/versions", headers=headers,
                       files={"file": (filename, file, "application/octet-stream")}, **extra)


def test_create_get_update_list_delete_restore(client, member):
    h = member.headers
    r = client.post(MODELS, json={"name": "churn", "description": "d", "tags": ["t"]}, headers=h)
    assert r.status_code == 201, r.text
    body = r.json()
    assert (body["name"], body["owner_email"], body["tags"], body["latest_version"], body["aliases"]) == (
        "churn", member.user.email, ["t"], None, {}
    )
    assert client.get(f"{MODELS}/churn", headers=h).json() == body
    r = client.patch(f"{MODELS}/churn", json={"description": "new"}, headers=h)
    assert r.status_code == 200 and r.json()["description"] == "new" and r.json()["tags"] == ["t"]
    listed = client.get(MODELS, headers=h).json()
    assert (listed["total"], listed["page"], listed["per_page"]) == (1, 1, 20)
    assert client.delete(f"{MODELS}/churn", headers=h).status_code == 204
    assert client.get(MODELS, headers=h).json()["total"] == 0
    assert client.get(MODELS, params={"status": "deleted"}, headers=h).json()["items"][0]["name"] == "churn"
    r = client.patch(f"{MODELS}/churn", json={"status": "active"}, headers=h)
    assert r.json()["status"] == "active"


def test_list_searches_filters_and_pages(client, member):
    h = member.headers
    for name, tags in [("a-churn", ["x"]), ("b-fraud", ["x", "y"]), ("c-price", [])]:
        client.post(MODELS, json={"name": name, "tags": tags, "description": f"about {name}"}, headers=h)
    assert [m["name"] for m in client.get(MODELS, params={"q": "FRAUD"}, headers=h).json()["items"]] == ["b-fraud"]
    assert {m["name"] for m in client.get(MODELS, params={"tag": "x"}, headers=h).json()["items"]} == {
        "a-churn", "b-fraud"
    }
    page = client.get(MODELS, params={"page": 2, "per_page": 2}, headers=h).json()
    assert (page["total"], len(page["items"]), page["page"], page["per_page"]) == (3, 1, 2, 2)


@pytest.mark.parametrize("params", [{"page": 0}, {"per_page": 101}, {"status": "archived"}, {"q": "x" * 201}])
def test_bad_list_parameters_answer_422(client, member, expect_error, params):
    expect_error(client.get(MODELS, params=params, headers=member.headers), 422, "validation_error")


def test_bad_input_answers_422_with_a_clear_code(client, member, expect_error):
    h = member.headers
    err = expect_error(client.post(MODELS, json={"name": "Bad Name"}, headers=h), 422, "invalid_name")
    assert "lowercase letters" in err["message"]
    expect_error(client.post(MODELS, json={"name": "x", "owner_id": "me"}, headers=h), 422, "validation_error")
    expect_error(client.get(f"{MODELS}/Bad Name", headers=h), 422, "invalid_name")
    expect_error(client.post(MODELS, content=b"name=x", headers={**h, "Content-Type": "text/plain"}),
                 415, "unsupported_media_type")
    expect_error(client.post(MODELS, content=b"{", headers={**h, "Content-Type": "application/json"}),
                 400, "malformed_json")
    client.post(MODELS, json={"name": "churn"}, headers=h)
    expect_error(client.post(MODELS, json={"name": "churn"}, headers=h), 409, "model_exists")


def test_upload_creates_the_model_and_answers_201_with_the_signature(client, member, settings):
    r = upload(client, member.headers, data={"description": "first"})
    assert r.status_code == 201, r.text
    v = r.json()
    assert (v["model"], v["version"], v["status"], v["description"], v["filename"]) == (
        "iris", 1, "active", "first", "iris.joblib"
    )
    assert v["sha256"] == sha256(model_bytes("logreg")) and v["size_bytes"] == len(model_bytes("logreg"))
    assert v["signature"]["estimator"].endswith("LogisticRegression") and v["signature"]["n_features"] == 4
    assert set(v["signature"]["example"]) == {"f0", "f1", "f2", "f3"}
    assert client.get(f"{MODELS}/iris", headers=member.headers).json()["latest_version"] == 1
    assert upload(client, member.headers, file=model_bytes("logreg", 1)).json()["version"] == 2
    listed = client.get(f"{MODELS}/iris/versions", headers=member.headers).json()
    assert [x["version"] for x in listed["items"]] == [2, 1] and listed["total"] == 2
    assert client.get(f"{MODELS}/iris/versions/1", headers=member.headers).json() == v


def test_a_file_bigger_than_the_ordinary_body_limit_uploads(client, member, settings):
    data = model_bytes("big")
    assert len(data) > settings.max_body_bytes
    r = upload(client, member.headers, file=data)
    assert r.status_code == 201, r.text
    assert r.json()["size_bytes"] == len(data)
    big_json = b'{"name": "' + b"x" * len(data) + b'"}'
    r = client.post(MODELS, content=big_json, headers={**member.headers, "Content-Type": "application/json"})
    assert r.status_code == 413  # other routes keep the ordinary limit


def test_a_refused_upload_is_422_with_the_gates_code_and_leaves_nothing(client, member, settings, expect_error):
    err = expect_error(upload(client, member.headers, file=UNSAFE, filename="evil.pkl"), 422, "unsafe_model")
    assert "posix.system" in err["message"]
    expect_error(client.get(f"{MODELS}/iris", headers=member.headers), 404, "model_not_found")
    assert stored_files(settings.models_dir) == []


def test_uploads_need_a_multipart_body_with_a_file(client, member, expect_error):
    h = member.headers
    expect_error(client.post(f"{MODELS}/iris/versions", json={"file": "x"}, headers=h), 415, "unsupported_media_type")
    expect_error(client.post(f"{MODELS}/iris/versions", headers=h), 415, "unsupported_media_type")
    r = client.post(f"{MODELS}/iris/versions", data={"description": "no file"}, files={"other": ("a", b"b")}, headers=h)
    err = expect_error(r, 422, "validation_error")
    assert ["body", "file"] in [p["loc"] for p in err["details"]]
    expect_error(upload(client, h, file=b""), 422, "empty_file")


@pytest.fixture
def small_client(settings, monkeypatch):
    """An app whose model size cap is 4 KiB (the service reads the same cached settings)."""
    monkeypatch.setattr(settings, "max_model_bytes", 4096)
    with TestClient(create_api(settings)) as c:
        yield c


def test_too_big_uploads_get_413_by_declared_length_by_stream_and_by_file_size(
    small_client, member, settings, expect_error
):
    limit = 4096 + MULTIPART_OVERHEAD_BYTES
    h = member.headers
    r = small_client.post(f"{MODELS}/iris/versions", content=b"x" * (limit + 1),
                          headers={**h, "Content-Type": "multipart/form-data; boundary=b"})
    assert expect_error(r, 413, "payload_too_large")["details"] == {"limit_bytes": limit}

    def stream():
        for _ in range(limit // 1000 + 2):
            yield b"y" * 1000

    r = small_client.post(f"{MODELS}/iris/versions", content=stream(),
                          headers={**h, "Content-Type": "multipart/form-data; boundary=b"})
    assert expect_error(r, 413, "payload_too_large")["details"] == {"limit_bytes": limit}

    r = upload(small_client, h, file=b"z" * 5000)  # the body fits, the file does not
    assert expect_error(r, 413, "payload_too_large")["details"] == {"limit_bytes": 4096}
    assert stored_files(settings.models_dir) == []
    assert small_client.get(f"{MODELS}/iris", headers=h).status_code == 404


def test_versions_change_only_status_and_description(client, member, expect_error):
    h = member.headers
    upload(client, h)
    r = client.patch(f"{MODELS}/iris/versions/1", json={"status": "deprecated", "description": "old"}, headers=h)
    assert (r.json()["status"], r.json()["description"]) == ("deprecated", "old")
    for body in ({"sha256": "0" * 64}, {"version": 5}, {"signature": {}}, {"status": "deleted"}):
        expect_error(client.patch(f"{MODELS}/iris/versions/1", json=body, headers=h), 422, "validation_error")
    for bad in ("one", "0", str(2**31)):
        expect_error(client.get(f"{MODELS}/iris/versions/{bad}", headers=h), 422, "validation_error")
    expect_error(client.get(f"{MODELS}/iris/versions/2", headers=h), 404, "version_not_found")


def test_aliases_set_move_delete_and_guard_archived_versions(client, member, expect_error):
    h = member.headers
    upload(client, h)
    upload(client, h, file=model_bytes("logreg", 1))
    r = client.put(f"{MODELS}/iris/aliases/production", json={"version": 1}, headers=h)
    assert r.status_code == 200 and (r.json()["alias"], r.json()["version"]) == ("production", 1)
    assert client.put(f"{MODELS}/iris/aliases/production", json={"version": 2}, headers=h).json()["version"] == 2
    assert client.get(f"{MODELS}/iris", headers=h).json()["aliases"] == {"production": 2}
    err = expect_error(client.patch(f"{MODELS}/iris/versions/2", json={"status": "archived"}, headers=h),
                       409, "version_has_aliases")
    assert err["details"] == {"aliases": ["production"]}
    client.patch(f"{MODELS}/iris/versions/1", json={"status": "archived"}, headers=h)
    expect_error(client.put(f"{MODELS}/iris/aliases/production", json={"version": 1}, headers=h),
                 409, "version_archived")
    expect_error(client.put(f"{MODELS}/iris/aliases/7", json={"version": 2}, headers=h), 422, "invalid_alias")
    expect_error(client.put(f"{MODELS}/iris/aliases/x", json={"version": 0}, headers=h), 422, "validation_error")
    assert client.delete(f"{MODELS}/iris/aliases/production", headers=h).status_code == 204
    expect_error(client.delete(f"{MODELS}/iris/aliases/production", headers=h), 404, "alias_not_found")


def test_alias_list_and_rollback(client, member, expect_error):
    h = member.headers
    for seed in range(3):
        upload(client, h, file=model_bytes("logreg", seed))
    for version in (1, 3):
        client.put(f"{MODELS}/iris/aliases/production", json={"version": version}, headers=h)
    listed = client.get(f"{MODELS}/iris/aliases", headers=h).json()
    assert [(a["alias"], a["version"], a["previous_version"]) for a in listed] == [("production", 3, 1)]
    r = client.post(f"{MODELS}/iris/aliases/production/rollback", headers=h)
    assert r.status_code == 200 and (r.json()["version"], r.json()["previous_version"]) == (1, 3)
    client.put(f"{MODELS}/iris/aliases/staging", json={"version": 2}, headers=h)
    expect_error(client.post(f"{MODELS}/iris/aliases/staging/rollback", headers=h), 409, "nothing_to_roll_back")
    expect_error(client.post(f"{MODELS}/iris/aliases/canary/rollback", headers=h), 404, "alias_not_found")


def test_another_users_model_is_404_on_every_route(client, member, account, expect_error):
    upload(client, member.headers)
    client.put(f"{MODELS}/iris/aliases/production", json={"version": 1}, headers=member.headers)
    other = account("other@example.com").headers
    calls = [
        ("GET", f"{MODELS}/iris", {}), ("PATCH", f"{MODELS}/iris", {"json": {"description": "x"}}),
        ("DELETE", f"{MODELS}/iris", {}), ("GET", f"{MODELS}/iris/versions", {}),
        ("GET", f"{MODELS}/iris/versions/1", {}),
        ("PATCH", f"{MODELS}/iris/versions/1", {"json": {"status": "archived"}}),
        ("PUT", f"{MODELS}/iris/aliases/production", {"json": {"version": 1}}),
        ("GET", f"{MODELS}/iris/aliases", {}),
        ("POST", f"{MODELS}/iris/aliases/production/rollback", {}),
        ("DELETE", f"{MODELS}/iris/aliases/production", {}),
    ]
    for method, path, kw in calls:
        expect_error(client.request(method, path, headers=other, **kw), 404, "model_not_found")
        r = client.request(method, path, headers=other, params={"owner": member.user.email}, **kw)
        expect_error(r, 404, "owner_not_found")
    assert client.get(MODELS, headers=other).json()["total"] == 0
    # uploading under the same name makes the other user their own model
    assert upload(client, other).json()["version"] == 1
    assert client.get(f"{MODELS}/iris", headers=member.headers).json()["aliases"] == {"production": 1}


def test_admins_see_everyones_models_and_address_them_by_owner(client, admin, member):
    upload(client, member.headers)
    listed = client.get(MODELS, headers=admin.headers).json()
    assert [(m["name"], m["owner_email"]) for m in listed["items"]] == [("iris", member.user.email)]
    owner = {"owner": member.user.email}
    assert client.get(f"{MODELS}/iris", headers=admin.headers).status_code == 404
    assert client.get(f"{MODELS}/iris", params=owner, headers=admin.headers).json()["latest_version"] == 1
    r = client.put(f"{MODELS}/iris/aliases/production", params=owner, json={"version": 1}, headers=admin.headers)
    assert r.status_code == 200
    assert upload(client, admin.headers, params=owner).json()["version"] == 2


def test_scopes(client, member, create_key, expect_error):
    upload(client, member.headers)
    reader = {"X-API-Key": create_key(member, ["models:read"])["key"]}
    writer = {"X-API-Key": create_key(member, ["models:write"])["key"]}
    predictor = {"X-API-Key": create_key(member, ["predict"])["key"]}
    assert client.get(f"{MODELS}/iris/versions", headers=reader).status_code == 200
    for r in (upload(client, reader, file=model_bytes("logreg", 1)),
              client.post(MODELS, json={"name": "x"}, headers=reader),
              client.put(f"{MODELS}/iris/aliases/production", json={"version": 1}, headers=reader),
              client.get(MODELS, headers=writer), client.get(f"{MODELS}/iris", headers=predictor)):
        expect_error(r, 403, "insufficient_scope")
    assert upload(client, writer, file=model_bytes("logreg", 1)).status_code == 201


def test_model_routes_need_credentials(client, expect_error):
    expect_error(client.get(MODELS), 401, "not_authenticated")
    expect_error(upload(client, {}), 401, "not_authenticated")


def test_openapi_documents_the_upload_as_multipart(client):
    spec = client.get("/api/v1/openapi.json").json()
    upload_op = spec["paths"]["/api/v1/models/{name}/versions"]["post"]
    assert "multipart/form-data" in upload_op["requestBody"]["content"]
    assert {"201", "413", "415", "422"} <= set(upload_op["responses"])


def test_the_dashboards_upload_path_gets_the_model_limit_too(client, settings, expect_error):
    """Reflex receives dashboard uploads at /_upload (not mounted in this API-only app, so 404
    means the body got past the limit)."""
    form = {"Content-Type": "multipart/form-data; boundary=b"}
    body = b"x" * (settings.max_body_bytes + 1)
    assert client.post("/_upload", content=body, headers=form).status_code == 404
    expect_error(client.put("/_upload", content=body, headers=form), 413, "payload_too_large")  # POST only
    too_big = {**form, "Content-Length": str(settings.max_model_bytes + MULTIPART_OVERHEAD_BYTES + 1)}
    r = client.post("/_upload", content=b"", headers=too_big)
    assert r.status_code == 413


def test_serving_settings_are_patched_and_null_returns_to_the_default(client, member, expect_error):
    h = member.headers
    client.post(MODELS, json={"name": "churn"}, headers=h)
    r = client.patch(f"{MODELS}/churn", json={"rate_limit_per_minute": 600, "cache_ttl_seconds": 0}, headers=h)
    assert r.status_code == 200, r.text
    assert (r.json()["rate_limit_per_minute"], r.json()["cache_ttl_seconds"]) == (600, 0)
    r = client.patch(f"{MODELS}/churn", json={"description": "d"}, headers=h)
    assert (r.json()["rate_limit_per_minute"], r.json()["cache_ttl_seconds"]) == (600, 0)
    r = client.patch(f"{MODELS}/churn", json={"cache_ttl_seconds": None}, headers=h)
    assert (r.json()["rate_limit_per_minute"], r.json()["cache_ttl_seconds"]) == (600, None)
    for body in ({"rate_limit_per_minute": 0}, {"cache_ttl_seconds": -1}, {"cache_ttl_seconds": "1h"}):
        expect_error(client.patch(f"{MODELS}/churn", json=body, headers=h), 422, "validation_error")
    assert client.get(f"{MODELS}/churn", headers=h).json()["rate_limit_per_minute"] == 600
