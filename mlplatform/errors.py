"""Typed domain errors. Transports map them once: api/errors.py to HTTP, ui/errors.py to toasts."""

from __future__ import annotations

from typing import Any


class MLPlatformError(Exception):
    """Base of every error a service raises on purpose."""

    code = "error"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None):
        super().__init__(message)
        self.message = message
        if code:
            self.code = code
        self.details = details


class NotFound(MLPlatformError):
    code = "not_found"


class PermissionDenied(MLPlatformError):
    code = "permission_denied"


class AuthenticationFailed(MLPlatformError):
    code = "authentication_failed"


class Conflict(MLPlatformError):
    code = "conflict"


class Gone(MLPlatformError):
    """The thing existed and served, and has been retired on purpose (e.g. a version past its sunset)."""

    code = "gone"


class InvalidInput(MLPlatformError):
    code = "invalid_input"


class PayloadTooLarge(MLPlatformError):
    code = "payload_too_large"


class UnsupportedMediaType(MLPlatformError):
    code = "unsupported_media_type"


class RateLimited(MLPlatformError):
    code = "rate_limited"

    def __init__(self, message: str, *, retry_after: int, code: str | None = None):
        super().__init__(message, code=code, details={"retry_after": retry_after})
        self.retry_after = retry_after


class ServiceUnavailable(MLPlatformError):
    code = "service_unavailable"


class ModelRejected(MLPlatformError):
    """An uploaded model file failed the upload gate. `code` says why: unsafe_model,
    not_an_estimator, unsupported_format, version_mismatch, load_failed or resource_limit."""

    code = "load_failed"


class ModelUnavailable(MLPlatformError):
    """A model host could not answer (crashed, timed out, being replaced); retrying later works."""

    code = "model_unavailable"

    def __init__(self, message: str, *, retry_after: int = 1, code: str | None = None, details=None):
        super().__init__(message, code=code, details={"retry_after": retry_after, **(details or {})})
        self.retry_after = retry_after
