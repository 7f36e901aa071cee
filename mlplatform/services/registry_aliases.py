"""Aliases: named pointers (e.g. `production`, `staging`) at versions of a model.

Setting an alias creates it or moves it in one transaction that holds the model row's lock, so
readers see the old target or the new one, never neither. An alias never points at an archived
version. Each alias remembers where it pointed before its last move; rolling back moves it there
(and a second rollback undoes the first). Once an alias moves, a background job loads its new
target into a model host, so the first call through the alias finds the model warm.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Callable

import redis
from sqlmodel import Session, col, select

from mlplatform import artifacts, db
from mlplatform.config import get_settings
from mlplatform.errors import Conflict, InvalidInput, NotFound
from mlplatform.inference.client import get_host_client
from mlplatform.models import AliasPublic, MLModel, ModelAlias, ModelVersion, Scope, VersionStatus, utcnow
from mlplatform.services import jobs, registry_common as common
from mlplatform.services.principals import Principal

log = logging.getLogger(__name__)


def set_alias(principal: Principal, name: str, alias: str, version: int, *, owner: str | None = None) -> AliasPublic:
    """Point `alias` at version number `version` (creating or moving it)."""
    return _move(principal, name, alias, owner, lambda s, model: common.find_version(s, model, version))


def rollback_alias(principal: Principal, name: str, alias: str, *, owner: str | None = None) -> AliasPublic:
    """Move `alias` back to where it pointed before its last move."""
    def previous(s: Session, model: MLModel) -> ModelVersion:
        row = _existing_alias(s, model, alias)
        if row.previous_version_id is None:
            raise Conflict(f"Alias '{alias}' has not been moved yet: nothing to roll back to",
                           code="nothing_to_roll_back")
        return s.get(ModelVersion, row.previous_version_id)

    return _move(principal, name, alias, owner, previous)


def _move(principal: Principal, name: str, alias: str, owner: str | None,
          target: Callable[[Session, MLModel], ModelVersion]) -> AliasPublic:
    """Point `alias` at `target` (found under the model's lock), then have the target warmed."""
    principal.require_scope(Scope.models_write.value)
    _check_alias(alias)
    with db.session() as s:
        model = _locked_live_model(s, principal, name, owner)
        moved = _point(s, principal, model, alias, target(s, model))
    _warm_later(moved.version_id)  # after the commit: the job must find the alias moved
    return moved


def warm_version(version_id: str) -> bool:
    """Load a version into the model host that will serve it (the job an alias move enqueues).
    False when the version is gone or archived meanwhile."""
    with db.session() as s:
        row = s.get(ModelVersion, uuid.UUID(version_id))
        if row is None or row.status == VersionStatus.archived:
            return False
        sha = row.sha256
    settings = get_settings()
    get_host_client(settings).load(sha, artifacts.path_for(sha, settings))
    return True


def _warm_later(version_id: uuid.UUID) -> None:
    try:
        jobs.enqueue(jobs.WARM_VERSION, str(version_id))
    except redis.RedisError as exc:  # warming is an optimisation: the alias has moved regardless
        log.warning("model not warmed after an alias move (redis unavailable): %s", exc)


def _existing_alias(s: Session, model: MLModel, alias: str) -> ModelAlias:
    row = _alias_row(s, model, alias)
    if row is None:
        raise NotFound(f"Model '{model.name}' has no alias '{alias}'", code="alias_not_found")
    return row


def delete_alias(principal: Principal, name: str, alias: str, *, owner: str | None = None) -> None:
    principal.require_scope(Scope.models_write.value)
    _check_alias(alias)
    with db.session() as s:
        model = _locked_live_model(s, principal, name, owner)
        s.delete(_existing_alias(s, model, alias))


def list_aliases(principal: Principal, name: str, *, owner: str | None = None) -> list[AliasPublic]:
    principal.require_scope(Scope.models_read.value)
    with db.session() as s:
        model = common.find_model(s, principal, name, owner)
        rows = s.exec(select(ModelAlias).where(ModelAlias.model_id == model.id).order_by(col(ModelAlias.alias))).all()
        return [_public(s, model, row) for row in rows]


def _locked_live_model(s: Session, principal: Principal, name: str, owner: str | None) -> MLModel:
    model = common.find_model(s, principal, name, owner)
    common.require_live(model)
    common.lock_model(s, model)
    return model


def _point(s: Session, principal: Principal, model: MLModel, alias: str, target: ModelVersion) -> AliasPublic:
    if target.status == VersionStatus.archived:
        raise Conflict(
            f"Version {target.version} of '{model.name}' is archived; an alias cannot point at it",
            code="version_archived",
        )
    row = _alias_row(s, model, alias)
    if row is None:
        row = ModelAlias(model_id=model.id, alias=alias, version_id=target.id, updated_by=principal.user_id)
    elif row.version_id != target.id:
        row.previous_version_id, row.version_id = row.version_id, target.id
    row.updated_by, row.updated_at = principal.user_id, utcnow()
    s.add(row)
    s.flush()
    return _public(s, model, row)


def _public(s: Session, model: MLModel, row: ModelAlias) -> AliasPublic:
    return AliasPublic(
        model=model.name, alias=row.alias, version=_number(s, row.version_id), version_id=row.version_id,
        previous_version=_number(s, row.previous_version_id) if row.previous_version_id else None,
        updated_at=row.updated_at, updated_by=row.updated_by,
    )


def _number(s: Session, version_id: uuid.UUID) -> int:
    return s.exec(select(ModelVersion.version).where(ModelVersion.id == version_id)).one()


def _check_alias(alias: str) -> None:
    common.check_slug(alias, "alias")
    if alias.isdigit():  # a number in a version reference means a version number
        raise InvalidInput(
            f"Alias {alias!r} must not be all digits (that reads as a version number)",
            code="invalid_alias", details={"field": "alias"},
        )


def _alias_row(s: Session, model: MLModel, alias: str) -> ModelAlias | None:
    return s.exec(select(ModelAlias).where(ModelAlias.model_id == model.id, ModelAlias.alias == alias)).first()
