"""Settings: the only place that reads the environment."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

PROJECT_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_VAR_DIR = PROJECT_ROOT / "var"
DEFAULT_SECRET_KEY = "dev-insecure-change-me"
MIN_SECRET_KEY_LENGTH = 32


class Settings(BaseSettings):
    """Every knob of the platform; `.env.example` lists them all."""

    model_config = SettingsConfigDict(
        env_prefix="MLPLATFORM_", env_file=".env", extra="ignore", populate_by_name=True
    )

    env: Literal["development", "test", "production"] = "development"
    secret_key: str = DEFAULT_SECRET_KEY
    database_url: str = Field(
        default="", validation_alias=AliasChoices("DATABASE_URL", "MLPLATFORM_DATABASE_URL")
    )
    redis_url: str = Field(
        default="", validation_alias=AliasChoices("REDIS_URL", "MLPLATFORM_REDIS_URL")
    )
    var_dir: Path = DEFAULT_VAR_DIR

    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=1, le=65535)
    web_workers: int = Field(default=2, ge=1, le=32)
    public_url: str = ""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"

    access_token_minutes: int = Field(default=30, ge=1)
    refresh_token_days: int = Field(default=7, ge=1)
    session_days: int = Field(default=7, ge=1)
    cookie_secure: bool = False
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    auth_cache_seconds: float = Field(default=0.5, ge=0, le=1)

    login_max_failures_per_account: int = Field(default=5, ge=1)
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    login_window_seconds: int = Field(default=900, ge=1)

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    queue_name: str = "mlplatform"
    worker_ttl_seconds: int = Field(default=60, ge=20)
    prometheus_multiproc_dir: str = Field(
        default="", validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR")
    )

    @field_validator("var_dir")
    @classmethod
    def _absolute_var_dir(cls, value: Path) -> Path:
        return value if value.is_absolute() else PROJECT_ROOT / value

    @model_validator(mode="after")
    def _fill_defaults_and_refuse_weak_secrets(self) -> Settings:
        if not self.database_url:
            self.database_url = f"sqlite:///{self.var_dir / 'mlplatform.db'}"
        if not self.redis_url:
            self.redis_url = f"unix://{self.embedded_redis_socket}"
        if not self.public_url:
            self.public_url = f"http://{self.display_host}:{self.port}"
        if self.env != "development" and (
            self.secret_key == DEFAULT_SECRET_KEY or len(self.secret_key) < MIN_SECRET_KEY_LENGTH
        ):
            raise ValueError(
                f"MLPLATFORM_SECRET_KEY must be set to a random value of at least "
                f"{MIN_SECRET_KEY_LENGTH} characters when MLPLATFORM_ENV={self.env}"
            )
        return self

    @property
    def embedded_redis_socket(self) -> Path:
        return self.var_dir / "redis.sock"

    @property
    def uses_embedded_redis(self) -> bool:
        return self.redis_url == f"unix://{self.embedded_redis_socket}"

    @property
    def display_host(self) -> str:
        return "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host

    @property
    def metrics_dir(self) -> Path:
        return self.var_dir / "metrics"


@lru_cache
def get_settings() -> Settings:
    return Settings()
