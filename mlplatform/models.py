"""SQLModel tables and their public schemas. `alembic upgrade head` is the only schema path."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone
from enum import Enum

from pydantic import BaseModel, ConfigDict
from pydantic import Field as PydanticField
from sqlalchemy import JSON, BigInteger, Column, DateTime, Index, Integer, Text, TypeDecorator, UniqueConstraint
from sqlalchemy import Enum as SAEnum
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
    # predictions per minute through this key; None: the platform default. The owner's own
    # window (the platform default) still applies, so a key's limit can only narrow it.
    rate_limit_per_minute: int | None = None


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


MAX_INT32 = 2**31 - 1  # INTEGER columns are 32-bit on PostgreSQL
MAX_CACHE_TTL_SECONDS = 366 * 24 * 3600


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
    rate_limit_per_minute: int | None = None


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
    rate_limit_per_minute: int | None = PydanticField(
        default=None, ge=1, le=MAX_INT32, description="Predictions per minute through this key "
        "(default: the platform's limit, which also caps every account as a whole)", examples=[60]
    )


class Me(UserPublic):
    auth_method: str
    scopes: list[Scope] | None = None


class UserList(BaseModel):
    items: list[UserPublic]
    total: int
    page: int
    size: int


# --- model registry -----------------------------------------------------------------------------

MAX_DESCRIPTION = 2000
MAX_TAGS = 20
MAX_VERSION = 2**31 - 1  # version numbers are 32-bit integers in the database


def _status_column(enum: type[Enum]) -> Column:
    # VARCHAR, not a PostgreSQL ENUM type: adding a status later is then no ALTER TYPE
    return Column(SAEnum(enum, native_enum=False, length=16, values_callable=_values), nullable=False)


def _values(enum: type[Enum]) -> list[str]:
    return [member.value for member in enum]


class ModelStatus(str, Enum):
    active = "active"
    deleted = "deleted"


class VersionStatus(str, Enum):
    active = "active"  # serves
    deprecated = "deprecated"  # still serves, but callers should move on
    archived = "archived"  # never serves; no alias may point at it


class MLModel(SQLModel, table=True):
    """A registered model: a name (slug, unique per owner, kept after deletion) with versions."""

    __tablename__ = "ml_models"
    __table_args__ = (UniqueConstraint("owner_id", "name", name="uq_ml_models_owner_id_name"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    owner_id: uuid.UUID = Field(foreign_key="users.id")  # indexed by the (owner_id, name) constraint
    name: str = Field(max_length=64)
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    tags: list[str] = Field(default_factory=list, sa_column=Column(JSON, nullable=False))
    status: ModelStatus = Field(default=ModelStatus.active, sa_column=_status_column(ModelStatus))
    last_version: int = 0  # version numbers are handed out by incrementing this, under its row lock
    # serving settings; None: the platform defaults (predict_rate_limit_per_minute,
    # prediction_cache_ttl_seconds). A cache TTL of 0 turns caching off for this model.
    rate_limit_per_minute: int | None = None
    cache_ttl_seconds: int | None = None
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))


class ModelVersion(SQLModel, table=True):
    """One uploaded file that passed the upload gate. Immutable except status and description."""

    __tablename__ = "model_versions"
    __table_args__ = (UniqueConstraint("model_id", "version", name="uq_model_versions_model_id_version"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    model_id: uuid.UUID = Field(foreign_key="ml_models.id")  # indexed by the unique constraint
    version: int
    status: VersionStatus = Field(default=VersionStatus.active, sa_column=_status_column(VersionStatus))
    description: str = Field(default="", max_length=MAX_DESCRIPTION)
    sha256: str = Field(max_length=64, index=True)
    size_bytes: int = Field(sa_column=Column(BigInteger, nullable=False))
    filename: str = Field(default="", max_length=255)  # the client's name for the file; metadata only
    format: str = Field(default="", max_length=32)
    signature: dict = Field(default_factory=dict, sa_column=Column(JSON, nullable=False))
    load_seconds: float = 0.0
    memory_bytes: int = Field(default=0, sa_column=Column(BigInteger, nullable=False))
    created_by: uuid.UUID = Field(foreign_key="users.id")
    created_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))
    # set while the version is deprecated: callers get Deprecation (and Sunset) headers, and
    # after sunset_at (when the owner set one) the version stops serving
    deprecated_at: datetime | None = Field(default=None, sa_column=_utc_column(True))
    sunset_at: datetime | None = Field(default=None, sa_column=_utc_column(True))


class ModelAlias(SQLModel, table=True):
    """A named pointer (e.g. `production`) at one version of a model; moved by updating the row."""

    __tablename__ = "model_aliases"
    __table_args__ = (UniqueConstraint("model_id", "alias", name="uq_model_aliases_model_id_alias"),)

    id: uuid.UUID = Field(default_factory=uuid.uuid4, primary_key=True)
    model_id: uuid.UUID = Field(foreign_key="ml_models.id")  # indexed by the unique constraint
    alias: str = Field(max_length=64)
    version_id: uuid.UUID = Field(foreign_key="model_versions.id", index=True)
    # where the alias pointed before its last move: what a rollback returns to
    previous_version_id: uuid.UUID | None = Field(default=None, foreign_key="model_versions.id")
    updated_at: datetime = Field(default_factory=utcnow, sa_column=_utc_column(False))
    updated_by: uuid.UUID = Field(foreign_key="users.id")


class ModelCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    name: str = PydanticField(max_length=64, examples=["churn-classifier"])
    description: str = PydanticField(default="", max_length=MAX_DESCRIPTION)
    tags: list[str] = PydanticField(default_factory=list, max_length=MAX_TAGS, examples=[["tabular", "churn"]])


class ModelUpdate(BaseModel):
    """Only the fields given change. `status: "active"` restores a deleted model. For
    `rate_limit_per_minute` and `cache_ttl_seconds` an explicit `null` returns to the default."""

    model_config = ConfigDict(extra="forbid")

    description: str | None = PydanticField(default=None, max_length=MAX_DESCRIPTION)
    tags: list[str] | None = PydanticField(default=None, max_length=MAX_TAGS)
    status: ModelStatus | None = None
    rate_limit_per_minute: int | None = PydanticField(
        default=None, ge=1, le=MAX_INT32, examples=[600],
        description="Predictions per minute each caller may make to this model (null: no limit of its own)",
    )
    cache_ttl_seconds: int | None = PydanticField(
        default=None, ge=0, le=MAX_CACHE_TTL_SECONDS, examples=[3600],
        description="How long predictions stay cached; 0 turns caching off (null: the platform default)",
    )


class ModelPublic(BaseModel):
    id: uuid.UUID
    name: str
    owner_email: str
    description: str
    tags: list[str]
    status: ModelStatus
    latest_version: int | None  # the highest version number, whatever its status
    aliases: dict[str, int]  # alias -> version number
    created_at: datetime
    updated_at: datetime
    rate_limit_per_minute: int | None = None  # None: no limit of its own
    cache_ttl_seconds: int | None = None  # None: the platform default; 0: not cached


class ModelList(BaseModel):
    items: list[ModelPublic]
    total: int
    page: int
    per_page: int


class VersionPublic(BaseModel):
    id: uuid.UUID
    model: str
    version: int
    status: VersionStatus
    description: str
    sha256: str
    size_bytes: int
    filename: str
    format: str
    signature: dict
    load_seconds: float
    memory_bytes: int
    aliases: list[str]
    created_by: uuid.UUID
    created_at: datetime
    deprecated_at: datetime | None = None
    sunset_at: datetime | None = None


class VersionList(BaseModel):
    items: list[VersionPublic]
    total: int
    page: int
    per_page: int


class VersionUpdate(BaseModel):
    """Versions are immutable apart from status (with its sunset date) and description."""

    model_config = ConfigDict(extra="forbid")

    status: VersionStatus | None = None
    description: str | None = PydanticField(default=None, max_length=MAX_DESCRIPTION)
    sunset_at: datetime | None = PydanticField(
        default=None, description="Deprecated versions only: when the version stops serving (a future "
        "time with a time zone). Callers see it in the `Sunset` header until then; 410 afterwards.")


class AliasSet(BaseModel):
    model_config = ConfigDict(extra="forbid")

    version: int = PydanticField(ge=1, le=MAX_VERSION, examples=[3])


class AliasPublic(BaseModel):
    model: str
    alias: str
    version: int
    version_id: uuid.UUID
    previous_version: int | None  # where it pointed before its last move (a rollback goes there)
    updated_at: datetime
    updated_by: uuid.UUID


# --- prediction log -----------------------------------------------------------------------------

MAX_LOGGED_NAME = 200  # a model name as asked (anything a caller typed); real names are <= 64


class PredictionLog(SQLModel, table=True):
    """One prediction call, whatever its outcome (answers, refusals, errors). Append-only and
    high-volume: an integer key (BIGINT on PostgreSQL; SQLite only autoincrements INTEGER) and no
    foreign keys, so bulk inserts check nothing and rows outlive what they name. Written in
    batches off the request path (services/prediction_log.py)."""

    __tablename__ = "prediction_logs"
    # time-range scans (analytics) and one model's calls over time
    __table_args__ = (Index("ix_prediction_logs_model_id_at", "model_id", "at"),)

    id: int | None = Field(default=None, sa_column=Column(
        BigInteger().with_variant(Integer(), "sqlite"), primary_key=True, autoincrement=True))
    at: datetime = Field(sa_column=_utc_column(False, index=True))  # when the call arrived
    source: str = Field(max_length=8)  # rest, oip or ui
    model_name: str = Field(max_length=MAX_LOGGED_NAME)
    model_id: uuid.UUID | None = None
    version_id: uuid.UUID | None = None
    version: int | None = None
    user_id: uuid.UUID | None = None  # null when the credentials were refused
    api_key_id: uuid.UUID | None = None
    status: str = Field(max_length=64)  # "ok", or the error's code (rate_limited, invalid_input, ...)
    error_kind: str | None = Field(default=None, max_length=8)  # null, "client" or "server"
    cached: bool = False
    model_ms: float = 0.0  # time in the model host (0 for cache hits and refusals)
    total_ms: float = 0.0
    n_rows: int | None = None
    # per the prediction_log_payload setting: null, "sha256:<hex>", or the (capped) text
    input_payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
    output_payload: str | None = Field(default=None, sa_column=Column(Text, nullable=True))
