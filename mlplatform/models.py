"""SQLModel tables and their public schemas. `alembic upgrade head` is the only schema path."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum

from pydantic import BaseModel
from pydantic import Field as PydanticField
from sqlalchemy import JSON, Column, DateTime, TypeDecorator
from sqlmodel import Field, SQLModel


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


class UTCDateTime(TypeDecorator):
    """Timezone-aware UTC datetimes on every backend (SQLite drops the offset)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value, dialect):
        if value is not None and value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        return value.astimezone(timezone.utc) if value is not None else None

    def process_result_value(self, value, dialect):
        if value is not None and value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value


def _utc_column(nullable: bool, index: bool = False) -> Column:
    return Column(UTCDateTime(), nullable=nullable, index=index)


class Role(str, Enum):
    user = "user"
    admin = "admin"


class Scope(str, Enum):
    predict = "predict"
    models_read = "models:read"
    models_write = "models:write"
    jobs = "jobs"
    experiments = "experiments"
    analytics = "analytics"


class User(SQLModel, table=True):
    __tablename__ = "users"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    email: str = Field(max_length=320, unique=True, index=True)
    password_hash: str = Field(max_length=100)
    role: Role = Field(default=Role.user, max_length=16)
    is_active: bool = True
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))
    last_login_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class ApiKey(SQLModel, table=True):
    __tablename__ = "api_keys"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    name: str = Field(max_length=100)
    prefix: str = Field(max_length=32, unique=True)
    key_hash: str = Field(max_length=64, unique=True, index=True)
    scopes: list[str] = Field(sa_column=Column(JSON, nullable=False))
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))
    expires_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    last_used_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class RefreshToken(SQLModel, table=True):
    """One opaque refresh token; tokens of one login share a family that is revoked as a whole."""

    __tablename__ = "refresh_tokens"

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    user_id: uuid.UUID = Field(foreign_key="users.id", index=True)
    family_id: uuid.UUID = Field(index=True)
    token_hash: str = Field(max_length=64, unique=True, index=True)
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))
    expires_at: datetime = Field(sa_column=_utc_column(False, index=True))
    rotated_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    revoked_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class UserPublic(BaseModel):
    id: uuid.UUID
    email: str
    role: Role
    is_active: bool
    created_at: datetime
    last_login_at: datetime | None = None


class ApiKeyPublic(BaseModel):
    id: uuid.UUID
    name: str
    prefix: str
    scopes: list[Scope]
    created_at: datetime
    expires_at: datetime | None
    last_used_at: datetime | None
    revoked_at: datetime | None


class ApiKeyCreated(ApiKeyPublic):
    key: str


class TokenPair(BaseModel):
    access_token: str
    refresh_token: str
    token_type: str = "bearer"
    expires_in: int


class Credentials(BaseModel):
    email: str = PydanticField(max_length=320, examples=["ada@example.com"])
    password: str = PydanticField(max_length=1000, examples=["correct horse battery"])


class RefreshRequest(BaseModel):
    refresh_token: str = PydanticField(max_length=200)


class ApiKeyCreate(BaseModel):
    name: str = PydanticField(max_length=100, examples=["nightly scoring"])
    scopes: list[Scope] = PydanticField(examples=[["predict", "models:read"]])
    expires_at: datetime | None = None


class Me(UserPublic):
    auth_method: str
    scopes: list[Scope] | None = None


class UserList(BaseModel):
    items: list[UserPublic]
    total: int
    page: int
    size: int
