"""RQ tasks: thin wrappers over services. Tasks take ids, never objects."""

from __future__ import annotations

from mlplatform.services import auth, registry_aliases


def purge_expired_refresh_tokens() -> int:
    return auth.purge_expired_refresh_tokens()


def warm_version(version_id: str) -> bool:
    return registry_aliases.warm_version(version_id)
