"""Error codes and domain exceptions, in one place.

Handlers raise; they never format errors. :func:`error_body` builds the one envelope that
HTTP (``{"error": {...}}``) and the websocket (``{"id", "type": "result", "success": false,
"error": {...}}``) both use, and every :class:`CenterError` carries its HTTP status.
"""

from __future__ import annotations

from typing import Any, Final

BAD_REQUEST: Final = "bad_request"
INVALID_JSON: Final = "invalid_json"
VALIDATION_FAILED: Final = "validation_failed"
UNAUTHORIZED: Final = "unauthorized"
INVALID_CREDENTIALS: Final = "invalid_credentials"
FORBIDDEN: Final = "forbidden"
CSRF_FAILED: Final = "csrf_failed"
NOT_FOUND: Final = "not_found"
METHOD_NOT_ALLOWED: Final = "method_not_allowed"
CONFLICT: Final = "conflict"
INVALID_TRANSITION: Final = "invalid_transition"
PAYLOAD_TOO_LARGE: Final = "payload_too_large"
UNSUPPORTED_MEDIA_TYPE: Final = "unsupported_media_type"
RATE_LIMITED: Final = "rate_limited"
TOO_MANY_ATTEMPTS: Final = "too_many_attempts"
UNAVAILABLE: Final = "unavailable"
INTERNAL_ERROR: Final = "internal_error"
# websocket-only codes
UNKNOWN_COMMAND: Final = "unknown_command"
INVALID_FORMAT: Final = "invalid_format"
AUTH_TIMEOUT: Final = "auth_timeout"
ID_REUSE: Final = "id_reuse"
NOT_SUBSCRIBED: Final = "not_subscribed"


class CenterError(Exception):
    """Base of every error the center reports to a client."""

    status: int = 400
    code: str = BAD_REQUEST

    def __init__(
        self,
        message: str,
        *,
        code: str | None = None,
        details: Any = None,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        if code is not None:
            self.code = code
        if status is not None:
            self.status = status
        self.details = details
        self.headers = headers or {}


class BadRequest(CenterError):
    status, code = 400, BAD_REQUEST


class ValidationFailed(CenterError):
    status, code = 422, VALIDATION_FAILED


class Unauthorized(CenterError):
    status, code = 401, UNAUTHORIZED


class Forbidden(CenterError):
    status, code = 403, FORBIDDEN


class NotFound(CenterError):
    status, code = 404, NOT_FOUND


class Conflict(CenterError):
    status, code = 409, CONFLICT


class InvalidTransition(CenterError):
    status, code = 409, INVALID_TRANSITION


class PayloadTooLarge(CenterError):
    status, code = 413, PAYLOAD_TOO_LARGE


class RateLimited(CenterError):
    """429; ``retry_after`` seconds goes into the ``Retry-After`` header."""

    status, code = 429, RATE_LIMITED

    def __init__(self, message: str, *, retry_after: float, code: str | None = None) -> None:
        self.retry_after = max(1, int(retry_after + 0.999))
        super().__init__(
            message,
            code=code,
            details={"retry_after": self.retry_after},
            headers={"Retry-After": str(self.retry_after)},
        )


class Unavailable(CenterError):
    status, code = 503, UNAVAILABLE


class InvalidFormat(CenterError):
    """A websocket message that breaks the envelope or its command's schema."""

    status, code = 400, INVALID_FORMAT


class UnknownCommand(CenterError):
    status, code = 400, UNKNOWN_COMMAND


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The ``{"code", "message", "details"?}`` object inside every error envelope."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return body
