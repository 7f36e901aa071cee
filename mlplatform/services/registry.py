"""The model registry's entry point: registered models (create, list, get, update, soft-delete)
here, and the version and alias functions re-exported, so callers use `registry.<function>`.

Ownership: every query filters on the owner. Another user's model answers 404 exactly like a
missing one. Administrators see every model in lists and address another user's model by passing
`owner=<email>` (without it they act on their own models, like everyone else).

Soft delete: a deleted model keeps its rows, versions, aliases and files, drops out of default
listings and never serves; its name stays taken, and `status: active` restores it (so a mistaken
delete is one call to undo, and a name always means one model).
"""

from __future__ import annotations

from collections.abc import Iterable
from enum import Enum

from sqlalchemy import String, cast, or_
from sqlalchemy.exc import IntegrityError
from sqlmodel import col, func, select

from mlplatform import db
from mlplatform.errors import Conflict, InvalidInput
from mlplatform.models import MLModel, ModelList, ModelPublic, ModelStatus, Scope, utcnow
from mlplatform.services.prediction_cache import clean_cache_ttl
from mlplatform.services.principals import Principal
from mlplatform.services.rate_limits import clean_rate_limit
from mlplatform.services.registry_aliases import delete_alias, list_aliases, rollback_alias, set_alias
from mlplatform.services.registry_common import (
    NAME_RULES,
    check_new_model_name,
    check_slug,
    clamp_page,
    clean_description,
    clean_tags,
    find_model,
    owner_id_for,
    parse_status,
    public_models,
    require_live,
)
from mlplatform.services.registry_resolve import ResolvedVersion, resolve_version
from mlplatform.services.registry_versions import get_version, list_versions, update_version, upload_version

__all__ = [
    "NAME_RULES", "UNCHANGED", "ResolvedVersion", "create_model", "delete_alias", "delete_model",
    "get_model", "get_version", "list_aliases", "list_models", "list_versions", "resolve_version",
    "rollback_alias", "set_alias", "update_model", "update_version", "upload_version",
]


class _Unchanged(Enum):
    UNCHANGED = "unchanged"


# "leave as is" for settings where None means something (the platform default)
UNCHANGED = _Unchanged.UNCHANGED


def create_model(
    principal: Principal, name: str, description: str = "", tags: Iterable[str] = (), *, owner: str | None = None
) -> ModelPublic:
    principal.require_scope(Scope.models_write.value)
    check_new_model_name(name)
    description, tags = clean_description(description), clean_tags(tags)
    try:
        with db.session() as s:
            model = MLModel(owner_id=owner_id_for(s, principal, owner), name=name,
                            description=description, tags=tags)
            s.add(model)
            s.flush()
            return public_models(s, [model])[0]
    except IntegrityError as exc:
        raise Conflict(
            f"A model named '{name}' already exists (a deleted one can be restored)", code="model_exists"
        ) from exc


def list_models(
    principal: Principal,
    page: int = 1,
    per_page: int = 20,
    q: str = "",
    status: ModelStatus | str | None = None,
    tag: str | None = None,
    owner: str | None = None,
) -> ModelList:
    """Newest activity first. Deleted models only when asked for with `status="deleted"`.
    Administrators see every owner's models unless `owner` narrows it."""
    principal.require_scope(Scope.models_read.value)
    page, per_page = clamp_page(page, per_page)
    query = _search(select(MLModel).where(MLModel.status == _status(status)), q, tag)
    with db.session() as s:
        if owner or not principal.is_admin:
            query = query.where(MLModel.owner_id == owner_id_for(s, principal, owner))
        total = s.exec(select(func.count()).select_from(query.subquery())).one()
        newest_first = query.order_by(col(MLModel.updated_at).desc(), col(MLModel.id))
        models = s.exec(newest_first.offset((page - 1) * per_page).limit(per_page)).all()
        items = public_models(s, list(models))
    return ModelList(items=items, total=total, page=page, per_page=per_page)


def get_model(principal: Principal, name: str, *, owner: str | None = None) -> ModelPublic:
    principal.require_scope(Scope.models_read.value)
    with db.session() as s:
        return public_models(s, [find_model(s, principal, name, owner)])[0]


def update_model(
    principal: Principal,
    name: str,
    *,
    description: str | None = None,
    tags: Iterable[str] | None = None,
    status: ModelStatus | str | None = None,
    rate_limit_per_minute: int | None | _Unchanged = UNCHANGED,
    cache_ttl_seconds: int | None | _Unchanged = UNCHANGED,
    owner: str | None = None,
) -> ModelPublic:
    """Change only what is given. A deleted model's description, tags and serving settings
    change only together with `status="active"` (restoring it). `rate_limit_per_minute` and
    `cache_ttl_seconds` take None for "the platform default" (UNCHANGED leaves them as they are);
    a TTL of 0 turns the prediction cache off for this model."""
    principal.require_scope(Scope.models_write.value)
    new_status = _status(status) if status is not None else None
    serving = {}
    if rate_limit_per_minute is not UNCHANGED:
        serving["rate_limit_per_minute"] = clean_rate_limit(rate_limit_per_minute)
    if cache_ttl_seconds is not UNCHANGED:
        serving["cache_ttl_seconds"] = clean_cache_ttl(cache_ttl_seconds)
    with db.session() as s:
        model = find_model(s, principal, name, owner)
        if new_status != ModelStatus.active and (description is not None or tags is not None or serving):
            require_live(model)
        if description is not None:
            model.description = clean_description(description)
        if tags is not None:
            model.tags = clean_tags(tags)
        for field, value in serving.items():
            setattr(model, field, value)
        if new_status is not None:
            model.status = new_status
        model.updated_at = utcnow()
        s.add(model)
        s.flush()
        return public_models(s, [model])[0]


def delete_model(principal: Principal, name: str, *, owner: str | None = None) -> ModelPublic:
    """Soft delete (idempotent): rows, versions, aliases and files all stay."""
    principal.require_scope(Scope.models_write.value)
    with db.session() as s:
        model = find_model(s, principal, name, owner)
        if model.status != ModelStatus.deleted:
            model.status = ModelStatus.deleted
            model.updated_at = utcnow()
            s.add(model)
            s.flush()
        return public_models(s, [model])[0]


def _status(status: ModelStatus | str | None) -> ModelStatus:
    return ModelStatus.active if status is None else parse_status(ModelStatus, status, "model")


def _search(query, q: str, tag: str | None):
    q = q.strip().lower()
    if "\x00" in q:
        raise InvalidInput("Search text must not contain NUL characters", details={"field": "q"})
    if q:
        query = query.where(or_(col(MLModel.name).contains(q, autoescape=True),
                                func.lower(MLModel.description).contains(q, autoescape=True)))
    if tag:
        # tags are slugs, so '"<tag>"' occurs in the JSON text exactly when the list holds the tag
        quoted = f'"{check_slug(tag, "tag")}"'
        query = query.where(cast(MLModel.tags, String).contains(quoted, autoescape=True))
    return query
