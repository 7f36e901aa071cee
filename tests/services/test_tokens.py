import hashlib
import uuid
from datetime import datetime, timedelta, timezone

import jwt
import pytest

from mlplatform.errors import AuthenticationFailed
from mlplatform.services import tokens
from tests import forged_tokens as forge

USER = uuid.uuid4()


def refused(token: str, typ: str = tokens.ACCESS) -> str:
    with pytest.raises(AuthenticationFailed) as caught:
        tokens.verify(token, typ)
    return caught.value.code


def test_round_trip_is_hs256_with_the_required_claims(settings):
    token = tokens.issue(USER, tokens.ACCESS, timedelta(minutes=30), family_id="fam-1")
    assert jwt.get_unverified_header(token)["alg"] == "HS256"
    raw = jwt.decode(token, settings.secret_key, algorithms=["HS256"])
    assert {"sub", "exp", "iat", "jti", "typ"} <= raw.keys()
    assert raw["typ"] == "access" and raw["exp"] - raw["iat"] == 30 * 60

    claims = tokens.verify(token, tokens.ACCESS)
    assert claims.user_id == USER
    assert claims.token_id == raw["jti"]
    assert claims.family_id == "fam-1"
    assert 29 * 60 < claims.seconds_left() <= 30 * 60


def test_every_token_gets_its_own_jti():
    first = tokens.verify(tokens.issue(USER, tokens.ACCESS, timedelta(minutes=1)), tokens.ACCESS)
    second = tokens.verify(tokens.issue(USER, tokens.ACCESS, timedelta(minutes=1)), tokens.ACCESS)
    assert first.token_id != second.token_id


def test_alg_none_is_refused():
    assert refused(forge.alg_none(forge.claims_for(USER))) == "invalid_token"


def test_a_real_token_rewritten_to_alg_none_is_refused():
    token = tokens.issue(USER, tokens.ACCESS, timedelta(minutes=5))
    assert refused(forge.with_alg_none_header(token)) == "invalid_token"


@pytest.mark.filterwarnings("ignore::jwt.warnings.InsecureKeyLengthWarning")
@pytest.mark.parametrize("algorithm", ["HS512", "HS384"])
def test_other_algorithms_with_the_same_key_are_refused(settings, algorithm):
    token = forge.signed(forge.claims_for(USER), settings.secret_key, algorithm)
    assert refused(token) == "invalid_token"


def test_a_token_signed_with_another_key_is_refused():
    token = forge.signed(forge.claims_for(USER), "another-secret-key-0123456789abcdef")
    assert refused(token) == "invalid_token"


def test_wrong_typ_is_refused():
    session = tokens.issue(USER, tokens.SESSION, timedelta(minutes=5))
    access = tokens.issue(USER, tokens.ACCESS, timedelta(minutes=5))
    assert refused(session, tokens.ACCESS) == "invalid_token"
    assert refused(access, tokens.SESSION) == "invalid_token"


def test_expired_token_is_refused_with_token_expired():
    token = tokens.issue(USER, tokens.ACCESS, timedelta(seconds=-5))
    assert refused(token) == "token_expired"


def test_tampered_payload_is_refused():
    token = tokens.issue(USER, tokens.ACCESS, timedelta(minutes=5))
    assert tokens.verify(token, tokens.ACCESS).user_id == USER  # the untouched token is fine
    assert refused(forge.with_payload(token, sub=str(uuid.uuid4()))) == "invalid_token"
    far_future = int((datetime.now(timezone.utc) + timedelta(days=365)).timestamp())
    assert refused(forge.with_payload(token, exp=far_future)) == "invalid_token"


def test_tampered_signature_is_refused():
    token = tokens.issue(USER, tokens.ACCESS, timedelta(minutes=5))
    assert refused(forge.with_flipped_signature(token)) == "invalid_token"


@pytest.mark.parametrize("missing", ["sub", "exp", "iat", "jti", "typ"])
def test_missing_required_claims_are_refused(settings, missing):
    claims = forge.claims_for(USER)
    del claims[missing]
    assert refused(forge.signed(claims, settings.secret_key)) == "invalid_token"


@pytest.mark.parametrize("sub", ["not-a-uuid", 12345])
def test_a_subject_that_is_not_a_user_id_is_refused(settings, sub):
    claims = forge.claims_for(USER) | {"sub": sub}
    assert refused(forge.signed(claims, settings.secret_key)) == "invalid_token"


@pytest.mark.parametrize("junk", ["", "abc", "a.b.c", "x" * 500])
def test_junk_is_refused(junk):
    assert refused(junk) == "invalid_token"


def test_secrets_are_random_and_hashed_with_sha256():
    secret = tokens.new_secret()
    assert len(secret) >= 43 and tokens.new_secret() != secret
    assert tokens.hash_secret(secret) == hashlib.sha256(secret.encode()).hexdigest()


def test_only_three_part_credentials_look_like_jwts():
    assert tokens.looks_like_jwt(tokens.issue(USER, tokens.ACCESS, timedelta(minutes=1)))
    assert not tokens.looks_like_jwt("mlp_0123abcd_" + tokens.new_secret())
