import asyncio
import threading
import time
import uuid
from datetime import timedelta

import pytest
from sqlalchemy import event
from sqlmodel import update

from mlplatform import cache, db
from mlplatform.errors import AuthenticationFailed, PermissionDenied
from mlplatform.models import ApiKey, Role, utcnow
from mlplatform.services import api_keys, auth, principals, tokens, users


def auth_failure(call, *args) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        call(*args)
    return caught.value.code


def test_bearer_accepts_an_access_token_or_an_api_key(member, new_key):
    access = tokens.issue(member.id, tokens.ACCESS, timedelta(minutes=5))
    by_token = principals.authenticate_bearer(access)
    assert (by_token.user_id, by_token.auth_method, by_token.scopes) == (member.id, "access_token", None)

    created = new_key(member, ["predict", "jobs"])
    by_key = principals.authenticate_bearer(created.secret)
    assert (by_key.user_id, by_key.auth_method) == (member.id, "api_key")
    assert by_key.scopes == frozenset({"predict", "jobs"}) and by_key.api_key_id == created.record.id


def test_a_session_token_is_not_an_access_token(member):
    session = tokens.issue(member.id, tokens.SESSION, timedelta(minutes=5))
    assert auth_failure(principals.authenticate_bearer, session) == "invalid_token"


def test_an_access_token_of_a_vanished_account_is_refused():
    orphan = tokens.issue(uuid.uuid4(), tokens.ACCESS, timedelta(minutes=5))
    assert auth_failure(principals.authenticate_bearer, orphan) == "invalid_token"


@pytest.mark.parametrize("secret", ["", "mlp_00000000_unknown", "x" * 300])
def test_unknown_keys_are_refused(secret):
    assert auth_failure(principals.authenticate_api_key, secret) == "invalid_api_key"


def test_a_key_never_grants_more_than_its_scopes(member, new_key):
    as_key = principals.authenticate_api_key(new_key(member, ["predict"]).secret)
    as_key.require_scope("predict")
    for scope in ("models:read", "models:write", "jobs", "experiments", "analytics"):
        with pytest.raises(PermissionDenied) as caught:
            as_key.require_scope(scope)
        assert caught.value.code == "insufficient_scope"


def test_user_credentials_carry_every_scope(member, principal_of):
    principal_of(member).require_scope("models:write")


def test_a_key_never_grants_more_than_its_owners_rights(member, new_key):
    every_scope = ["predict", "models:read", "models:write", "jobs", "experiments", "analytics"]
    as_key = principals.authenticate_api_key(new_key(member, every_scope).secret)
    assert as_key.role == Role.user and not as_key.is_admin
    with pytest.raises(PermissionDenied) as caught:
        as_key.require_admin()
    assert caught.value.code == "admin_required"


def test_an_admins_key_cannot_act_as_the_admin(admin, new_key):
    as_key = principals.authenticate_api_key(new_key(admin).secret)
    with pytest.raises(PermissionDenied) as caught:
        users.list_users(as_key)
    assert caught.value.code == "user_token_required"


def test_an_expired_key_is_refused(member, new_key):
    created = new_key(member, expires_at=utcnow() + timedelta(hours=1))
    assert principals.authenticate_api_key(created.secret).api_key_id == created.record.id
    with db.session() as s:
        past = utcnow() - timedelta(seconds=1)
        s.exec(update(ApiKey).where(ApiKey.id == created.record.id).values(expires_at=past))
    principals.forget_cached()
    assert auth_failure(principals.authenticate_api_key, created.secret) == "api_key_expired"


def test_a_deactivated_owners_key_is_refused(admin, member, new_key, principal_of):
    created = new_key(member)
    users.set_active(principal_of(admin), member.id, False)
    assert auth_failure(principals.authenticate_api_key, created.secret) == "account_deactivated"


def test_a_revocation_elsewhere_is_seen_within_the_auth_cache_ttl(member, new_key, settings):
    """Another process revokes the key (a direct UPDATE; nothing clears this process's cache):
    this process may keep accepting it only until its cache entry expires."""
    assert 0 < settings.auth_cache_seconds <= 1
    created = new_key(member)
    assert principals.authenticate_api_key(created.secret).api_key_id == created.record.id
    with db.session() as s:
        s.exec(update(ApiKey).where(ApiKey.id == created.record.id).values(revoked_at=utcnow()))

    assert principals.authenticate_api_key(created.secret).api_key_id == created.record.id  # cached
    time.sleep(settings.auth_cache_seconds + 0.1)
    assert auth_failure(principals.authenticate_api_key, created.secret) == "api_key_revoked"


def test_using_a_key_records_last_use(member, new_key, stored_key):
    created = new_key(member)
    assert stored_key(created.record.id).last_used_at is None
    before = utcnow()
    principals.authenticate_api_key(created.secret)
    assert before <= stored_key(created.record.id).last_used_at <= utcnow()


def test_a_denylisted_access_token_is_refused(member):
    pair = auth.login(member.email, "correct horse battery", "203.0.113.7")
    principal = principals.authenticate_token(pair.access_token, tokens.ACCESS)
    auth.logout(principal)
    assert auth_failure(principals.authenticate_bearer, pair.access_token) == "token_revoked"


@pytest.mark.parametrize(
    "method, expected",
    [("require_admin", "admin_required"), ("require_user_credentials", "user_token_required")],
)
def test_principal_guards(member, admin, new_key, principal_of, method, expected):
    getattr(principal_of(admin), method)()  # a signed-in admin passes both
    offender = principal_of(member) if method == "require_admin" else principals.authenticate_api_key(
        new_key(admin).secret
    )
    with pytest.raises(PermissionDenied) as caught:
        getattr(offender, method)()
    assert caught.value.code == expected


def test_a_key_principal_carries_the_keys_own_rate_limit(member, principal_of, new_key):
    limited = api_keys.create_key(principal_of(member), "k", ["predict"], rate_limit_per_minute=7)
    assert principals.authenticate_api_key(limited.secret).key_rate_limit == 7
    assert principals.authenticate_api_key(limited.secret).key_rate_limit == 7  # from the process cache
    assert principals.authenticate_api_key(new_key(member).secret).key_rate_limit is None
    assert principal_of(member).key_rate_limit is None


@pytest.fixture
def query_threads():
    """The thread of every SQL statement sent during the test."""
    threads: list[int] = []

    def record(*_):
        threads.append(threading.get_ident())

    engine = db.get_engine()
    event.listen(engine, "before_cursor_execute", record)
    yield threads
    event.remove(engine, "before_cursor_execute", record)


def test_a_new_key_is_looked_up_in_a_worker_thread_then_served_on_the_loop(member, new_key, query_threads):
    """On the prediction path: the first call of a key reaches the database off the event loop,
    the next is answered from the process cache without leaving it."""
    created = new_key(member)
    principals.forget_cached()
    query_threads.clear()
    steps: list[int] = []

    def step():
        steps.append(threading.get_ident())
        return principals.authenticate_api_key(created.secret)

    async def authenticate_twice():
        first = await cache.inline_or_in_thread(step)
        first_queries = list(query_threads)
        second = await cache.inline_or_in_thread(step)
        return threading.get_ident(), first, first_queries, second

    loop_thread, first, first_queries, second = asyncio.run(authenticate_twice())
    assert first.api_key_id == second.api_key_id == created.record.id
    assert len(steps) == 3 and steps[0] == loop_thread and steps[1] != loop_thread
    assert first_queries and set(first_queries) == {steps[1]}  # the database, from the worker only
    assert steps[2] == loop_thread and query_threads == first_queries  # inline, no query
