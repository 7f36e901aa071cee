"""Print the README's settings table, generated from mlplatform.config.Settings.

    .venv/bin/python scripts/settings_table.py

tests/test_settings_docs.py checks that README.md contains exactly this output and that every
Settings field has a description here, so the README cannot drift from config.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from pydantic import AliasChoices  # noqa: E402
from pydantic.fields import FieldInfo  # noqa: E402

from mlplatform.config import Settings  # noqa: E402

ENV_PREFIX = Settings.model_config["env_prefix"]

# What each setting means, keyed by Settings field name (every field must have one).
DESCRIPTIONS: dict[str, str] = {
    "env": "`development`, `test` or `production`; outside development the default or a short secret key is refused at start",
    "secret_key": "Signs access tokens and browser sessions (HS256); 32+ random characters required outside development",
    "database_url": "SQLAlchemy URL; for PostgreSQL write `postgresql+psycopg://user:password@host:5432/db`",
    "redis_url": "Redis for cache, login throttling, token denylist, RQ jobs and Reflex state, e.g. `redis://host:6379/0`",
    "var_dir": "Local state: the SQLite file, the embedded Redis socket and log, metrics files",
    "host": "Address the web app binds to (`0.0.0.0` in the Docker image)",
    "port": "Port of the web app: UI, websocket and REST on one port",
    "web_workers": "Web worker processes (passed to granian as `GRANIAN_WORKERS`)",
    "public_url": "Address users reach the platform at: shown in the dashboard's examples, and the sitemap's base",
    "log_level": "`DEBUG`, `INFO`, `WARNING` or `ERROR` for the JSON logs (one access-log line per request at `INFO`)",
    "access_token_minutes": "Lifetime of access tokens from `/api/v1/auth/login` and `/refresh`",
    "refresh_token_days": "Lifetime of refresh tokens; each one works once (rotation)",
    "session_days": "Lifetime of the dashboard's httpOnly session cookie",
    "cookie_secure": "Mark the session cookie `Secure` and send HSTS on pages; turn on when served over https",
    "bcrypt_rounds": "bcrypt cost for password hashes (4-16)",
    "auth_cache_seconds": "How long a process caches API-key and account lookups (0-1 s): the longest a revoked key or deactivated account still works",
    "login_max_failures_per_account": "Failed sign-ins for one account within the window before answering 429 with `Retry-After`",
    "login_max_failures_per_ip": "Failed sign-ins from one client address within the window before answering 429",
    "login_window_seconds": "Window in which failed sign-ins are counted",
    "max_body_bytes": "Largest request body accepted; larger ones get 413",
    "queue_name": "RQ queue the worker listens on and jobs are enqueued to",
    "worker_ttl_seconds": "RQ worker heartbeat TTL (`rq worker --worker-ttl`); `/health/ready` reports no worker once it lapses",
    "prometheus_multiproc_dir": "Directory where every web worker writes its metrics, so `/metrics` adds them all up",
}

# Defaults that Settings derives from other settings (the field's own default is a placeholder).
DERIVED_DEFAULTS: dict[str, str] = {
    "database_url": "`sqlite:///<var_dir>/mlplatform.db`",
    "redis_url": "`unix://<var_dir>/redis.sock` (embedded Redis, started by `make run`)",
    "var_dir": "`var/` in the repository (relative paths are taken from there)",
    "public_url": "`http://<host>:<port>` (`127.0.0.1` for host `0.0.0.0`)",
    "prometheus_multiproc_dir": "unset (`make run` uses `<var_dir>/metrics`)",
}

HEADER = "| Setting | Environment variable | Default | Meaning |\n|---|---|---|---|"


def env_names(name: str, field: FieldInfo) -> list[str]:
    """The environment variable(s) Settings reads this field from, preferred first."""
    alias = field.validation_alias
    if isinstance(alias, AliasChoices):
        return [str(choice) for choice in alias.choices]
    if isinstance(alias, str):
        return [alias]
    return [ENV_PREFIX + name.upper()]


def all_env_names() -> dict[str, str]:
    """Every environment variable Settings reads, mapped to its field name."""
    return {env: name for name, field in Settings.model_fields.items() for env in env_names(name, field)}


def display_default(name: str, field: FieldInfo) -> str:
    if name in DERIVED_DEFAULTS:
        return DERIVED_DEFAULTS[name]
    value = field.default
    if isinstance(value, bool):
        return f"`{str(value).lower()}`"
    return f"`{value}`"


def markdown() -> str:
    rows = [HEADER]
    for name, field in Settings.model_fields.items():
        envs = " or ".join(f"`{env}`" for env in env_names(name, field))
        rows.append(f"| `{name}` | {envs} | {display_default(name, field)} | {DESCRIPTIONS[name]} |")
    return "\n".join(rows) + "\n"


if __name__ == "__main__":
    missing = sorted(set(Settings.model_fields) - set(DESCRIPTIONS))
    if missing:
        sys.exit(f"no description for: {', '.join(missing)}")
    sys.stdout.write(markdown())
