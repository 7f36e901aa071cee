import hashlib
import re
import uuid
from datetime import datetime, timedelta, timezone

import pytest
from sqlalchemy import text

from mlplatform import db
from mlplatform.errors import AuthenticationFailed, Conflict, InvalidInput, NotFound, PermissionDenied
from mlplatform.services import api_keys, principals


def auth_failure(secret: str) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        principals.authenticate_api_key(secret)
    return caught.value.code


def test_create_shows_the_secret_once_and_stores_only_its_sha256(member, new_key, stored_key):
    created = new_key(member, ["models:read", "predict"], name="  nightly scoring ")
    assert re.fullmatch(r"mlp_[0-9a-f]{8}", created.record.prefix)
    assert created.secret.startswith(created.record.prefix + "_") and len(created.secret) > 40

    row = stored_key(created.record.id)
    assert row.key_hash == hashlib.sha256(created.secret.encode()).hexdigest()
    assert row.name == "nightly scoring"
    assert row.scopes == ["predict", "models:read"]  # known scopes, in their canonical order
    with db.get_engine().connect() as conn:
        dumped = " ".join(str(v) for v in conn.execute(text("SELECT * FROM api_keys")).one())
    assert created.secret.split("_", 2)[2] not in dumped


def test_list_returns_the_callers_keys_newest_first_without_secrets(admin, member, new_key, principal_of):
    older = new_key(member, name="older")
    newer = new_key(member, name="newer")
    new_key(admin, name="someone else's")
    listed = api_keys.list_keys(principal_of(member))
    assert [k.id for k in listed] == [newer.record.id, older.record.id]
    assert all(not hasattr(k, "secret") and not hasattr(k, "key") for k in listed)


@pytest.mark.parametrize("scopes", [["predict", "root"], ["*"], []])
def test_scopes_are_validated(member, new_key, scopes):
    with pytest.raises(InvalidInput) as caught:
        new_key(member, scopes)
    assert caught.value.details["field"] == "scopes"


def test_every_documented_scope_can_be_granted(member, new_key):
    scopes = ["predict", "models:read", "models:write", "jobs", "experiments", "analytics"]
    assert new_key(member, scopes).record.scopes == scopes


@pytest.mark.parametrize("name", ["", "   ", "x" * 101, "tab\there", "nul\x00byte"])
def test_key_names_must_be_short_printable_text(member, new_key, name):
    with pytest.raises(InvalidInput) as caught:
        new_key(member, name=name)
    assert caught.value.details == {"field": "name"}


@pytest.mark.parametrize(
    "expires_at",
    [
        datetime.now(timezone.utc) - timedelta(seconds=1),
        datetime.now(timezone.utc).replace(tzinfo=None) - timedelta(minutes=1),  # naive = UTC
        datetime(9999, 12, 31, 23, 59, tzinfo=timezone(timedelta(hours=-14))),  # past year 9999 in UTC
    ],
)
def test_expiries_in_the_past_or_out_of_range_are_refused(member, new_key, expires_at):
    with pytest.raises(InvalidInput) as caught:
        new_key(member, expires_at=expires_at)
    assert caught.value.details["field"] == "expires_at"


def test_a_future_expiry_is_stored_in_utc(member, new_key, stored_key):
    local = datetime.now(timezone(timedelta(hours=5))) + timedelta(days=1)
    created = new_key(member, expires_at=local)
    assert stored_key(created.record.id).expires_at == local
    assert created.record.expires_at.utcoffset() == timedelta(0)


def test_an_account_has_at_most_100_active_keys(member, new_key, principal_of):
    keys = [new_key(member, name=f"k{n}") for n in range(api_keys.MAX_ACTIVE_KEYS)]
    with pytest.raises(Conflict) as caught:
        new_key(member)
    assert caught.value.code == "too_many_keys"
    api_keys.revoke_key(principal_of(member), keys[0].record.id)
    new_key(member)  # revoked keys do not count


def test_revoke_refuses_the_key_at_once_in_this_process(member, new_key, principal_of, stored_key):
    created = new_key(member)
    principals.authenticate_api_key(created.secret)  # cached now
    revoked = api_keys.revoke_key(principal_of(member), created.record.id)
    assert revoked.revoked_at is not None
    assert stored_key(created.record.id).revoked_at is not None
    assert auth_failure(created.secret) == "api_key_revoked"


def test_revoking_twice_keeps_the_first_revocation_time(member, new_key, principal_of):
    created = new_key(member)
    first = api_keys.revoke_key(principal_of(member), created.record.id).revoked_at
    assert api_keys.revoke_key(principal_of(member), created.record.id).revoked_at == first


def test_another_users_key_is_not_found(admin, member, new_key, principal_of, stored_key):
    theirs = new_key(admin)
    for attempt in (theirs.record.id, uuid.uuid4()):
        with pytest.raises(NotFound) as caught:
            api_keys.revoke_key(principal_of(member), attempt)
        assert caught.value.code == "api_key_not_found"
    assert stored_key(theirs.record.id).revoked_at is None
    assert principals.authenticate_api_key(theirs.secret).user_id == admin.id


def test_api_key_principals_cannot_manage_keys(admin, new_key):
    created = new_key(admin, ["predict", "models:write"])
    as_key = principals.authenticate_api_key(created.secret)
    attempts = [
        lambda: api_keys.create_key(as_key, "minted by a key", ["predict"]),
        lambda: api_keys.list_keys(as_key),
        lambda: api_keys.revoke_key(as_key, created.record.id),
    ]
    for attempt in attempts:
        with pytest.raises(PermissionDenied) as caught:
            attempt()
        assert caught.value.code == "user_token_required"


def test_a_key_may_have_its_own_rate_limit(member, principal_of, stored_key):
    created = api_keys.create_key(principal_of(member), "k", ["predict"], rate_limit_per_minute=30)
    assert created.record.rate_limit_per_minute == stored_key(created.record.id).rate_limit_per_minute == 30
    default = api_keys.create_key(principal_of(member), "d", ["predict"])
    assert stored_key(default.record.id).rate_limit_per_minute is None


@pytest.mark.parametrize("bad", [0, -5, 2**31, True])
def test_a_keys_rate_limit_is_a_positive_whole_number(member, principal_of, bad):
    with pytest.raises(InvalidInput) as caught:
        api_keys.create_key(principal_of(member), "k", ["predict"], rate_limit_per_minute=bad)
    assert caught.value.details == {"field": "rate_limit_per_minute"}
    assert api_keys.list_keys(principal_of(member)) == []
