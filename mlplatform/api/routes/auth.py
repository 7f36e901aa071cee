"""Account routes for programs: register, token login, refresh, logout, me."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Response

from mlplatform.api.deps import CurrentPrincipal, client_ip, require_json_body
from mlplatform.api.errors import documented
from mlplatform.models import Credentials, Me, RefreshRequest, TokenPair, UserPublic
from mlplatform.services import auth, users

router = APIRouter(prefix="/api/v1/auth", tags=["auth"], dependencies=[Depends(require_json_body)])


@router.post(
    "/register",
    status_code=201,
    summary="Create an account",
    description="Passwords need 10+ characters and must not contain the email's local part. "
    "The first account registered becomes an administrator.",
    responses=documented(400, 409, 413, 415, 422),
)
def register(body: Credentials) -> UserPublic:
    return UserPublic.model_validate(auth.register(body.email, body.password), from_attributes=True)


@router.post(
    "/login",
    summary="Exchange email and password for an access and a refresh token",
    description="After 5 failures for an account or 20 from one address within 15 minutes, "
    "answers 429 with Retry-After.",
    responses=documented(400, 401, 415, 422, 429),
)
def login(body: Credentials, ip: Annotated[str, Depends(client_ip)]) -> TokenPair:
    return auth.login(body.email, body.password, ip)


@router.post(
    "/refresh",
    summary="Rotate a refresh token for a new token pair",
    description="Each refresh token works once; presenting a used one revokes every token of that login.",
    responses=documented(400, 401, 415, 422),
)
def refresh(body: RefreshRequest) -> TokenPair:
    return auth.refresh(body.refresh_token)


@router.post(
    "/logout",
    status_code=204,
    summary="Revoke this login's refresh tokens and the access token presented",
    responses=documented(401),
)
def logout(principal: CurrentPrincipal) -> Response:
    auth.logout(principal)
    return Response(status_code=204)


@router.get(
    "/me",
    summary="The account behind the credentials (access token or API key)",
    responses=documented(401),
)
def me(principal: CurrentPrincipal) -> Me:
    user = users.get_user(principal.user_id)
    return Me(
        **UserPublic.model_validate(user, from_attributes=True).model_dump(),
        auth_method=principal.auth_method,
        scopes=sorted(principal.scopes) if principal.scopes is not None else None,
    )
