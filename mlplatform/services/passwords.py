"""Password rules and bcrypt hashing."""

from __future__ import annotations

import bcrypt

from mlplatform.config import get_settings
from mlplatform.errors import InvalidInput

MIN_LENGTH = 10
MAX_BYTES = 72  # bcrypt ignores (bcrypt>=5 refuses) anything longer


def check_rules(password: str, email: str) -> None:
    local_part = email.split("@", 1)[0].lower()
    if len(password) < MIN_LENGTH:
        raise InvalidInput(
            f"Password must be at least {MIN_LENGTH} characters",
            code="weak_password",
            details={"field": "password"},
        )
    if len(password.encode()) > MAX_BYTES:
        raise InvalidInput(
            f"Password must be at most {MAX_BYTES} bytes",
            code="weak_password",
            details={"field": "password"},
        )
    if local_part and local_part in password.lower():
        raise InvalidInput(
            "Password must not contain your email name",
            code="weak_password",
            details={"field": "password"},
        )


def hash_password(password: str) -> str:
    salt = bcrypt.gensalt(rounds=get_settings().bcrypt_rounds)
    return bcrypt.hashpw(password.encode(), salt).decode()


def verify_password(password: str, password_hash: str) -> bool:
    encoded = password.encode()
    if len(encoded) > MAX_BYTES:
        return False
    return bcrypt.checkpw(encoded, password_hash.encode())


def burn_time() -> None:
    """Spend one bcrypt check so unknown emails cost as long as wrong passwords."""
    bcrypt.checkpw(b"x", _dummy_hash())


_DUMMY: dict[int, bytes] = {}


def _dummy_hash() -> bytes:
    rounds = get_settings().bcrypt_rounds
    if rounds not in _DUMMY:
        _DUMMY[rounds] = bcrypt.hashpw(b"dummy-password", bcrypt.gensalt(rounds=rounds))
    return _DUMMY[rounds]
