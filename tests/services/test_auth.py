from datetime import timedelta

import jwt
import pytest
from sqlmodel import select, update

from mlplatform import cache, db
from mlplatform.errors import Conflict, InvalidInput, RateLimited
from mlplatform.models import RefreshToken, Role, User, utcnow
from mlplatform.services import auth, principals, tokens, users

from tests.services.helpers import IP, PASSWORD, auth_failure_code


def refresh_rows(user_id) -> list[RefreshToken]:
    with db.session() as s:
        return list(s.exec(select(RefreshToken).where(RefreshToken.user_id == user_id)).all())


# --- register -------------------------------------------------------------------------------


def test_register_normalises_the_email():
    user = auth.register("  Ada.Lovelace@Example.COM \n", PASSWORD)
    assert user.email == "ada.lovelace@example.com"
    with db.session() as s:
        assert s.exec(select(User.email)).all() == ["ada.lovelace@example.com"]


def test_register_stores_a_bcrypt_hash_not_the_password():
    user = auth.register("ada@example.com", PASSWORD)
    assert user.password_hash.startswith("$2b$") and PASSWORD not in user.password_hash


def test_an_email_can_register_once_whatever_its_case():
    auth.register("ada@example.com", PASSWORD)
    with pytest.raises(Conflict) as caught:
        auth.register(" ADA@example.com", "another good password")
    assert caught.value.code == "email_taken"


@pytest.mark.parametrize("email", ["not-an-email", "a@", "@example.com", "a b@example.com", ""])
def test_invalid_emails_are_refused(email):
    with pytest.raises(InvalidInput) as caught:
        auth.register(email, PASSWORD)
    assert caught.value.code == "invalid_email"


def test_register_applies_the_password_rules_to_the_normalised_email():
    with pytest.raises(InvalidInput) as caught:
        auth.register("Grace@Example.com", "amazing grace 1906")
    assert caught.value.code == "weak_password"


def test_the_first_account_is_admin_and_later_ones_are_users():
    first = auth.register("first@example.com", PASSWORD)
    second = auth.register("second@example.com", PASSWORD)
    assert (first.role, second.role) == (Role.admin, Role.user)


# --- login and refresh ------------------------------------------------------------------------


def test_login_issues_a_30_minute_access_token_and_an_opaque_hashed_refresh_token(make_user, settings):
    user, password = make_user()
    pair = auth.login(user.email.upper(), password, IP)
    assert pair.token_type == "bearer" and pair.expires_in == 30 * 60
    claims = jwt.decode(pair.access_token, settings.secret_key, algorithms=["HS256"])
    assert claims["sub"] == str(user.id) and claims["typ"] == "access"
    assert claims["exp"] - claims["iat"] == 30 * 60

    assert not tokens.looks_like_jwt(pair.refresh_token)
    [row] = refresh_rows(user.id)
    assert row.token_hash == tokens.hash_secret(pair.refresh_token)
    assert timedelta(days=7) - timedelta(minutes=1) < row.expires_at - utcnow() <= timedelta(days=7)


def test_login_records_last_login(make_user):
    user, password = make_user()
    assert user.last_login_at is None
    auth.login(user.email, password, IP)
    assert users.get_user(user.id).last_login_at is not None


def test_wrong_password_and_unknown_account_fail_alike(make_user):
    user, _ = make_user()
    assert auth_failure_code(auth.login, user.email, "wrong password!", IP) == "invalid_credentials"
    assert auth_failure_code(auth.login, "nobody@example.com", PASSWORD, IP) == "invalid_credentials"


@pytest.mark.parametrize("email", ["nul\x00@example.com", "", "x" * 400])
def test_odd_emails_at_login_are_just_wrong_credentials(make_user, email):
    make_user()
    assert auth_failure_code(auth.login, email, PASSWORD, IP) == "invalid_credentials"


def test_refresh_rotates_the_token(make_user):
    user, password = make_user()
    first = auth.login(user.email, password, IP)
    second = auth.refresh(first.refresh_token)
    assert second.refresh_token != first.refresh_token
    assert second.access_token != first.access_token
    third = auth.refresh(second.refresh_token)
    assert tokens.verify(third.access_token, tokens.ACCESS).user_id == user.id
    rows = refresh_rows(user.id)
    assert len(rows) == 3 and len({r.family_id for r in rows}) == 1
    assert sum(r.rotated_at is None for r in rows) == 1


def test_reusing_a_rotated_refresh_token_revokes_the_whole_family(make_user):
    user, password = make_user()
    stolen = auth.login(user.email, password, IP)
    other_session = auth.login(user.email, password, IP)
    newest = auth.refresh(stolen.refresh_token)

    assert auth_failure_code(auth.refresh, stolen.refresh_token) == "refresh_token_reused"
    assert auth_failure_code(auth.refresh, newest.refresh_token) == "invalid_refresh_token"
    assert auth_failure_code(auth.refresh, stolen.refresh_token) == "invalid_refresh_token"
    auth.refresh(other_session.refresh_token)  # another login's family is untouched


def test_unknown_and_expired_refresh_tokens_are_refused(make_user):
    user, password = make_user()
    pair = auth.login(user.email, password, IP)
    assert auth_failure_code(auth.refresh, "not-a-refresh-token") == "invalid_refresh_token"
    with db.session() as s:
        s.exec(update(RefreshToken).values(expires_at=utcnow() - timedelta(seconds=1)))
    assert auth_failure_code(auth.refresh, pair.refresh_token) == "invalid_refresh_token"


# --- logout -------------------------------------------------------------------------------------


def test_logout_revokes_the_family_and_denylists_the_access_token(make_user, settings):
    user, password = make_user()
    pair = auth.login(user.email, password, IP)
    rotated = auth.refresh(pair.refresh_token)
    principal = principals.authenticate_token(rotated.access_token, tokens.ACCESS)

    auth.logout(principal)

    assert auth_failure_code(auth.refresh, rotated.refresh_token) == "invalid_refresh_token"
    assert auth_failure_code(principals.authenticate_token, rotated.access_token, tokens.ACCESS) == "token_revoked"
    jti = tokens.verify(rotated.access_token, tokens.ACCESS).token_id
    ttl = cache.get_redis().ttl(cache.key("deny", jti))
    assert settings.access_token_minutes * 60 - 60 < ttl <= settings.access_token_minutes * 60


def test_logout_leaves_other_logins_alone(make_user):
    user, password = make_user()
    kept = auth.login(user.email, password, IP)
    ended = auth.login(user.email, password, IP)
    auth.logout(principals.authenticate_token(ended.access_token, tokens.ACCESS))
    assert principals.authenticate_token(kept.access_token, tokens.ACCESS).user_id == user.id
    auth.refresh(kept.refresh_token)


# --- throttling ---------------------------------------------------------------------------------


def fail_logins(email: str, times: int, ip: str = IP) -> None:
    for _ in range(times):
        assert auth_failure_code(auth.login, email, "wrong password!", ip) == "invalid_credentials"


def test_five_failures_for_an_account_throttle_it_even_for_the_right_password(make_user, settings):
    user, password = make_user()
    fail_logins(user.email, 5)
    with pytest.raises(RateLimited) as caught:
        auth.login(user.email, password, "198.51.100.1")  # another address: the account counter
    assert 0 < caught.value.retry_after <= settings.login_window_seconds
    assert caught.value.details == {"retry_after": caught.value.retry_after}


def test_the_account_counter_ignores_email_case(make_user):
    user, password = make_user()
    fail_logins(user.email.upper(), 5)
    with pytest.raises(RateLimited):
        auth.login(user.email, password, IP)


def test_a_success_resets_the_account_counter(make_user):
    user, password = make_user()
    fail_logins(user.email, 4)
    auth.login(user.email, password, IP)
    fail_logins(user.email, 4)  # 8 failures in the window, but never 5 since the success
    auth.login(user.email, password, IP)


def test_twenty_failures_from_one_address_throttle_it_across_accounts(make_user):
    user, password = make_user()
    for n in range(4):
        fail_logins(f"victim{n}@example.com", 5)
    with pytest.raises(RateLimited) as caught:
        auth.login(user.email, password, IP)
    assert caught.value.retry_after > 0
    auth.login(user.email, password, "198.51.100.1")  # the account itself is not throttled


def test_deactivated_users_cannot_log_in(make_user, principal_of):
    admin, _ = make_user()
    user, password = make_user()
    users.set_active(principal_of(admin), user.id, False)
    assert auth_failure_code(auth.login, user.email, password, IP) == "account_deactivated"


def test_purge_deletes_only_refresh_tokens_that_expired_long_ago(make_user):
    user, password = make_user()
    auth.login(user.email, password, IP)
    with db.session() as s:
        for age in (timedelta(days=3), timedelta(hours=1)):
            s.add(RefreshToken(user_id=user.id, family_id=user.id, token_hash=tokens.hash_secret(str(age)),
                               expires_at=utcnow() - age))
    assert auth.purge_expired_refresh_tokens() == 1
    remaining = refresh_rows(user.id)
    assert len(remaining) == 2 and tokens.hash_secret(str(timedelta(days=3))) not in {
        r.token_hash for r in remaining
    }
