"""Route-level fixtures: signed-in accounts, API keys, and the error-format check."""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from mlplatform.models import User


@pytest.fixture(autouse=True)
def _no_500_and_no_traceback(client):
    """Every response of every API test: never a 500, never a stack trace in the body."""

    def check(response):
        response.read()
        assert response.status_code != 500, response.text
        assert "Traceback" not in response.text

    client.event_hooks["response"].append(check)


@pytest.fixture
def expect_error():
    """Assert the standard error answer; returns its `error` object."""

    def check(response, status: int, code: str | None = None) -> dict:
        assert response.status_code == status, response.text
        assert response.headers["content-type"].startswith("application/json")
        body = response.json()
        assert list(body) == ["error"] and set(body["error"]) == {"code", "message", "details"}
        assert isinstance(body["error"]["code"], str) and body["error"]["message"]
        if code is not None:
            assert body["error"]["code"] == code, body
        if status == 401:
            assert response.headers["www-authenticate"] == "Bearer"
        return body["error"]

    return check


@dataclass
class Account:
    user: User
    password: str
    tokens: dict

    @property
    def headers(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.tokens['access_token']}"}


@pytest.fixture
def account(make_user, login):
    """Register and log in through the API; returns an Account."""

    def make(email: str | None = None) -> Account:
        user, password = make_user(email)
        return Account(user, password, login(user.email, password))

    return make


@pytest.fixture
def admin(account) -> Account:
    return account("root@example.com")  # the first account is the administrator


@pytest.fixture
def member(admin, account) -> Account:
    return account("member@example.com")


@pytest.fixture
def create_key(client):
    """POST /api/v1/api-keys as `owner`; returns the 201 body (with the secret `key`)."""

    def create(owner: Account, scopes=("predict",), name: str = "test key") -> dict:
        r = client.post("/api/v1/api-keys", json={"name": name, "scopes": list(scopes)}, headers=owner.headers)
        assert r.status_code == 201, r.text
        return r.json()

    return create
