import uuid

import pytest

USERS = "/api/v1/users"
ME = "/api/v1/auth/me"


def test_admin_lists_accounts_with_search_and_paging(client, admin, member, make_user):
    make_user("carol@elsewhere.example")
    r = client.get(USERS, params={"page": 1, "size": 2}, headers=admin.headers)
    assert r.status_code == 200
    body = r.json()
    assert (body["total"], body["page"], body["size"], len(body["items"])) == (3, 1, 2, 2)
    assert "password_hash" not in r.text
    rest = client.get(USERS, params={"page": 2, "size": 2}, headers=admin.headers).json()["items"]
    assert {u["email"] for u in body["items"] + rest} == {
        "root@example.com", "member@example.com", "carol@elsewhere.example"
    }
    found = client.get(USERS, params={"search": "ELSEWHERE"}, headers=admin.headers).json()
    assert [u["email"] for u in found["items"]] == ["carol@elsewhere.example"] and found["total"] == 1


@pytest.mark.parametrize(
    "params", [{"page": 0}, {"page": "two"}, {"size": 0}, {"size": 201}, {"page": 10**20}, {"search": "x" * 321}]
)
def test_bad_paging_answers_422(client, admin, expect_error, params):
    expect_error(client.get(USERS, params=params, headers=admin.headers), 422, "validation_error")


def test_non_admins_get_403(client, admin, member, expect_error):
    expect_error(client.get(USERS, headers=member.headers), 403, "admin_required")
    for action in ("deactivate", "reactivate"):
        r = client.post(f"{USERS}/{admin.user.id}/{action}", headers=member.headers)
        expect_error(r, 403, "admin_required")
    assert client.get(ME, headers=admin.headers).status_code == 200


def test_an_admins_api_key_gets_403(client, admin, member, create_key, expect_error):
    key = create_key(admin, ["predict", "models:read", "models:write", "jobs", "experiments", "analytics"])
    as_key = {"X-API-Key": key["key"]}
    expect_error(client.get(USERS, headers=as_key), 403, "user_token_required")
    expect_error(client.post(f"{USERS}/{member.user.id}/deactivate", headers=as_key), 403, "user_token_required")


def test_users_routes_need_credentials(client, expect_error):
    expect_error(client.get(USERS), 401, "not_authenticated")


def test_deactivation_stops_the_users_token_and_key_and_reactivation_restores_them(
    client, admin, member, create_key, expect_error
):
    key = {"X-API-Key": create_key(member)["key"]}
    assert client.get(ME, headers=key).status_code == 200

    r = client.post(f"{USERS}/{member.user.id}/deactivate", headers=admin.headers)
    assert r.status_code == 200 and r.json()["is_active"] is False

    expect_error(client.get(ME, headers=key), 401, "account_deactivated")
    expect_error(client.get(ME, headers=member.headers), 401, "account_deactivated")
    expect_error(client.post("/api/v1/auth/refresh", json={"refresh_token": member.tokens["refresh_token"]}),
                 401, "invalid_refresh_token")
    login = client.post("/api/v1/auth/login", json={"email": member.user.email, "password": member.password})
    expect_error(login, 401, "account_deactivated")

    r = client.post(f"{USERS}/{member.user.id}/reactivate", headers=admin.headers)
    assert r.status_code == 200 and r.json()["is_active"] is True
    assert client.get(ME, headers=key).status_code == 200


def test_an_admin_cannot_deactivate_themselves(client, admin, expect_error):
    r = client.post(f"{USERS}/{admin.user.id}/deactivate", headers=admin.headers)
    expect_error(r, 409, "cannot_deactivate_self")
    assert client.get(ME, headers=admin.headers).status_code == 200


def test_unknown_or_malformed_user_ids(client, admin, expect_error):
    expect_error(client.post(f"{USERS}/{uuid.uuid4()}/deactivate", headers=admin.headers), 404, "user_not_found")
    expect_error(client.post(f"{USERS}/nope/deactivate", headers=admin.headers), 422, "validation_error")
