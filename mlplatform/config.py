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
        env_prefix="MLPLATFORM_",
        env_file=".env",
        extra="ignore",
        populate_by_name=True,
        use_attribute_docstrings=True,  # each docstring below is the setting's documentation
    )

    env: Literal["development", "test", "production"] = "development"
    """`development`, `test` or `production`; outside development the default or a short secret key is refused at start"""
    secret_key: str = DEFAULT_SECRET_KEY
    """Signs access tokens and browser sessions (HS256); 32+ random characters required outside development"""
    database_url: str = Field(
        default="", validation_alias=AliasChoices("DATABASE_URL", "MLPLATFORM_DATABASE_URL")
    )
    """SQLAlchemy URL; for PostgreSQL write `postgresql+psycopg://user:password@host:5432/db`"""
    redis_url: str = Field(
        default="", validation_alias=AliasChoices("REDIS_URL", "MLPLATFORM_REDIS_URL")
    )
    """Redis for cache, login throttling, token denylist, RQ jobs and Reflex state, e.g. `redis://host:6379/0`"""
    var_dir: Path = DEFAULT_VAR_DIR
    """Local state: the SQLite file, the embedded Redis socket and log, metrics files"""

    host: str = "127.0.0.1"
    """Address the web app binds to (`0.0.0.0` in the Docker image)"""
    port: int = Field(default=8000, ge=1, le=65535)
    """Port of the web app: UI, websocket and REST on one port"""
    web_workers: int = Field(default=2, ge=1, le=32)
    """Web worker processes (passed to granian as `GRANIAN_WORKERS`)"""
    public_url: str = ""
    """Address users reach the platform at: shown in the dashboard's examples, and the sitemap's base"""
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    """`DEBUG`, `INFO`, `WARNING` or `ERROR` for the JSON logs (one access-log line per request at `INFO`)"""

    access_token_minutes: int = Field(default=30, ge=1)
    """Lifetime of access tokens from `/api/v1/auth/login` and `/refresh`"""
    refresh_token_days: int = Field(default=7, ge=1)
    """Lifetime of refresh tokens; each one works once (rotation)"""
    session_days: int = Field(default=7, ge=1)
    """Lifetime of the dashboard's httpOnly session cookie"""
    cookie_secure: bool = False
    """Mark the session cookie `Secure` and send HSTS on pages; turn on when served over https"""
    bcrypt_rounds: int = Field(default=12, ge=4, le=16)
    """bcrypt cost for password hashes (4-16)"""
    auth_cache_seconds: float = Field(default=0.5, ge=0, le=1)
    """How long a process caches API-key and account lookups (0-1 s): the longest a revoked key or deactivated account still works"""

    registry_cache_seconds: float = Field(default=0.5, ge=0, le=1)
    """How long a process caches which version serves a model (0-1 s): the longest a promotion, deprecation or archive elsewhere takes to reach every web worker"""

    login_max_failures_per_account: int = Field(default=5, ge=1)
    """Failed sign-ins for one account within the window before answering 429 with `Retry-After`"""
    login_max_failures_per_ip: int = Field(default=20, ge=1)
    """Failed sign-ins from one client address within the window before answering 429"""
    login_window_seconds: int = Field(default=900, ge=1)
    """Window in which failed sign-ins are counted"""

    max_body_bytes: int = Field(default=1_048_576, ge=1024)
    """Largest request body accepted; larger ones get 413"""
    queue_name: str = "mlplatform"
    """RQ queue the worker listens on and jobs are enqueued to"""
    worker_ttl_seconds: int = Field(default=60, ge=20)
    """RQ worker heartbeat TTL (`rq worker --worker-ttl`); `/health/ready` reports no worker once it lapses"""
    prometheus_multiproc_dir: str = Field(
        default="", validation_alias=AliasChoices("PROMETHEUS_MULTIPROC_DIR")
    )
    """Directory where every web worker writes its metrics, so `/metrics` adds them all up"""

    max_model_bytes: int = Field(default=200 * 1024 * 1024, ge=1024)
    """Largest model file accepted for upload (bytes); larger uploads get 413"""
    max_model_decompressed_bytes: int = Field(default=1024 * 1024 * 1024, ge=1024)
    """Largest decompressed pickle stream a model host reads (compressed joblib files expand up to this; more is refused as `resource_limit`)"""
    host_processes: int = Field(default=2, ge=1, le=64)
    """Long-lived model host processes; each model is loaded in one of them, shared by every web worker"""
    host_memory_mb: int = Field(default=1024, ge=64)
    """Memory budget of one model host for loaded models; least recently used models are unloaded past it"""
    host_address_space_mb: int = Field(default=4096, ge=256)
    """Hard address-space limit (RLIMIT_AS) of one model host process, libraries included"""
    host_cpu_seconds: int = Field(default=30, ge=1)
    """CPU seconds one load or predict call may use in a model host before the call fails (`resource_limit`)"""
    host_load_timeout_seconds: float = Field(default=60, gt=0)
    """Wall-clock limit for loading and checking a model in a model host"""
    host_call_timeout_seconds: float = Field(default=10, gt=0)
    """Wall-clock limit for one predict call in a model host"""
    predict_batch_max_rows: int = Field(default=1000, ge=0)
    """Most rows sent to a model host in one call when concurrent predictions of the same version are combined (dynamic batching: only calls that would queue behind one in flight wait, never for a timer); 0 turns combining off"""

    predict_max_rows: int = Field(default=10_000, ge=1)
    """Most rows one prediction request may carry; more is refused with 422"""
    predict_rate_limit_per_minute: int = Field(default=100, ge=1)
    """Prediction requests per minute per API key and per user, unless a key or model sets its own"""
    predict_rate_limit_fail_open: bool = True
    """When Redis cannot be reached, serve predictions without rate limiting (`true`) or refuse them with 503 (`false`)"""
    prediction_cache_ttl_seconds: int = Field(default=3600, ge=0)
    """How long a prediction stays cached in Redis unless its model sets its own; 0 turns the cache off"""
    prediction_log_payload: Literal["off", "hashes", "full"] = "hashes"
    """What the prediction log keeps of each call's input and output: `off` (nothing), `hashes` (`sha256:<hex>` of the body and of the answer) or `full` (the text, capped)"""
    prediction_log_max_payload_bytes: int = Field(default=65_536, ge=256)
    """With `full` payloads: the most bytes kept of one input or output; longer ones are cut and marked truncated"""
    prediction_log_flush_seconds: float = Field(default=1.0, gt=0, le=60)
    """How often each process writes its buffered prediction log rows to the database"""
    prediction_log_batch_rows: int = Field(default=500, ge=1)
    """Rows per prediction log insert; a full batch is written without waiting for the flush interval"""
    prediction_log_queue_rows: int = Field(default=100_000, ge=1)
    """Prediction log rows one process buffers at most (also while the database is down); more are dropped and counted"""

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

    @property
    def models_dir(self) -> Path:
        return self.var_dir / "models"

    @property
    def host_socket(self) -> Path:
        return self.var_dir / "hosts.sock"


@lru_cache
def get_settings() -> Settings:
    return Settings()
