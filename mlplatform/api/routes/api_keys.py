"""API keys: create (secret shown once), list, revoke."""

from __future__ import annotations

import uuid

from fastapi import APIRouter, Depends, Response

from mlplatform.api.deps import CurrentPrincipal, require_json_body
from mlplatform.api.errors import documented
from mlplatform.models import ApiKey, ApiKeyCreate, ApiKeyCreated, ApiKeyPublic
from mlplatform.services import api_keys

router = APIRouter(prefix="/api/v1/api-keys", tags=["api keys"], dependencies=[Depends(require_json_body)])


def _public(record: ApiKey) -> ApiKeyPublic:
    return ApiKeyPublic.model_validate(record, from_attributes=True)


@router.post(
    "",
    status_code=201,
    summary="Create an API key",
    description="The secret `key` is in this answer only; it is stored as a hash. Needs a signed-in "
    "user's access token: API keys cannot create keys.",
    responses=documented(400, 401, 403, 409, 415, 422),
)
def create_key(body: ApiKeyCreate, principal: CurrentPrincipal) -> ApiKeyCreated:
    created = api_keys.create_key(
        principal, body.name, [s.value for s in body.scopes], body.expires_at,
        rate_limit_per_minute=body.rate_limit_per_minute,
    )
    return ApiKeyCreated(**_public(created.record).model_dump(), key=created.secret)


@router.get("", summary="List your API keys, newest first", responses=documented(401, 403))
def list_keys(principal: CurrentPrincipal) -> list[ApiKeyPublic]:
    return [_public(k) for k in api_keys.list_keys(principal)]


@router.delete(
    "/{key_id}",
    status_code=204,
    summary="Revoke an API key",
    description="Every server process refuses the key within one second.",
    responses=documented(401, 403, 404, 422),
)
def revoke_key(key_id: uuid.UUID, principal: CurrentPrincipal) -> Response:
    api_keys.revoke_key(principal, key_id)
    return Response(status_code=204)
