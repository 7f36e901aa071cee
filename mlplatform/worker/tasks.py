"""RQ tasks: thin wrappers over services. Tasks take ids, never objects."""

from __future__ import annotations

from mlplatform.services import auth


def purge_expired_refresh_tokens() -> int:
    return auth.purge_expired_refresh_tokens()
