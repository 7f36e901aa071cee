"""Administration of accounts (administrators only)."""

from __future__ import annotations

import uuid
from typing import Annotated

from fastapi import APIRouter, Query

from mlplatform.api.deps import CurrentPrincipal
from mlplatform.api.errors import documented
from mlplatform.models import UserList, UserPublic
from mlplatform.services import users

router = APIRouter(prefix="/api/v1/users", tags=["users (admin)"])


def _public(user) -> UserPublic:
    return UserPublic.model_validate(user, from_attributes=True)


@router.get("", summary="List accounts", responses=documented(401, 403, 422))
def list_users(
    principal: CurrentPrincipal,
    page: Annotated[int, Query(ge=1, le=users.MAX_PAGE)] = 1,
    size: Annotated[int, Query(ge=1, le=users.MAX_PAGE_SIZE)] = 50,
    search: Annotated[str, Query(max_length=320)] = "",
) -> UserList:
    result = users.list_users(principal, page, size, search)
    return UserList(items=[_public(u) for u in result.items], total=result.total, page=result.page, size=result.size)


@router.post(
    "/{user_id}/deactivate",
    summary="Deactivate an account",
    description="Its sessions, tokens and API keys stop working within one second.",
    responses=documented(401, 403, 404, 409, 422),
)
def deactivate(user_id: uuid.UUID, principal: CurrentPrincipal) -> UserPublic:
    return _public(users.set_active(principal, user_id, False))


@router.post("/{user_id}/reactivate", summary="Reactivate an account", responses=documented(401, 403, 404, 422))
def reactivate(user_id: uuid.UUID, principal: CurrentPrincipal) -> UserPublic:
    return _public(users.set_active(principal, user_id, True))
