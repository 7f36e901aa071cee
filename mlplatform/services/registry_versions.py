"""Model versions: upload through the gate, list, get, change status and description.

A version exists only after a fresh sandboxed model host loaded the stored file and predicted on a
probe input (`HostClient.inspect`). A refused file leaves no row, and its bytes are removed unless
a version (of anyone) references them. Versions are numbered 1..N per model, never reused, and are
immutable apart from status and description.

Status rules: `active` and `deprecated` serve, `archived` never does. Any status may change to
any other (un-archiving is allowed: nothing about the file changed), but a version that an alias
points at cannot be archived: move or delete the alias first, so an alias never dangles.
Deprecating records when (callers get a `Deprecation` header) and may set a sunset time (a
`Sunset` header until then; afterwards the version no longer serves); leaving `deprecated`
clears both.
"""

from __future__ import annotations

import logging
import uuid
from collections.abc import Iterable
from datetime import datetime, timezone
from pathlib import Path
from typing import BinaryIO

from sqlalchemy import update
from sqlalchemy.exc import IntegrityError
from sqlmodel import Session, col, func, select

from mlplatform import artifacts, db
from mlplatform.config import Settings, get_settings
from mlplatform.errors import Conflict, InvalidInput, ModelRejected
from mlplatform.inference.client import get_host_client
from mlplatform.models import (
    MLModel,
    ModelAlias,
    ModelStatus,
    ModelVersion,
    Scope,
    VersionList,
    VersionPublic,
    VersionStatus,
    utcnow,
)
from mlplatform.services import registry_common as common
from mlplatform.services.principals import Principal

log = logging.getLogger(__name__)

MAX_FILENAME = 255
_MEASUREMENTS = ("load_seconds", "memory_bytes")


def upload_version(
    principal: Principal,
    name: str,
    source: Iterable[bytes] | BinaryIO,
    filename: str = "",
    description: str = "",
    *,
    owner: str | None = None,
) -> VersionPublic:
    """Store the file, run the upload gate, then record the next version (creating the model if
    `name` is new). Raises ModelRejected (the gate's code and reason), PayloadTooLarge,
    InvalidInput (empty file, bad name), Conflict (deleted model), ModelUnavailable."""
    principal.require_scope(Scope.models_write.value)
    common.check_slug(name, "name")
    filename, description = _clean_filename(filename), common.clean_description(description)
    settings = get_settings()
    with db.session() as s:  # fail fast, before the upload is stored and inspected
        owner_id = common.owner_id_for(s, principal, owner)
        existing = _model_of(s, owner_id, name)
        if existing is not None:
            common.require_live(existing)
        else:
            common.check_new_model_name(name)
    with artifacts.stored(source, settings) as artifact:
        try:
            report = _inspect(artifact.path, settings)
            model_id = _ensure_model(owner_id, name, description)
            version = _record(principal, model_id, artifact, report, filename, description)
        except BaseException as exc:
            _discard(artifact, principal, name, exc)
            raise
    log.info("model version created", extra={"user_id": str(principal.user_id), "model": name,
                                               "version": version.version, "sha256": artifact.sha256})
    return version


def list_versions(
    principal: Principal, name: str, page: int = 1, per_page: int = 50, *, owner: str | None = None
) -> VersionList:
    """Newest first."""
    principal.require_scope(Scope.models_read.value)
    page, per_page = common.clamp_page(page, per_page)
    with db.session() as s:
        model = common.find_model(s, principal, name, owner)
        query = select(ModelVersion).where(ModelVersion.model_id == model.id)
        total = s.exec(select(func.count()).select_from(query.subquery())).one()
        rows = s.exec(
            query.order_by(col(ModelVersion.version).desc()).offset((page - 1) * per_page).limit(per_page)
        ).all()
        items = common.public_versions(s, model, list(rows))
    return VersionList(items=items, total=total, page=page, per_page=per_page)


def get_version(principal: Principal, name: str, version: int, *, owner: str | None = None) -> VersionPublic:
    principal.require_scope(Scope.models_read.value)
    with db.session() as s:
        model = common.find_model(s, principal, name, owner)
        return common.public_versions(s, model, [common.find_version(s, model, version)])[0]


def update_version(
    principal: Principal,
    name: str,
    version: int,
    *,
    status: VersionStatus | str | None = None,
    description: str | None = None,
    sunset_at: datetime | None = None,
    owner: str | None = None,
) -> VersionPublic:
    """Change status (with its sunset time) and/or description; nothing else about a version
    ever changes."""
    principal.require_scope(Scope.models_write.value)
    new_status = common.parse_status(VersionStatus, status, "version") if status is not None else None
    with db.session() as s:
        model = common.find_model(s, principal, name, owner)
        common.require_live(model)
        common.lock_model(s, model)
        row = common.find_version(s, model, version)
        if new_status == VersionStatus.archived and row.status != VersionStatus.archived:
            _refuse_if_aliased(s, model, row)
        if new_status is not None:
            _set_status(row, new_status)
        if sunset_at is not None:
            row.sunset_at = _sunset(row, sunset_at)
        if description is not None:
            row.description = common.clean_description(description)
        s.add(row)
        s.flush()
        return common.public_versions(s, model, [row])[0]


def _set_status(row: ModelVersion, status: VersionStatus) -> None:
    if status == VersionStatus.deprecated and row.status != VersionStatus.deprecated:
        row.deprecated_at = utcnow()
    elif status != VersionStatus.deprecated:
        row.deprecated_at = row.sunset_at = None
    row.status = status


def _sunset(row: ModelVersion, sunset_at: datetime) -> datetime:
    if row.status != VersionStatus.deprecated:
        raise InvalidInput("Only a deprecated version can have a sunset time: deprecate it in the same call",
                           details={"field": "sunset_at"})
    if sunset_at.tzinfo is None or sunset_at <= utcnow():
        raise InvalidInput("The sunset time must be in the future and carry a time zone",
                           details={"field": "sunset_at"})
    return sunset_at.astimezone(timezone.utc)


def sha_referenced(sha256: str) -> bool:
    """Does any version (of any model, any status) use these bytes?"""
    with db.session() as s:
        return s.exec(select(ModelVersion.id).where(ModelVersion.sha256 == sha256).limit(1)).first() is not None


def _inspect(path: Path, settings: Settings) -> dict:
    """The upload gate (ModelRejected on refusal): a fresh sandboxed host loads and probes it."""
    return get_host_client(settings).inspect(path)


def _discard(artifact: artifacts.StoredArtifact, principal: Principal, name: str, exc: BaseException) -> None:
    """After a refusal or failure: log it, and remove the bytes unless a version uses them."""
    if isinstance(exc, ModelRejected):  # refusals are worth watching: they may be attacks
        log.warning("model upload refused", extra={
            "user_id": str(principal.user_id), "model": name, "sha256": artifact.sha256,
            "size": artifact.size, "code": exc.code, "reason": exc.message})
    try:
        artifacts.remove_unreferenced(artifact, sha_referenced)
    except Exception:  # never hide the original error; an orphaned file only costs space
        log.exception("could not remove the refused upload %s", artifact.sha256)


def _ensure_model(owner_id: uuid.UUID, name: str, description: str) -> uuid.UUID:
    """The model's id, creating it on first upload (a concurrent first upload may win the race);
    a model created by its first upload takes that upload's description."""
    with db.session() as s:
        existing = _model_of(s, owner_id, name)
        if existing is None:
            existing = MLModel(owner_id=owner_id, name=name, description=description)
            s.add(existing)
            try:
                s.flush()
            except IntegrityError:  # created meanwhile by a concurrent first upload: use that one
                s.rollback()
                existing = _model_of(s, owner_id, name)
                if existing is None:
                    raise
        return existing.id


def _record(
    principal: Principal, model_id: uuid.UUID, artifact, report: dict, filename: str, description: str
) -> VersionPublic:
    with db.session() as s:
        # The increment is the transaction's first write: it takes the model row's lock, so
        # concurrent uploads get consecutive numbers; a model deleted meanwhile matches no row.
        number = s.exec(
            update(MLModel)
            .where(col(MLModel.id) == model_id, col(MLModel.status) == ModelStatus.active)
            .values(last_version=MLModel.last_version + 1, updated_at=utcnow())
            .returning(MLModel.last_version)
        ).scalar_one_or_none()
        if number is None:
            raise Conflict("The model was deleted during the upload", code="model_deleted")
        row = ModelVersion(
            model_id=model_id, version=number, description=description, sha256=artifact.sha256,
            size_bytes=artifact.size, filename=filename,
            format=str(report.get("format") or artifact.format)[:32],
            signature={k: v for k, v in report.items() if k not in _MEASUREMENTS},
            load_seconds=float(report.get("load_seconds", 0.0)), memory_bytes=int(report.get("memory_bytes", 0)),
            created_by=principal.user_id,
        )
        s.add(row)
        s.flush()
        return common.public_versions(s, s.get(MLModel, model_id), [row])[0]


def _model_of(s: Session, owner_id: uuid.UUID, name: str) -> MLModel | None:
    return s.exec(select(MLModel).where(MLModel.owner_id == owner_id, MLModel.name == name)).first()


def _refuse_if_aliased(s: Session, model: MLModel, row: ModelVersion) -> None:
    names = s.exec(
        select(ModelAlias.alias).where(ModelAlias.version_id == row.id).order_by(col(ModelAlias.alias))
    ).all()
    if names:
        raise Conflict(
            f"Version {row.version} of '{model.name}' is the target of alias(es) {', '.join(names)}; "
            "move or delete them before archiving it",
            code="version_has_aliases", details={"aliases": list(names)},
        )


def _clean_filename(filename: str | None) -> str:
    """The client's name for the file, kept as a label only (never used in a path)."""
    name = (filename or "").replace("\\", "/").rsplit("/", 1)[-1].strip()
    return "".join(c for c in name if c.isprintable())[:MAX_FILENAME]
