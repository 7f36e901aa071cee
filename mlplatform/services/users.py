"""Administration of accounts."""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from sqlmodel import col, func, select

from mlplatform import db
from mlplatform.errors import Conflict, InvalidInput, NotFound
from mlplatform.models import User
from mlplatform.services import auth, principals
from mlplatform.services.principals import Principal

MAX_PAGE_SIZE = 200
MAX_PAGE = 1_000_000  # keeps OFFSET inside a 64-bit integer


@dataclass(frozen=True)
class UserPage:
    items: list[User]
    total: int
    page: int
    size: int


def get_user(user_id: uuid.UUID) -> User:
    with db.session() as s:
        user = s.get(User, user_id)
    if user is None:
        raise NotFound("User not found", code="user_not_found")
    return user


def list_users(principal: Principal, page: int = 1, size: int = 50, search: str = "") -> UserPage:
    principal.require_user_credentials()
    principal.require_admin()
    page, size = min(max(page, 1), MAX_PAGE), min(max(size, 1), MAX_PAGE_SIZE)
    search = search.strip().lower()
    if "\x00" in search:
        raise InvalidInput("Search text must not contain NUL characters", details={"field": "search"})
    query = select(User)
    if search:
        query = query.where(col(User.email).contains(search, autoescape=True))
    with db.session() as s:
        total = s.exec(select(func.count()).select_from(query.subquery())).one()
        items = s.exec(
            query.order_by(col(User.created_at)).offset((page - 1) * size).limit(size)
        ).all()
    return UserPage(list(items), total, page, size)


def set_active(principal: Principal, user_id: uuid.UUID, active: bool) -> User:
    """Deactivation stops the user's sessions, tokens and API keys (within the auth cache TTL)."""
    principal.require_user_credentials()
    principal.require_admin()
    if user_id == principal.user_id and not active:
        raise Conflict("You cannot deactivate your own account", code="cannot_deactivate_self")
    with db.session() as s:
        user = s.get(User, user_id)
        if user is None:
            raise NotFound("User not found", code="user_not_found")
        user.is_active = active
        s.add(user)
    if not active:
        auth.revoke_all_sessions(user_id)
    principals.forget_cached()
    return user
