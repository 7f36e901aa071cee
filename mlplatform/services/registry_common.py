"""What the registry services share: name rules, owner resolution, model lookup, the model row
lock, and the public view of models.

Ownership: every lookup filters on the owner, and another user's model answers 404 exactly like
a missing one. Administrators address another user's model by passing `owner=<email>`.
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterable
from enum import Enum
from typing import TypeVar

from sqlalchemy import update
from sqlmodel import Session, col, select

from mlplatform.errors import Conflict, InvalidInput, NotFound
from mlplatform.models import (
    MAX_DESCRIPTION,
    MAX_TAGS,
    MAX_VERSION,
    MLModel,
    ModelAlias,
    ModelPublic,
    ModelStatus,
    ModelVersion,
    User,
    VersionPublic,
    utcnow,
)
from mlplatform.services.principals import Principal

E = TypeVar("E", bound=Enum)

MAX_PAGE_SIZE = 100
MAX_PAGE = 1_000_000  # keeps OFFSET inside a 64-bit integer
_SLUG = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}")
NAME_RULES = "1-64 characters: lowercase letters, digits, '-' and '_', starting with a letter or digit"


def check_slug(value: object, field: str) -> str:
    if not isinstance(value, str) or not _SLUG.fullmatch(value):
        shown = value[:80] if isinstance(value, str) else value
        raise InvalidInput(
            f"Invalid {field} {shown!r}: use {NAME_RULES}", code=f"invalid_{field}", details={"field": field}
        )
    return value


# Names the dashboard uses as pages under /models/ (a model called "upload" could not be opened).
RESERVED_MODEL_NAMES = frozenset({"upload"})


def check_new_model_name(name: object) -> str:
    check_slug(name, "name")
    if name in RESERVED_MODEL_NAMES:
        raise InvalidInput(f"The name {name!r} is reserved; choose another", code="invalid_name",
                           details={"field": "name"})
    return name


def clean_description(value: str) -> str:
    value = value.strip()
    if len(value) > MAX_DESCRIPTION or "\x00" in value:
        raise InvalidInput(
            f"Description must be at most {MAX_DESCRIPTION} characters, without NUL",
            details={"field": "description"},
        )
    return value


def clean_tags(tags: Iterable[str]) -> list[str]:
    unique = list(dict.fromkeys(check_slug(t, "tag") for t in tags))
    if len(unique) > MAX_TAGS:
        raise InvalidInput(f"At most {MAX_TAGS} tags", details={"field": "tags"})
    return unique


def owner_id_for(s: Session, principal: Principal, owner: str | None) -> uuid.UUID:
    """Whose models the call addresses: the caller's, or (administrators only) `owner`'s."""
    email = (owner or "").strip().lower()
    if not email or email == principal.email:
        return principal.user_id
    found = s.exec(select(User.id).where(User.email == email)).first() if principal.is_admin else None
    if found is None:  # same answer whether or not the account exists, for non-administrators
        raise NotFound(f"No models of '{email[:320]}' that you can see", code="owner_not_found")
    return found


def find_model(s: Session, principal: Principal, name: str, owner: str | None = None) -> MLModel:
    check_slug(name, "name")
    owner_id = owner_id_for(s, principal, owner)
    model = s.exec(select(MLModel).where(MLModel.owner_id == owner_id, MLModel.name == name)).first()
    if model is None:
        raise NotFound(f"Model '{name}' not found", code="model_not_found")
    return model


def require_live(model: MLModel) -> None:
    if model.status == ModelStatus.deleted:
        raise Conflict(
            f"Model '{model.name}' is deleted; restore it (status active) to change it",
            code="model_deleted",
        )


def lock_model(s: Session, model: MLModel) -> None:
    """Take the model row's write lock first thing in a transaction that changes its versions or
    aliases: concurrent changes to one model then run one after the other (PostgreSQL row lock,
    SQLite's single writer), so checks like "no alias points at an archived version" hold."""
    s.exec(update(MLModel).where(col(MLModel.id) == model.id).values(updated_at=utcnow()))


def clamp_page(page: int, per_page: int) -> tuple[int, int]:
    return min(max(page, 1), MAX_PAGE), min(max(per_page, 1), MAX_PAGE_SIZE)


def public_models(s: Session, models: list[MLModel]) -> list[ModelPublic]:
    """ModelPublic for each model, with owner emails and aliases fetched in one query each."""
    ids = [m.id for m in models]
    emails = dict(s.exec(select(User.id, User.email).where(col(User.id).in_({m.owner_id for m in models}))).all())
    aliases: dict[uuid.UUID, dict[str, int]] = {i: {} for i in ids}
    rows = s.exec(
        select(ModelAlias.model_id, ModelAlias.alias, ModelVersion.version)
        .join(ModelVersion, col(ModelVersion.id) == ModelAlias.version_id)
        .where(col(ModelAlias.model_id).in_(ids))
        .order_by(col(ModelAlias.alias))
    ).all()
    for model_id, alias, version in rows:
        aliases[model_id][alias] = version
    return [
        ModelPublic(
            id=m.id, name=m.name, owner_email=emails[m.owner_id], description=m.description, tags=m.tags,
            status=m.status, latest_version=m.last_version or None, aliases=aliases[m.id],
            created_at=m.created_at, updated_at=m.updated_at,
            rate_limit_per_minute=m.rate_limit_per_minute, cache_ttl_seconds=m.cache_ttl_seconds,
        )
        for m in models
    ]


def find_version(s: Session, model: MLModel, version: int) -> ModelVersion:
    row = None if not 1 <= version <= MAX_VERSION else s.exec(
        select(ModelVersion).where(ModelVersion.model_id == model.id, ModelVersion.version == version)
    ).first()
    if row is None:
        raise NotFound(f"Model '{model.name}' has no version {version}", code="version_not_found")
    return row


def public_versions(s: Session, model: MLModel, rows: list[ModelVersion]) -> list[VersionPublic]:
    aliases: dict[uuid.UUID, list[str]] = {r.id: [] for r in rows}
    found = s.exec(
        select(ModelAlias.version_id, ModelAlias.alias)
        .where(col(ModelAlias.version_id).in_(list(aliases)))
        .order_by(col(ModelAlias.alias))
    ).all()
    for version_id, alias in found:
        aliases[version_id].append(alias)
    return [
        VersionPublic(
            id=r.id, model=model.name, version=r.version, status=r.status, description=r.description,
            sha256=r.sha256, size_bytes=r.size_bytes, filename=r.filename, format=r.format,
            signature=r.signature, load_seconds=r.load_seconds, memory_bytes=r.memory_bytes,
            aliases=aliases[r.id], created_by=r.created_by, created_at=r.created_at,
            deprecated_at=r.deprecated_at, sunset_at=r.sunset_at,
        )
        for r in rows
    ]


def parse_status(kind: type[E], value: E | str, noun: str) -> E:
    """`value` as a member of the status enum `kind`, else 422 listing the allowed values."""
    try:
        return kind(value)
    except ValueError:
        raise InvalidInput(
            f"Unknown {noun} status {str(value)[:40]!r}",
            details={"field": "status", "allowed": [member.value for member in kind]},
        ) from None
