import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest

KEYS = "/api/v1/api-keys"
ME = "/api/v1/auth/me"


def test_create_answers_201_with_id_secret_and_prefix(client, member):
    expires = (datetime.now(timezone.utc) + timedelta(days=30)).isoformat()
    r = client.post(KEYS, json={"name": "nightly", "scopes": ["predict", "jobs"], "expires_at": expires},
                    headers=member.headers)
    assert r.status_code == 201, r.text
    body = r.json()
    assert uuid.UUID(body["id"]) and re.fullmatch(r"mlp_[0-9a-f]{8}", body["prefix"])
    assert body["key"].startswith(body["prefix"] + "_")
    assert body["scopes"] == ["predict", "jobs"] and body["name"] == "nightly"
    assert body["expires_at"] is not None and body["revoked_at"] is None


def test_the_secret_is_shown_only_once(client, member, create_key):
    created = create_key(member)
    r = client.get(KEYS, headers=member.headers)
    assert r.status_code == 200
    [listed] = r.json()
    assert listed["id"] == created["id"] and listed["prefix"] == created["prefix"]
    assert "key" not in listed and created["key"] not in r.text


def test_list_shows_only_the_callers_keys(client, admin, member, create_key):
    mine = create_key(member, name="mine")
    create_key(admin, name="theirs")
    assert [k["id"] for k in client.get(KEYS, headers=member.headers).json()] == [mine["id"]]


@pytest.mark.parametrize(
    "body",
    [
        {"name": "k", "scopes": "predict"},
        {"name": "k", "scopes": {"predict": True}},
        {"name": "k", "scopes": ["predict", "root"]},
        {"name": "k", "scopes": []},
        {"name": "", "scopes": ["predict"]},
        {"name": "x" * 101, "scopes": ["predict"]},
        {"name": 7, "scopes": ["predict"]},
        {"scopes": ["predict"]},
        {"name": "k", "scopes": ["predict"], "expires_at": "2001-01-01T00:00:00Z"},
        {"name": "k", "scopes": ["predict"], "expires_at": "next tuesday"},
        {"name": "k", "scopes": ["predict"], "expires_at": "9999-12-31T23:59:59-14:00"},
    ],
)
def test_invalid_keys_answer_422(client, member, expect_error, body):
    expect_error(client.post(KEYS, json=body, headers=member.headers), 422)
    assert client.get(KEYS, headers=member.headers).json() == []


def test_create_needs_json(client, member, expect_error):
    r = client.post(KEYS, content=b"name=k&scopes=predict",
                    headers={**member.headers, "Content-Type": "application/x-www-form-urlencoded"})
    expect_error(r, 415, "unsupported_media_type")


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_an_api_key_cannot_manage_keys(client, admin, create_key, expect_error, header):
    created = create_key(admin, ["predict", "models:write"])
    as_key = {header: f"Bearer {created['key']}" if header == "Authorization" else created["key"]}
    create = client.post(KEYS, json={"name": "minted", "scopes": ["predict"]}, headers=as_key)
    expect_error(create, 403, "user_token_required")
    expect_error(client.get(KEYS, headers=as_key), 403, "user_token_required")
    expect_error(client.delete(f"{KEYS}/{created['id']}", headers=as_key), 403, "user_token_required")
    assert len(client.get(KEYS, headers=admin.headers).json()) == 1


def test_revoke_answers_204_and_the_key_stops_working(client, member, create_key, expect_error):
    created = create_key(member)
    assert client.get(ME, headers={"X-API-Key": created["key"]}).status_code == 200
    r = client.delete(f"{KEYS}/{created['id']}", headers=member.headers)
    assert r.status_code == 204 and r.content == b""
    expect_error(client.get(ME, headers={"X-API-Key": created["key"]}), 401, "api_key_revoked")
    [listed] = client.get(KEYS, headers=member.headers).json()
    assert listed["revoked_at"] is not None


def test_another_users_key_answers_404(client, admin, member, create_key, expect_error):
    theirs = create_key(admin)
    expect_error(client.delete(f"{KEYS}/{theirs['id']}", headers=member.headers), 404, "api_key_not_found")
    expect_error(client.delete(f"{KEYS}/{uuid.uuid4()}", headers=member.headers), 404, "api_key_not_found")
    assert client.get(ME, headers={"X-API-Key": theirs["key"]}).status_code == 200


def test_a_malformed_key_id_answers_422(client, member, expect_error):
    expect_error(client.delete(f"{KEYS}/not-a-uuid", headers=member.headers), 422, "validation_error")


@pytest.mark.parametrize("method", ["get", "post"])
def test_key_routes_need_credentials(client, expect_error, method):
    expect_error(getattr(client, method)(KEYS), 401, "not_authenticated")


def test_a_key_may_be_created_with_its_own_rate_limit(client, member, expect_error):
    r = client.post(KEYS, json={"name": "k", "scopes": ["predict"], "rate_limit_per_minute": 60},
                    headers=member.headers)
    assert r.status_code == 201 and r.json()["rate_limit_per_minute"] == 60
    r = client.post(KEYS, json={"name": "d", "scopes": ["predict"]}, headers=member.headers)
    assert r.json()["rate_limit_per_minute"] is None
    assert [k["rate_limit_per_minute"] for k in client.get(KEYS, headers=member.headers).json()] == [None, 60]
    for bad in (0, -1, 2**31, "many"):
        body = {"name": "k", "scopes": ["predict"], "rate_limit_per_minute": bad}
        expect_error(client.post(KEYS, json=body, headers=member.headers), 422, "validation_error")
