"""API keys for programs: shown once, stored as a hash, found later by a visible prefix."""

from __future__ import annotations

import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone

from sqlmodel import col, func, select

from mlplatform import db
from mlplatform.errors import Conflict, InvalidInput, NotFound
from mlplatform.models import ApiKey, Scope, utcnow
from mlplatform.services import principals, tokens
from mlplatform.services.principals import Principal
from mlplatform.services.rate_limits import clean_rate_limit

KEY_MARK = "mlp"
MAX_ACTIVE_KEYS = 100
MAX_NAME_LENGTH = 100


@dataclass(frozen=True)
class CreatedKey:
    record: ApiKey
    secret: str


def create_key(
    principal: Principal,
    name: str,
    scopes: list[str],
    expires_at: datetime | None = None,
    *,
    rate_limit_per_minute: int | None = None,
) -> CreatedKey:
    """`rate_limit_per_minute` (None: the platform default) limits predictions through this key;
    the account's own window still applies, so a key's limit narrows, never widens, it."""
    principal.require_user_credentials()
    name = _clean_name(name)
    scope_values = _clean_scopes(scopes)
    expires_at = _clean_expiry(expires_at)
    rate_limit_per_minute = clean_rate_limit(rate_limit_per_minute)
    prefix = f"{KEY_MARK}_{secrets.token_hex(4)}"
    secret = f"{prefix}_{tokens.new_secret()}"
    with db.session() as s:
        active = s.exec(
            select(func.count())
            .select_from(ApiKey)
            .where(ApiKey.owner_id == principal.user_id, col(ApiKey.revoked_at).is_(None))
        ).one()
        if active >= MAX_ACTIVE_KEYS:
            raise Conflict(f"At most {MAX_ACTIVE_KEYS} active API keys per account", code="too_many_keys")
        record = ApiKey(
            owner_id=principal.user_id,
            name=name,
            prefix=prefix,
            key_hash=tokens.hash_secret(secret),
            scopes=scope_values,
            expires_at=expires_at,
            rate_limit_per_minute=rate_limit_per_minute,
        )
        s.add(record)
    return CreatedKey(record, secret)


def list_keys(principal: Principal) -> list[ApiKey]:
    principal.require_user_credentials()
    with db.session() as s:
        return list(
            s.exec(
                select(ApiKey)
                .where(ApiKey.owner_id == principal.user_id)
                .order_by(col(ApiKey.created_at).desc())
            ).all()
        )


def revoke_key(principal: Principal, key_id: uuid.UUID) -> ApiKey:
    """Revoke one of the caller's keys; every process refuses it within the auth cache TTL."""
    principal.require_user_credentials()
    with db.session() as s:
        record = s.get(ApiKey, key_id)
        if record is None or record.owner_id != principal.user_id:
            raise NotFound("API key not found", code="api_key_not_found")
        if record.revoked_at is None:
            record.revoked_at = utcnow()
            s.add(record)
    principals.forget_cached()
    return record


def _clean_name(name: str) -> str:
    name = name.strip()
    if not name or len(name) > MAX_NAME_LENGTH or not name.isprintable():
        raise InvalidInput(
            f"Key name must be 1 to {MAX_NAME_LENGTH} printable characters", details={"field": "name"}
        )
    return name


def _clean_scopes(scopes: list[str]) -> list[str]:
    known = {s.value for s in Scope}
    unknown = sorted(set(scopes) - known)
    if unknown:
        raise InvalidInput(
            f"Unknown scope(s): {', '.join(unknown)}", details={"field": "scopes", "allowed": sorted(known)}
        )
    if not scopes:
        raise InvalidInput("Choose at least one scope", details={"field": "scopes"})
    return [s.value for s in Scope if s.value in scopes]


def _clean_expiry(expires_at: datetime | None) -> datetime | None:
    if expires_at is None:
        return None
    if expires_at.tzinfo is None:
        expires_at = expires_at.replace(tzinfo=timezone.utc)
    try:
        expires_at = expires_at.astimezone(timezone.utc)
    except OverflowError as exc:  # e.g. 9999-12-31T23:59-14:00 is past year 9999 in UTC
        raise InvalidInput("Expiry is out of range", details={"field": "expires_at"}) from exc
    if expires_at <= datetime.now(timezone.utc):
        raise InvalidInput("Expiry must be in the future", details={"field": "expires_at"})
    return expires_at
