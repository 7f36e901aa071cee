"""The migrations and the models agree, and the newest migrations step down and up again cleanly
(on PostgreSQL when DATABASE_URL is set, else SQLite)."""

from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from sqlalchemy import inspect
from sqlmodel import SQLModel

from mlplatform import models  # noqa: F401  (every table on the metadata)
from mlplatform.db import get_engine
from mlplatform.runner import PROJECT_ROOT


def columns(table: str) -> set[str]:
    return {c["name"] for c in inspect(get_engine()).get_columns(table)}


def differences() -> list:
    with get_engine().connect() as conn:
        return compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), SQLModel.metadata)


def test_the_models_match_the_migrations():
    assert differences() == []


def test_0003_adds_the_prediction_limits_and_steps_down_and_up_again():
    config = Config(str(PROJECT_ROOT / "alembic.ini"))
    serving = {"rate_limit_per_minute", "cache_ttl_seconds"}
    assert serving <= columns("ml_models") and "rate_limit_per_minute" in columns("api_keys")
    try:
        command.downgrade(config, "0002")
        assert not serving & columns("ml_models") and "rate_limit_per_minute" not in columns("api_keys")
    finally:
        command.upgrade(config, "head")
    assert serving <= columns("ml_models") and "rate_limit_per_minute" in columns("api_keys")
    assert differences() == []
