import pytest

from mlplatform.config import Settings
from mlplatform.errors import InvalidInput
from mlplatform.services import passwords

EMAIL = "ada.lovelace@example.com"


@pytest.mark.parametrize("password", ["short", "nine char", ""])
def test_passwords_under_ten_characters_are_refused(password):
    with pytest.raises(InvalidInput) as caught:
        passwords.check_rules(password, EMAIL)
    assert caught.value.code == "weak_password"
    assert caught.value.details == {"field": "password"}


def test_ten_characters_are_enough():
    passwords.check_rules("0123456789", EMAIL)


@pytest.mark.parametrize("password", ["my ada.lovelace pass", "ADA.LOVELACE-forever"])
def test_passwords_containing_the_email_local_part_are_refused(password):
    with pytest.raises(InvalidInput) as caught:
        passwords.check_rules(password, EMAIL)
    assert caught.value.code == "weak_password"
    assert "email" in caught.value.message


@pytest.mark.parametrize("password", ["x" * 73, "é" * 37])  # 73 bytes; 37 characters but 74 bytes
def test_passwords_over_72_bytes_are_refused(password):
    with pytest.raises(InvalidInput) as caught:
        passwords.check_rules(password, EMAIL)
    assert caught.value.code == "weak_password"


def test_exactly_72_bytes_are_accepted():
    passwords.check_rules("é" * 36, EMAIL)


def test_hash_uses_bcrypt_at_the_configured_cost_and_verifies():
    hashed = passwords.hash_password("correct horse battery")
    assert hashed.startswith("$2b$04$")  # MLPLATFORM_BCRYPT_ROUNDS=4 in the test environment
    assert passwords.verify_password("correct horse battery", hashed)
    assert not passwords.verify_password("correct horse battery!", hashed)


def test_verifying_an_over_long_password_is_false_not_an_error():
    hashed = passwords.hash_password("x" * 72)
    assert passwords.verify_password("x" * 72, hashed)
    assert not passwords.verify_password("x" * 73, hashed)


def test_default_bcrypt_cost_is_12(monkeypatch):
    monkeypatch.delenv("MLPLATFORM_BCRYPT_ROUNDS", raising=False)
    fresh = Settings(_env_file=None)
    assert fresh.bcrypt_rounds == 12
    monkeypatch.setattr(passwords, "get_settings", lambda: fresh)
    assert passwords.hash_password("correct horse battery").startswith("$2b$12$")
