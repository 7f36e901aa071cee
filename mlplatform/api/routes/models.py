"""The model registry over REST: models, versions (upload through the safety gate), aliases.

Reading needs the `models:read` scope, changing needs `models:write` (signed-in users have both).
Administrators address another user's model with `?owner=<email>`.
"""

from __future__ import annotations

from email.message import Message
from typing import Annotated

from fastapi import APIRouter, Depends, File, Form, Path, Query, Request, Response, UploadFile

from mlplatform.api.deps import CurrentPrincipal, require_json_body
from mlplatform.api.errors import documented
from mlplatform.errors import UnsupportedMediaType
from mlplatform.models import (
    MAX_DESCRIPTION,
    MAX_VERSION,
    AliasPublic,
    AliasSet,
    ModelCreate,
    ModelList,
    ModelPublic,
    ModelStatus,
    ModelUpdate,
    VersionList,
    VersionPublic,
    VersionUpdate,
)
from mlplatform.services import registry
from mlplatform.services.registry_common import MAX_PAGE, MAX_PAGE_SIZE

router = APIRouter(prefix="/api/v1/models", tags=["models"])

UPLOAD_PATH = r"/api/v1/models/[^/]+/versions"  # takes bodies up to max_model_bytes + the overhead
MULTIPART_OVERHEAD_BYTES = 64 * 1024  # boundaries, part headers and the description field
JSON_BODY = [Depends(require_json_body)]

Owner = Annotated[
    str | None,
    Query(max_length=320, description="Administrators only: the owner's email, to address another user's model"),
]
Page = Annotated[int, Query(ge=1, le=MAX_PAGE)]
PerPage = Annotated[int, Query(ge=1, le=MAX_PAGE_SIZE)]
VersionNumber = Annotated[int, Path(ge=1, le=MAX_VERSION)]


def require_multipart(request: Request) -> None:
    """415 for an upload sent as anything but multipart/form-data (instead of a confusing 422)."""
    message = Message()
    message["content-type"] = request.headers.get("content-type", "")
    if message.get_content_type() != "multipart/form-data":
        raise UnsupportedMediaType(
            "Send the model as multipart/form-data with the file in the field `file`",
            code="unsupported_media_type",
        )


@router.post(
    "",
    status_code=201,
    summary="Register a model",
    description="Creates an empty model; uploading its first version also creates it. The name is a "
    "slug unique among your models: " + registry.NAME_RULES + ".",
    responses=documented(400, 401, 403, 404, 409, 415, 422),
    dependencies=JSON_BODY,
)
def create_model(body: ModelCreate, principal: CurrentPrincipal, owner: Owner = None) -> ModelPublic:
    return registry.create_model(principal, body.name, body.description, body.tags, owner=owner)


@router.get(
    "",
    summary="List models",
    description="Newest activity first. `q` searches name and description; `status` defaults to "
    "`active` (`deleted` lists deleted ones); `tag` keeps models with that tag. Administrators see "
    "every owner's models unless `owner` narrows it.",
    responses=documented(401, 403, 404, 422),
)
def list_models(
    principal: CurrentPrincipal,
    page: Page = 1,
    per_page: PerPage = 20,
    q: Annotated[str, Query(max_length=200)] = "",
    status: ModelStatus | None = None,
    tag: Annotated[str | None, Query(max_length=64)] = None,
    owner: Owner = None,
) -> ModelList:
    return registry.list_models(principal, page, per_page, q, status, tag, owner)


@router.get(
    "/{name}",
    summary="Get a model",
    description="With its latest version number and its aliases (alias -> version).",
    responses=documented(401, 403, 404, 422),
)
def get_model(name: str, principal: CurrentPrincipal, owner: Owner = None) -> ModelPublic:
    return registry.get_model(principal, name, owner=owner)


@router.patch(
    "/{name}",
    summary="Change a model's description, tags, status or serving settings",
    description="Only the fields sent change. `{\"status\": \"active\"}` restores a deleted model; the "
    "name never changes. `rate_limit_per_minute` (per caller) and `cache_ttl_seconds` (0: no prediction "
    "cache) take `null` for the platform default; a model's limit narrows the platform's, never widens it.",
    responses=documented(400, 401, 403, 404, 409, 415, 422),
    dependencies=JSON_BODY,
)
def update_model(name: str, body: ModelUpdate, principal: CurrentPrincipal, owner: Owner = None) -> ModelPublic:
    # for the serving settings an explicit null means "back to the platform default"
    serving = {f: getattr(body, f) for f in ("rate_limit_per_minute", "cache_ttl_seconds")
               if f in body.model_fields_set}
    return registry.update_model(
        principal, name, description=body.description, tags=body.tags, status=body.status, owner=owner,
        **serving,
    )


@router.delete(
    "/{name}",
    status_code=204,
    summary="Delete a model (soft)",
    description="The model stops serving and leaves default listings. Its versions, aliases and files "
    "are kept, its name stays taken, and `PATCH {\"status\": \"active\"}` restores it.",
    responses=documented(401, 403, 404, 422),
)
def delete_model(name: str, principal: CurrentPrincipal, owner: Owner = None) -> Response:
    registry.delete_model(principal, name, owner=owner)
    return Response(status_code=204)


@router.post(
    "/{name}/versions",
    status_code=201,
    summary="Upload a new version",
    description="Multipart form: the model file (`.joblib` or `.pkl`, scikit-learn) in the field `file`, "
    "optionally `description`. Creates the model if it does not exist. The file is checked in a fresh "
    "sandboxed model host (load + predict on a probe row) before the version exists; a refusal is 422 "
    "with a code (`unsafe_model`, `not_an_estimator`, `unsupported_format`, `version_mismatch`, "
    "`load_failed`, `resource_limit`) and a reason. The answer carries the version's signature.",
    responses=documented(400, 401, 403, 404, 409, 413, 415, 422, 503),
    dependencies=[Depends(require_multipart)],
)
def upload_version(
    name: str,
    principal: CurrentPrincipal,
    file: Annotated[UploadFile, File(description="The model file")],
    description: Annotated[str, Form(max_length=MAX_DESCRIPTION)] = "",
    owner: Owner = None,
) -> VersionPublic:
    # a sync route: FastAPI runs it in a worker thread, where storing and inspecting may block
    return registry.upload_version(
        principal, name, file.file, filename=file.filename or "", description=description, owner=owner
    )


@router.get(
    "/{name}/versions",
    summary="List a model's versions",
    description="Newest first, each with its status, aliases, file facts and signature.",
    responses=documented(401, 403, 404, 422),
)
def list_versions(
    name: str, principal: CurrentPrincipal, page: Page = 1, per_page: PerPage = 50, owner: Owner = None
) -> VersionList:
    return registry.list_versions(principal, name, page, per_page, owner=owner)


@router.get(
    "/{name}/versions/{version}",
    summary="Get one version",
    responses=documented(401, 403, 404, 422),
)
def get_version(
    name: str, version: VersionNumber, principal: CurrentPrincipal, owner: Owner = None
) -> VersionPublic:
    return registry.get_version(principal, name, version, owner=owner)


@router.patch(
    "/{name}/versions/{version}",
    summary="Change a version's status or description",
    description="Versions are otherwise immutable. `active` and `deprecated` serve, `archived` never "
    "does; a version an alias points at cannot be archived (409 `version_has_aliases`). Deprecating "
    "records the time (predictions then carry `Deprecation: @<unix time>`); `sunset_at` (deprecated "
    "versions only, in the future) adds a `Sunset` header, and after that time the version answers "
    "410 `version_sunset`. Leaving `deprecated` clears both.",
    responses=documented(400, 401, 403, 404, 409, 415, 422),
    dependencies=JSON_BODY,
)
def update_version(
    name: str, version: VersionNumber, body: VersionUpdate, principal: CurrentPrincipal, owner: Owner = None
) -> VersionPublic:
    return registry.update_version(
        principal, name, version, status=body.status, description=body.description,
        sunset_at=body.sunset_at, owner=owner,
    )


@router.get(
    "/{name}/aliases",
    summary="List a model's aliases",
    description="Each with the version it points at and the one it pointed at before its last move.",
    responses=documented(401, 403, 404, 422),
)
def list_aliases(name: str, principal: CurrentPrincipal, owner: Owner = None) -> list[AliasPublic]:
    return registry.list_aliases(principal, name, owner=owner)


@router.put(
    "/{name}/aliases/{alias}",
    summary="Point an alias at a version",
    description="Creates the alias or moves it atomically (`{\"version\": 3}`); roll back by pointing "
    "it at the previous version (or with `.../rollback`). Not at an archived version (409). Without an "
    "explicit version or alias, calls are served by the `production` alias if set, else the newest "
    "active version.",
    responses=documented(400, 401, 403, 404, 409, 415, 422),
    dependencies=JSON_BODY,
)
def set_alias(name: str, alias: str, body: AliasSet, principal: CurrentPrincipal, owner: Owner = None) -> AliasPublic:
    return registry.set_alias(principal, name, alias, body.version, owner=owner)


@router.delete(
    "/{name}/aliases/{alias}",
    status_code=204,
    summary="Delete an alias",
    responses=documented(401, 403, 404, 409, 422),
)
def delete_alias(name: str, alias: str, principal: CurrentPrincipal, owner: Owner = None) -> Response:
    registry.delete_alias(principal, name, alias, owner=owner)
    return Response(status_code=204)


@router.post(
    "/{name}/aliases/{alias}/rollback",
    summary="Roll an alias back",
    description="Moves the alias back to the version it pointed at before its last move (rolling back "
    "twice undoes the rollback). 409 `nothing_to_roll_back` if it never moved, 409 `version_archived` "
    "if that version has been archived since.",
    responses=documented(401, 403, 404, 409, 422),
)
def rollback_alias(name: str, alias: str, principal: CurrentPrincipal, owner: Owner = None) -> AliasPublic:
    return registry.rollback_alias(principal, name, alias, owner=owner)
