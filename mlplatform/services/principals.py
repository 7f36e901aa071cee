"""Who is calling: turn a credential (access token, API key, browser session) into a Principal.

Lookups go through a per-process cache whose TTL (`auth_cache_seconds`, at most one second)
bounds how long a revoked key, a logged-out token or a deactivated user can still be seen.
"""

from __future__ import annotations

import time
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from functools import lru_cache

from sqlmodel import select, update

from mlplatform import cache, db
from mlplatform.config import get_settings
from mlplatform.errors import AuthenticationFailed, PermissionDenied
from mlplatform.models import ApiKey, Role, User
from mlplatform.services import tokens

LAST_USED_RESOLUTION_SECONDS = 60


@dataclass(frozen=True)
class Principal:
    user_id: uuid.UUID
    email: str
    role: Role
    auth_method: str  # "access_token" | "api_key" | "session"
    scopes: frozenset[str] | None = None  # None: the user's full rights
    api_key_id: uuid.UUID | None = None
    token: tokens.TokenClaims | None = None
    # the API key's own predictions-per-minute limit (None: the platform default, or not a key)
    key_rate_limit: int | None = None

    @property
    def is_admin(self) -> bool:
        return self.role == Role.admin

    def require_scope(self, scope: str) -> None:
        if self.scopes is not None and scope not in self.scopes:
            raise PermissionDenied(
                f"This API key lacks the '{scope}' scope", code="insufficient_scope"
            )

    def require_user_credentials(self) -> None:
        if self.api_key_id is not None:
            raise PermissionDenied(
                "API keys cannot manage accounts or keys; sign in instead", code="user_token_required"
            )

    def require_admin(self) -> None:
        if not self.is_admin:
            raise PermissionDenied("Administrator rights required", code="admin_required")


@dataclass(frozen=True)
class _UserSnapshot:
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool


@dataclass(frozen=True)
class _KeySnapshot:
    id: uuid.UUID
    owner: _UserSnapshot
    scopes: frozenset[str]
    expires_at: datetime | None
    revoked: bool
    rate_limit_per_minute: int | None = None


@lru_cache
def _users() -> cache.LocalTTLCache:
    return cache.LocalTTLCache(get_settings().auth_cache_seconds)


@lru_cache
def _keys() -> cache.LocalTTLCache:
    return cache.LocalTTLCache(get_settings().auth_cache_seconds)


_last_touched: dict[uuid.UUID, float] = {}


def authenticate_bearer(credential: str) -> Principal:
    """`Authorization: Bearer` carries either an access token (a JWT) or an API key."""
    if tokens.looks_like_jwt(credential):
        return authenticate_token(credential, tokens.ACCESS)
    return authenticate_api_key(credential)


def authenticate_token(token: str, typ: str) -> Principal:
    claims = tokens.verify(token, typ)
    if cache.denylisted(claims.token_id):
        raise AuthenticationFailed("Token has been revoked", code="token_revoked")
    user = _active_user(claims.user_id)
    method = "session" if typ == tokens.SESSION else "access_token"
    return Principal(user.id, user.email, user.role, method, token=claims)


def authenticate_api_key(secret: str) -> Principal:
    found = _keys().get_or_load(tokens.hash_secret(secret), lambda: _load_key(secret))
    if found is None:
        raise AuthenticationFailed("Unknown API key", code="invalid_api_key")
    if found.revoked:
        raise AuthenticationFailed("API key has been revoked", code="api_key_revoked")
    if found.expires_at is not None and found.expires_at <= datetime.now(timezone.utc):
        raise AuthenticationFailed("API key has expired", code="api_key_expired")
    if not found.owner.is_active:
        raise AuthenticationFailed("Account is deactivated", code="account_deactivated")
    _touch(found.id)
    owner = found.owner
    return Principal(owner.id, owner.email, owner.role, "api_key", found.scopes, found.id,
                     key_rate_limit=found.rate_limit_per_minute)


def forget_cached() -> None:
    """Drop this process's cached lookups (other processes follow within the TTL)."""
    _keys().clear()
    _users().clear()


def _active_user(user_id: uuid.UUID) -> _UserSnapshot:
    user = _users().get_or_load(user_id, lambda: _load_user(user_id))
    if user is None:
        raise AuthenticationFailed("Unknown account", code="invalid_token")
    if not user.is_active:
        raise AuthenticationFailed("Account is deactivated", code="account_deactivated")
    return user


def _load_user(user_id: uuid.UUID) -> _UserSnapshot | None:
    with db.session() as s:
        user = s.get(User, user_id)
        return _snapshot(user) if user else None


def _load_key(secret: str) -> _KeySnapshot | None:
    with db.session() as s:
        row = s.exec(
            select(ApiKey, User)
            .join(User, User.id == ApiKey.owner_id)
            .where(ApiKey.key_hash == tokens.hash_secret(secret))
        ).first()
    if row is None:
        return None
    key, owner = row
    return _KeySnapshot(
        key.id, _snapshot(owner), frozenset(key.scopes), key.expires_at, key.revoked_at is not None,
        key.rate_limit_per_minute,
    )


def _snapshot(user: User) -> _UserSnapshot:
    return _UserSnapshot(user.id, user.email, user.role, user.is_active)


def _touch(key_id: uuid.UUID) -> None:
    """Record last use at minute resolution: one UPDATE per key per minute per process."""
    now = time.monotonic()
    if now - _last_touched.get(key_id, -LAST_USED_RESOLUTION_SECONDS) < LAST_USED_RESOLUTION_SECONDS:
        return
    cache.may_block()
    _last_touched[key_id] = now
    with db.session() as s:
        s.exec(update(ApiKey).where(ApiKey.id == key_id).values(last_used_at=datetime.now(timezone.utc)))
