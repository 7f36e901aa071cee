"""Shared by the service tests."""

from __future__ import annotations

import pytest

from mlplatform.errors import AuthenticationFailed

PASSWORD = "correct horse battery"
IP = "203.0.113.7"


def auth_failure_code(call, *args) -> str:
    """The code of the AuthenticationFailed that `call(*args)` raises."""
    with pytest.raises(AuthenticationFailed) as caught:
        call(*args)
    return caught.value.code
