"""The documentation of settings cannot drift from mlplatform/config.py:
README.md holds exactly the table scripts/settings_table.py generates, and .env.example lists
every setting with its true default, commented out."""

from __future__ import annotations

import importlib.util
import os
import re
import typing
from pathlib import Path

import pytest

from mlplatform.config import PROJECT_ROOT, Settings

ROOT = Path(__file__).resolve().parent.parent
_spec = importlib.util.spec_from_file_location("settings_table", ROOT / "scripts" / "settings_table.py")
settings_table = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(settings_table)

START, END = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
COMPOSE_ONLY = {"POSTGRES_PASSWORD"}  # documented in .env.example for docker-compose.yml, not a Setting


@pytest.fixture
def clean_env(monkeypatch):
    """No setting from the test environment leaks into Settings() here."""
    known = settings_table.all_env_names()
    for name in list(os.environ):
        if name.startswith(settings_table.ENV_PREFIX) or name in known:
            monkeypatch.delenv(name)
    return monkeypatch


def test_every_setting_has_a_description():
    assert set(settings_table.DESCRIPTIONS) == set(Settings.model_fields)
    assert all(text.strip() for text in settings_table.DESCRIPTIONS.values())
    assert set(settings_table.DERIVED_DEFAULTS) <= set(Settings.model_fields)


def test_readme_contains_exactly_the_generated_table():
    readme = (ROOT / "README.md").read_text()
    assert readme.count(START) == 1 and readme.count(END) == 1
    documented = readme.split(START, 1)[1].split(END, 1)[0]
    assert documented == settings_table.markdown(), "run: .venv/bin/python scripts/settings_table.py"
    rows = [line for line in documented.splitlines() if line.startswith("| `")]
    assert [re.match(r"\| `(\w+)`", row).group(1) for row in rows] == list(Settings.model_fields)


def _other_value(field) -> str:
    """A valid value different from the field's default, derived from its type."""
    default, annotation = field.default, field.annotation
    if typing.get_origin(annotation) is typing.Literal:
        return next(choice for choice in typing.get_args(annotation) if choice != default)
    if annotation is bool:
        return str(not default).lower()
    if annotation is int:
        return str(default + 1)
    if annotation is float:
        return str(default / 2)
    if annotation is Path:
        return "/tmp/other-var-dir"
    return "other-value-0123456789abcdef0123456789abcdef"


def test_table_names_the_variables_settings_really_reads(clean_env):
    clean_env.setenv("MLPLATFORM_SECRET_KEY", "base-secret-0123456789abcdef0123456789")  # env may leave development
    default = Settings(_env_file=None)
    for name, field in Settings.model_fields.items():
        for env in settings_table.env_names(name, field):
            before = os.environ.get(env)
            clean_env.setenv(env, _other_value(field))
            assert getattr(Settings(_env_file=None), name) != getattr(default, name), f"{env} does not set {name}"
            if before is None:
                clean_env.delenv(env)
            else:
                clean_env.setenv(env, before)


def test_derived_defaults_are_what_the_table_says(clean_env, tmp_path):
    clean_env.setenv("MLPLATFORM_VAR_DIR", str(tmp_path))
    clean_env.setenv("MLPLATFORM_HOST", "0.0.0.0")
    clean_env.setenv("MLPLATFORM_PORT", "9001")
    s = Settings(_env_file=None)
    assert s.database_url == f"sqlite:///{tmp_path}/mlplatform.db"
    assert s.redis_url == f"unix://{tmp_path}/redis.sock" and s.uses_embedded_redis
    assert s.public_url == "http://127.0.0.1:9001"
    assert s.prometheus_multiproc_dir == "" and s.metrics_dir == tmp_path / "metrics"
    clean_env.setenv("MLPLATFORM_VAR_DIR", "relative/dir")
    assert Settings(_env_file=None).var_dir == PROJECT_ROOT / "relative" / "dir"
    clean_env.delenv("MLPLATFORM_VAR_DIR")
    assert Settings(_env_file=None).var_dir == PROJECT_ROOT / "var"


def env_example() -> list[tuple[str, str, str]]:
    """(name, value, the comment line right above) for every `# NAME=value` line."""
    lines = (ROOT / ".env.example").read_text().splitlines()
    entries = []
    for i, line in enumerate(lines):
        if match := re.fullmatch(r"#\s*([A-Z][A-Z0-9_]*)=(.*)", line):
            entries.append((match.group(1), match.group(2), lines[i - 1] if i else ""))
        else:
            assert not re.match(r"\s*[A-Z][A-Z0-9_]*\s*=", line), f"not commented out: {line}"
    return entries


def test_env_example_lists_every_setting_once_with_a_comment():
    entries = env_example()
    names = [name for name, _, _ in entries]
    assert len(names) == len(set(names))
    known = settings_table.all_env_names()
    for name, _, comment in entries:
        assert name in known or name in COMPOSE_ONLY, f"{name} is not read by Settings"
        assert comment.startswith("# ") and "=" not in comment.split()[1], f"{name} needs a comment line above it"
    covered = {known[name] for name in names if name in known}
    assert covered == set(Settings.model_fields), f"missing: {set(Settings.model_fields) - covered}"


def test_env_example_values_are_the_defaults(clean_env):
    default = Settings(_env_file=None)
    for name, value, _ in env_example():
        if name in COMPOSE_ONLY:
            continue
        field = settings_table.all_env_names()[name]
        clean_env.setenv(name, value)
        assert getattr(Settings(_env_file=None), field) == getattr(default, field), f"{name}={value}"
        clean_env.delenv(name)
