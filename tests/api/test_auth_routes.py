import uuid
from datetime import timedelta

import pytest

from mlplatform.services import tokens
from tests import forged_tokens as forge

REGISTER = "/api/v1/auth/register"
LOGIN = "/api/v1/auth/login"
REFRESH = "/api/v1/auth/refresh"
LOGOUT = "/api/v1/auth/logout"
ME = "/api/v1/auth/me"
PASSWORD = "correct horse battery"


# --- register -------------------------------------------------------------------------------


def test_register_answers_201_with_the_public_account(client):
    r = client.post(REGISTER, json={"email": "  Ada@Example.COM ", "password": PASSWORD})
    assert r.status_code == 201, r.text
    body = r.json()
    assert body["email"] == "ada@example.com" and body["role"] == "admin" and body["is_active"] is True
    assert uuid.UUID(body["id"]) and "password" not in r.text and "$2b$" not in r.text
    second = client.post(REGISTER, json={"email": "grace@example.com", "password": PASSWORD})
    assert second.status_code == 201 and second.json()["role"] == "user"


def test_duplicate_email_answers_409(client, expect_error):
    assert client.post(REGISTER, json={"email": "ada@example.com", "password": PASSWORD}).status_code == 201
    r = client.post(REGISTER, json={"email": "ADA@example.com", "password": "another long password"})
    expect_error(r, 409, "email_taken")


@pytest.mark.parametrize(
    "body, code",
    [
        ({"email": "ada@example.com", "password": "short"}, "weak_password"),
        ({"email": "ada@example.com", "password": "ada is the best"}, "weak_password"),
        ({"email": "not-an-email", "password": PASSWORD}, "invalid_email"),
        ({"email": 12345, "password": PASSWORD}, "validation_error"),
        ({"email": "ada@example.com", "password": ["a", "list"]}, "validation_error"),
        ({"email": "ada@example.com"}, "validation_error"),
        ({}, "validation_error"),
        ([], "validation_error"),
        ("just a string", "validation_error"),
        ({"email": "ada@example.com", "password": "x" * 1001}, "validation_error"),
    ],
)
def test_invalid_registrations_answer_422(client, expect_error, body, code):
    error = expect_error(client.post(REGISTER, json=body), 422, code)
    assert error["details"]


def test_validation_errors_name_the_offending_fields(client, expect_error):
    error = expect_error(client.post(REGISTER, json={"email": 5}), 422, "validation_error")
    assert {tuple(p["loc"]) for p in error["details"]} == {("body", "email"), ("body", "password")}


@pytest.mark.parametrize("path", [REGISTER, LOGIN, REFRESH])
@pytest.mark.parametrize("raw", [b'{"email": "ada@example.com",', b"{'single': 'quotes'}", b"\xff\xfe"])
def test_malformed_json_answers_400(client, expect_error, path, raw):
    r = client.post(path, content=raw, headers={"Content-Type": "application/json"})
    expect_error(r, 400, "malformed_json")


@pytest.mark.parametrize(
    "content_type", ["text/plain", "application/x-www-form-urlencoded", "multipart/form-data; boundary=x", ""]
)
def test_other_content_types_answer_415(client, expect_error, content_type):
    r = client.post(REGISTER, content=b'{"email": "ada@example.com", "password": "correct horse battery"}',
                    headers={"Content-Type": content_type})
    expect_error(r, 415, "unsupported_media_type")


def test_json_with_a_charset_or_a_json_suffix_is_accepted(client):
    body = b'{"email": "ada@example.com", "password": "correct horse battery"}'
    r = client.post(REGISTER, content=body, headers={"Content-Type": "application/json; charset=utf-8"})
    assert r.status_code == 201
    r = client.post(LOGIN, content=body, headers={"Content-Type": "application/vnd.api+json"})
    assert r.status_code == 200


def test_a_body_declared_over_the_limit_answers_413(client, settings, expect_error):
    r = client.post(REGISTER, content=b" " * (settings.max_body_bytes + 1),
                    headers={"Content-Type": "application/json"})
    error = expect_error(r, 413, "payload_too_large")
    assert str(settings.max_body_bytes) in error["message"]
    assert error["details"] == {"limit_bytes": settings.max_body_bytes}


def test_a_streamed_body_over_the_limit_answers_413(client, settings, expect_error):
    chunk = b" " * 65536

    def body():
        for _ in range(settings.max_body_bytes // len(chunk) + 2):
            yield chunk

    r = client.post(REGISTER, content=body(), headers={"Content-Type": "application/json"})
    assert "content-length" not in r.request.headers and r.request.headers["transfer-encoding"] == "chunked"
    error = expect_error(r, 413, "payload_too_large")
    assert error["details"] == {"limit_bytes": settings.max_body_bytes}


def test_a_streamed_body_under_the_limit_is_read_normally(client):
    def body():
        yield b'{"email": "ada@example.com", '
        yield b'"password": "correct horse battery"}'

    r = client.post(REGISTER, content=body(), headers={"Content-Type": "application/json"})
    assert r.status_code == 201, r.text


# --- login, refresh, logout -----------------------------------------------------------------------


def test_login_answers_a_bearer_token_pair(client, make_user):
    user, password = make_user()
    r = client.post(LOGIN, json={"email": user.email, "password": password})
    assert r.status_code == 200
    body = r.json()
    assert set(body) == {"access_token", "refresh_token", "token_type", "expires_in"}
    assert body["token_type"] == "bearer" and body["expires_in"] == 1800
    assert tokens.verify(body["access_token"], tokens.ACCESS).user_id == user.id


def test_wrong_password_answers_401(client, make_user, expect_error):
    user, _ = make_user()
    expect_error(client.post(LOGIN, json={"email": user.email, "password": "wrong password"}), 401,
                 "invalid_credentials")


def test_repeated_wrong_passwords_answer_429_with_retry_after(client, make_user, expect_error, settings):
    user, password = make_user()
    for _ in range(settings.login_max_failures_per_account):
        r = client.post(LOGIN, json={"email": user.email, "password": "wrong password"})
        expect_error(r, 401, "invalid_credentials")
    r = client.post(LOGIN, json={"email": user.email, "password": password})
    error = expect_error(r, 429, "rate_limited")
    retry_after = int(r.headers["retry-after"])
    assert 0 < retry_after <= settings.login_window_seconds
    assert error["details"] == {"retry_after": retry_after}


def test_refresh_rotates_and_a_reused_token_revokes_the_family(client, make_user, login, expect_error):
    user, password = make_user()
    first = login(user.email, password)
    r = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    assert r.status_code == 200
    second = r.json()
    assert second["refresh_token"] != first["refresh_token"] and second["token_type"] == "bearer"

    reused = client.post(REFRESH, json={"refresh_token": first["refresh_token"]})
    expect_error(reused, 401, "refresh_token_reused")
    newest = client.post(REFRESH, json={"refresh_token": second["refresh_token"]})
    expect_error(newest, 401, "invalid_refresh_token")


@pytest.mark.parametrize("body", [{"refresh_token": "nope"}, {"refresh_token": "x" * 200}])
def test_unknown_refresh_tokens_answer_401(client, expect_error, body):
    expect_error(client.post(REFRESH, json=body), 401, "invalid_refresh_token")


@pytest.mark.parametrize("body", [{}, {"refresh_token": 5}, {"refresh_token": "x" * 201}])
def test_malformed_refresh_requests_answer_422(client, expect_error, body):
    expect_error(client.post(REFRESH, json=body), 422, "validation_error")


def test_logout_revokes_the_access_token_and_the_refresh_family(client, make_user, login, bearer, expect_error):
    user, password = make_user()
    pair = login(user.email, password)
    assert client.get(ME, headers=bearer(pair["access_token"])).status_code == 200

    r = client.post(LOGOUT, headers=bearer(pair["access_token"]))
    assert r.status_code == 204 and r.content == b""

    expect_error(client.get(ME, headers=bearer(pair["access_token"])), 401, "token_revoked")
    refreshed = client.post(REFRESH, json={"refresh_token": pair["refresh_token"]})
    expect_error(refreshed, 401, "invalid_refresh_token")


def test_logout_needs_credentials(client, expect_error):
    expect_error(client.post(LOGOUT), 401, "not_authenticated")


# --- me and the ways to authenticate ------------------------------------------------------------


def test_me_with_an_access_token(client, make_user, login, bearer):
    user, password = make_user()
    r = client.get(ME, headers=bearer(login(user.email, password)["access_token"]))
    assert r.status_code == 200
    body = r.json()
    assert (body["id"], body["email"], body["auth_method"], body["scopes"]) == (
        str(user.id), user.email, "access_token", None
    )
    assert body["last_login_at"] is not None


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_me_with_an_api_key_shows_its_scopes(client, member, create_key, header):
    key = create_key(member, ["models:read", "predict"])["key"]
    value = f"Bearer {key}" if header == "Authorization" else key
    r = client.get(ME, headers={header: value})
    assert r.status_code == 200
    body = r.json()
    assert body["email"] == member.user.email
    assert body["auth_method"] == "api_key" and body["scopes"] == ["models:read", "predict"]


def bad_tokens(user_id, secret_key) -> dict[str, str]:
    valid = tokens.issue(user_id, tokens.ACCESS, timedelta(minutes=5))
    return {
        "garbage": "not-a-token",
        "three_parts": "a.b.c",
        "expired": tokens.issue(user_id, tokens.ACCESS, timedelta(seconds=-5)),
        "tampered_payload": forge.with_payload(valid, sub=str(uuid.uuid4())),
        "tampered_signature": forge.with_flipped_signature(valid),
        "alg_none": forge.alg_none(forge.claims_for(user_id)),
        "alg_none_header": forge.with_alg_none_header(valid),
        "hs512": forge.signed(forge.claims_for(user_id), secret_key, "HS512"),
        "session_typ": tokens.issue(user_id, tokens.SESSION, timedelta(minutes=5)),
        "other_key": forge.signed(forge.claims_for(user_id), "some-other-secret-0123456789abcdefghij"),
    }


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
def test_bad_bearer_tokens_answer_401_with_www_authenticate(client, make_user, settings, expect_error):
    user, _ = make_user()
    expected = {"expired": "token_expired", "garbage": "invalid_api_key"}
    for name, token in bad_tokens(user.id, settings.secret_key).items():
        r = client.get(ME, headers={"Authorization": f"Bearer {token}"})
        expect_error(r, 401, expected.get(name, "invalid_token"))


@pytest.mark.parametrize("headers", [{}, {"Authorization": "Bearer "}, {"Authorization": "Basic dXNlcjpwYXNz"},
                                     {"X-API-Key": ""}])
def test_missing_credentials_answer_401(client, expect_error, headers):
    expect_error(client.get(ME, headers=headers), 401, "not_authenticated")


@pytest.mark.parametrize("header", ["Authorization", "X-API-Key"])
def test_unknown_and_revoked_keys_answer_401(client, member, create_key, expect_error, header):
    def me_with(key: str):
        return client.get(ME, headers={header: f"Bearer {key}" if header == "Authorization" else key})

    expect_error(me_with("mlp_00000000_unknown"), 401, "invalid_api_key")
    created = create_key(member)
    assert me_with(created["key"]).status_code == 200
    assert client.delete(f"/api/v1/api-keys/{created['id']}", headers=member.headers).status_code == 204
    expect_error(me_with(created["key"]), 401, "api_key_revoked")
