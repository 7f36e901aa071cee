"""Signed JWTs (access tokens, browser sessions) and opaque secrets stored as hashes."""

from __future__ import annotations

import hashlib
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone

import jwt

from mlplatform.config import get_settings
from mlplatform.errors import AuthenticationFailed

ALGORITHM = "HS256"
ACCESS = "access"
SESSION = "session"
_REQUIRED_CLAIMS = ["sub", "exp", "iat", "jti", "typ"]


@dataclass(frozen=True)
class TokenClaims:
    user_id: uuid.UUID
    token_id: str
    family_id: str | None
    expires_at: datetime

    def seconds_left(self) -> int:
        return max(int((self.expires_at - datetime.now(timezone.utc)).total_seconds()), 0)


def issue(user_id: uuid.UUID, typ: str, lifetime: timedelta, family_id: str | None = None) -> str:
    now = datetime.now(timezone.utc)
    claims = {
        "sub": str(user_id),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "typ": typ,
    }
    if family_id:
        claims["fam"] = family_id
    return jwt.encode(claims, get_settings().secret_key, algorithm=ALGORITHM)


def verify(token: str, typ: str) -> TokenClaims:
    """Decode a JWT of the given type; anything else (alg=none, other algs, tampering) is refused."""
    try:
        claims = jwt.decode(
            token,
            get_settings().secret_key,
            algorithms=[ALGORITHM],
            options={"require": _REQUIRED_CLAIMS},
        )
        user_id = uuid.UUID(claims["sub"])
    except jwt.ExpiredSignatureError as exc:
        raise AuthenticationFailed("Token has expired", code="token_expired") from exc
    except (jwt.InvalidTokenError, ValueError, TypeError) as exc:
        raise AuthenticationFailed("Invalid token", code="invalid_token") from exc
    if claims["typ"] != typ:
        raise AuthenticationFailed("Invalid token type", code="invalid_token")
    return TokenClaims(
        user_id=user_id,
        token_id=str(claims["jti"]),
        family_id=claims.get("fam"),
        expires_at=datetime.fromtimestamp(claims["exp"], timezone.utc),
    )


def looks_like_jwt(credential: str) -> bool:
    return credential.count(".") == 2


def new_secret(nbytes: int = 32) -> str:
    return secrets.token_urlsafe(nbytes)


def hash_secret(secret: str) -> str:
    """SHA-256 is right for high-entropy random secrets (bcrypt is for passwords)."""
    return hashlib.sha256(secret.encode()).hexdigest()
