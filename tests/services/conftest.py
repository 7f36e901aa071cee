"""Service-level fixtures: accounts and the principals that act for them."""

from __future__ import annotations

from datetime import timedelta

import pytest

from mlplatform import db
from mlplatform.models import ApiKey
from mlplatform.services import api_keys, principals, tokens


@pytest.fixture
def principal_of():
    """The principal a fresh access token of `user` authenticates as."""

    def make(user) -> principals.Principal:
        token = tokens.issue(user.id, tokens.ACCESS, timedelta(minutes=5))
        return principals.authenticate_token(token, tokens.ACCESS)

    return make


@pytest.fixture
def admin(make_user):
    """The first account, hence an administrator."""
    user, _ = make_user("root@example.com")
    return user


@pytest.fixture
def member(admin, make_user):
    """An ordinary account (registered after `admin`)."""
    user, _ = make_user("member@example.com")
    return user


@pytest.fixture
def new_key(principal_of):
    """Create an API key for `user`; returns the CreatedKey (record + secret shown once)."""

    def make(user, scopes=("predict",), name="test key", expires_at=None) -> api_keys.CreatedKey:
        return api_keys.create_key(principal_of(user), name, list(scopes), expires_at)

    return make


@pytest.fixture
def stored_key():
    """The api_keys row as the database has it now."""

    def load(key_id) -> ApiKey:
        with db.session() as s:
            return s.get(ApiKey, key_id)

    return load
