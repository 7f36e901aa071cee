import pytest
from pydantic import ValidationError

from mlplatform.config import DEFAULT_SECRET_KEY, PROJECT_ROOT, Settings

STRONG_SECRET = "k" * 32
URL_VARIABLES = ("DATABASE_URL", "MLPLATFORM_DATABASE_URL", "REDIS_URL", "MLPLATFORM_REDIS_URL")


@pytest.fixture
def bare_env(monkeypatch):
    """No URLs from the test environment; settings built from it ignore any .env file."""
    for name in URL_VARIABLES:
        monkeypatch.delenv(name, raising=False)

    def make(**values) -> Settings:
        return Settings(_env_file=None, **values)

    return make


@pytest.mark.parametrize("env", ["production", "test"])
@pytest.mark.parametrize("secret", [DEFAULT_SECRET_KEY, "short", "s" * 31])
def test_production_and_test_refuse_weak_secret_keys(bare_env, env, secret):
    with pytest.raises(ValidationError) as caught:
        bare_env(env=env, secret_key=secret)
    assert "MLPLATFORM_SECRET_KEY" in str(caught.value)


def test_weak_secrets_from_the_environment_are_refused_too(bare_env, monkeypatch):
    monkeypatch.setenv("MLPLATFORM_ENV", "production")
    monkeypatch.setenv("MLPLATFORM_SECRET_KEY", "too-short")
    with pytest.raises(ValidationError):
        bare_env()


@pytest.mark.parametrize("env", ["production", "test"])
def test_a_long_secret_is_accepted_outside_development(bare_env, env):
    assert bare_env(env=env, secret_key=STRONG_SECRET).secret_key == STRONG_SECRET


def test_development_accepts_the_default_secret(bare_env, monkeypatch):
    monkeypatch.delenv("MLPLATFORM_SECRET_KEY", raising=False)
    monkeypatch.delenv("MLPLATFORM_ENV", raising=False)
    settings = bare_env()
    assert (settings.env, settings.secret_key) == ("development", DEFAULT_SECRET_KEY)


@pytest.mark.parametrize("prefix", ["", "MLPLATFORM_"])
def test_database_and_redis_urls_with_or_without_prefix(bare_env, monkeypatch, prefix):
    monkeypatch.setenv(f"{prefix}DATABASE_URL", "postgresql+psycopg://app@db:5432/mlp")
    monkeypatch.setenv(f"{prefix}REDIS_URL", "redis://cache:6379/3")
    settings = bare_env()
    assert settings.database_url == "postgresql+psycopg://app@db:5432/mlp"
    assert settings.redis_url == "redis://cache:6379/3"
    assert not settings.uses_embedded_redis


def test_defaults_live_under_var_dir(bare_env, tmp_path):
    settings = bare_env(var_dir=tmp_path)
    assert settings.database_url == f"sqlite:///{tmp_path}/mlplatform.db"
    assert settings.embedded_redis_socket == tmp_path / "redis.sock"
    assert settings.redis_url == f"unix://{tmp_path}/redis.sock"
    assert settings.uses_embedded_redis
    assert settings.metrics_dir == tmp_path / "metrics"


def test_a_relative_var_dir_is_under_the_project(bare_env):
    settings = bare_env(var_dir="var/elsewhere")
    assert settings.var_dir == PROJECT_ROOT / "var" / "elsewhere"
    assert settings.database_url == f"sqlite:///{PROJECT_ROOT}/var/elsewhere/mlplatform.db"


def test_documented_defaults(bare_env, monkeypatch):
    for name in ("MLPLATFORM_BCRYPT_ROUNDS", "MLPLATFORM_HOST", "MLPLATFORM_PORT", "MLPLATFORM_PUBLIC_URL"):
        monkeypatch.delenv(name, raising=False)
    s = bare_env()
    assert (s.access_token_minutes, s.refresh_token_days, s.bcrypt_rounds) == (30, 7, 12)
    assert (s.login_max_failures_per_account, s.login_max_failures_per_ip) == (5, 20)
    assert s.login_window_seconds == 15 * 60
    assert 0 < s.auth_cache_seconds <= 1
    assert s.public_url == "http://127.0.0.1:8000"


@pytest.mark.parametrize("field, value", [("bcrypt_rounds", 3), ("auth_cache_seconds", 1.5), ("port", 0)])
def test_out_of_range_values_are_refused(bare_env, field, value):
    with pytest.raises(ValidationError):
        bare_env(**{field: value})
