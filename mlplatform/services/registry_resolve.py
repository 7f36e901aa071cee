"""Which version serves a call: an explicit version number > an alias > the `production` alias if
set > the newest active version > the newest deprecated one. Deprecating every version warns
callers but does not cut them off; archiving does (archived versions never serve), and so does a
deprecated version's sunset time passing. A deleted model serves nothing.

Answers are cached per process for `registry_cache_seconds` (at most one second), because
resolving costs several queries and every prediction needs it. A registry change committed in a
process clears that process's cache at once (session events, so no write path can forget to);
other processes see it within the TTL, as with revoked API keys.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from functools import lru_cache
from pathlib import Path

from sqlalchemy import event, or_
from sqlalchemy.orm import Session as OrmSession
from sqlmodel import Session, col, select

from mlplatform import artifacts, cache, db
from mlplatform.config import get_settings
from mlplatform.errors import Conflict, Gone, NotFound
from mlplatform.models import MLModel, ModelAlias, ModelStatus, ModelVersion, VersionStatus, utcnow
from mlplatform.services import registry_common as common
from mlplatform.services.principals import Principal

PRODUCTION = "production"


@dataclass(frozen=True)
class ResolvedVersion:
    """What serving needs to know about the version that answers a call."""

    model_id: uuid.UUID
    model: str
    owner_id: uuid.UUID
    version_id: uuid.UUID
    version: int
    status: VersionStatus
    sha256: str
    path: Path
    signature: dict
    resolved_by: str  # "version" | "alias" | "production" | "latest"
    alias: str | None = None
    # the model's serving settings; None: the platform defaults (see rate_limits, prediction_cache)
    rate_limit_per_minute: int | None = None
    cache_ttl_seconds: int | None = None
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None


def resolve_version(
    principal: Principal, name: str, ref: int | str | None = None, *, owner: str | None = None
) -> ResolvedVersion:
    """The version that serves `name` for `ref` (a version number, an alias, or None). Checks
    ownership only: the caller checks the scope its transport needs (e.g. `predict`)."""
    cache_key = (principal.user_id, principal.role, owner, name, None if ref is None else str(ref))
    resolved = _resolved_versions().get_or_load(cache_key, lambda: _resolve(principal, name, ref, owner))
    if resolved.sunset_at is not None and resolved.sunset_at <= utcnow():
        raise Gone(f"Version {resolved.version} of '{name}' reached its sunset time "
                   f"{resolved.sunset_at.isoformat()} and no longer serves", code="version_sunset")
    return resolved


def forget_resolved() -> None:
    """Drop this process's cached resolutions (other processes follow within the TTL)."""
    _resolved_versions().clear()


@lru_cache
def _resolved_versions() -> cache.LocalTTLCache:
    return cache.LocalTTLCache(get_settings().registry_cache_seconds)


def _resolve(principal: Principal, name: str, ref: int | str | None, owner: str | None) -> ResolvedVersion:
    with db.session() as s:
        model = common.find_model(s, principal, name, owner)
        if model.status == ModelStatus.deleted:
            raise NotFound(f"Model '{name}' is deleted", code="model_deleted")
        if isinstance(ref, int) or (isinstance(ref, str) and ref.isdigit()):
            row = common.find_version(s, model, int(ref))
            if row.status == VersionStatus.archived:
                raise Conflict(f"Version {row.version} of '{name}' is archived and does not serve",
                               code="version_archived")
            return _resolved(model, row, "version")
        if ref is not None:
            alias = _alias_target(s, model, common.check_slug(ref, "alias"))
            if alias is None:
                raise NotFound(f"Model '{name}' has no alias '{ref}'", code="alias_not_found")
            return _resolved(model, alias, "alias", ref)
        production = _alias_target(s, model, PRODUCTION)
        if production is not None:
            return _resolved(model, production, "production", PRODUCTION)
        return _resolved(model, _latest_servable(s, model, name), "latest")


def _alias_target(s: Session, model: MLModel, alias: str) -> ModelVersion | None:
    return s.exec(
        select(ModelVersion)
        .join(ModelAlias, col(ModelAlias.version_id) == ModelVersion.id)
        .where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)
    ).first()


def _latest_servable(s: Session, model: MLModel, name: str) -> ModelVersion:
    for status in (VersionStatus.active, VersionStatus.deprecated):
        row = s.exec(
            select(ModelVersion)
            .where(ModelVersion.model_id == model.id, ModelVersion.status == status)
            .where(or_(col(ModelVersion.sunset_at).is_(None), col(ModelVersion.sunset_at) > utcnow()))
            .order_by(col(ModelVersion.version).desc())
            .limit(1)
        ).first()
        if row is not None:
            return row
    raise NotFound(f"Model '{name}' has no version that serves", code="no_servable_version")


def _resolved(model: MLModel, row: ModelVersion, how: str, alias: str | None = None) -> ResolvedVersion:
    return ResolvedVersion(
        model.id, model.name, model.owner_id, row.id, row.version, row.status, row.sha256,
        artifacts.path_for(row.sha256, get_settings()), row.signature, how, alias,
        model.rate_limit_per_minute, model.cache_ttl_seconds, row.deprecated_at, row.sunset_at,
    )


# Registry writes clear the resolution cache when their transaction commits, whichever service
# made them (ORM changes and bulk UPDATE/DELETE statements alike).
_REGISTRY_TABLES = (MLModel, ModelVersion, ModelAlias)
_CHANGED = "registry_changed"


@event.listens_for(OrmSession, "after_flush")
def _note_changed_rows(session: OrmSession, _context) -> None:
    touched = (*session.new, *session.dirty, *session.deleted)
    if any(isinstance(obj, _REGISTRY_TABLES) for obj in touched):
        session.info[_CHANGED] = True


@event.listens_for(OrmSession, "do_orm_execute")
def _note_bulk_change(state) -> None:
    if (state.is_update or state.is_delete) and state.bind_mapper is not None \
            and state.bind_mapper.class_ in _REGISTRY_TABLES:
        state.session.info[_CHANGED] = True


@event.listens_for(OrmSession, "after_commit")
def _forget_on_commit(session: OrmSession) -> None:
    if session.info.pop(_CHANGED, False):
        forget_resolved()


@event.listens_for(OrmSession, "after_rollback")
def _discard_note(session: OrmSession) -> None:
    session.info.pop(_CHANGED, None)
