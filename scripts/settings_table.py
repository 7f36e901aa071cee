"""Print the README's settings table, generated from mlplatform.config.Settings.

    .venv/bin/python scripts/settings_table.py

tests/test_settings_docs.py checks that README.md contains exactly this output and that every
Settings field has a docstring in config.py, so the README cannot drift from config.py.
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

# What each setting means: its docstring in mlplatform/config.py.
DESCRIPTIONS: dict[str, str] = {name: field.description or "" for name, field in Settings.model_fields.items()}

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


def write_readme(readme: Path) -> None:
    """Replace the table between the README's settings-table markers."""
    text = readme.read_text()
    start, end = "<!-- settings-table:start -->\n", "<!-- settings-table:end -->"
    head, rest = text.split(start, 1)
    readme.write_text(head + start + markdown() + end + rest.split(end, 1)[1])


if __name__ == "__main__":
    missing = sorted(set(Settings.model_fields) - set(DESCRIPTIONS))
    if missing:
        sys.exit(f"no description for: {', '.join(missing)}")
    if sys.argv[1:] == ["--write"]:  # update README.md in place
        write_readme(Path(__file__).resolve().parent.parent / "README.md")
    else:
        sys.stdout.write(markdown())
