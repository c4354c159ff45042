"""Error codes and domain exceptions, in one place: the one error map.

Handlers raise; they never format errors. Every domain error is a :class:`CenterError`
subclass that declares its wire ``code`` and HTTP ``status`` once, as class attributes —
``media.errors.MediaError`` included — and each declaration lands in :data:`ERRORS`
(code → class), which refuses a code declared with two statuses.

:func:`error_of` is the one function from *any* exception to the error a client sees, used by
the HTTP error middleware and the websocket dispatcher alike:

- a :class:`CenterError` is itself (expected: logged at debug level);
- an :class:`Outage` (the bus cannot reach Redis, or is closed) is ``503 unavailable`` with
  a fixed message (the cause is logged as a warning, never sent);
- anything else is ``500 internal_error``, logged once with its traceback, with no internals
  in the message.

:func:`error_body` builds the ``{"code", "message", "details"?}`` object inside both
envelopes (HTTP ``{"error": {...}}``, websocket ``{"id", "type": "result", "success":
false, "error": {...}}``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar, Final

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
HTTP_ERROR: Final = "http_error"
EVIDENCE_CORRUPT: Final = "evidence_corrupt"
BOOKING_REFUSED: Final = "booking_refused"
CODE_USED: Final = "code_used"
CODE_NOT_VALID_NOW: Final = "code_not_valid_now"
MONITOR_REQUIRED: Final = "monitor_required"
# websocket-only codes
UNKNOWN_COMMAND: Final = "unknown_command"
INVALID_FORMAT: Final = "invalid_format"
AUTH_TIMEOUT: Final = "auth_timeout"
ID_REUSE: Final = "id_reuse"
NOT_SUBSCRIBED: Final = "not_subscribed"
ALREADY_SUBSCRIBED: Final = "already_subscribed"
TOO_MANY_SUBSCRIPTIONS: Final = "too_many_subscriptions"


ERRORS: dict[str, type[CenterError]] = {}
"""Every declared code → the class that declared it (filled as the classes are defined)."""


class CenterError(Exception):
    """Base of every error the center reports to a client.

    A subclass declares ``status, code = 404, NOT_FOUND``. The ``code=``/``status=``
    arguments are kept for call sites that have not yet moved to a declared subclass; new
    code raises the subclass.
    """

    status: int = 400
    code: str = BAD_REQUEST

    def __init_subclass__(cls, **kwargs: Any) -> None:
        super().__init_subclass__(**kwargs)
        if "code" not in cls.__dict__ and "status" not in cls.__dict__:
            return
        known = ERRORS.get(cls.code)
        if known is not None and known.status != cls.status:
            raise TypeError(
                f"{cls.__qualname__} declares {cls.code!r} as {cls.status}; "
                f"{known.__qualname__} already declared it as {known.status}"
            )
        ERRORS.setdefault(cls.code, cls)

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


class InvalidJson(BadRequest):
    status, code = 400, INVALID_JSON


class ValidationFailed(CenterError):
    status, code = 422, VALIDATION_FAILED

    @classmethod
    def of(cls, problems: Mapping[str, str], what: str = "request") -> ValidationFailed:
        """The one 422: ``details = {"field": <first bad field>, "fields": {field:
        problem}}``; the message names each field in quotes (``'lat' must be at most 90``)."""
        first = next(iter(problems), "")
        listed = "; ".join(f"'{k}' {v}" for k, v in problems.items())
        return cls(listed or f"invalid {what}", details={"field": first, "fields": dict(problems)})


class Unauthorized(CenterError):
    status, code = 401, UNAUTHORIZED


class InvalidCredentials(CenterError):
    """Wrong username or password, or an unknown pairing code."""

    status, code = 401, INVALID_CREDENTIALS


class Forbidden(CenterError):
    status, code = 403, FORBIDDEN


class CsrfFailed(CenterError):
    status, code = 403, CSRF_FAILED


class NotFound(CenterError):
    status, code = 404, NOT_FOUND


class MethodNotAllowed(CenterError):
    status, code = 405, METHOD_NOT_ALLOWED


class Conflict(CenterError):
    status, code = 409, CONFLICT


class InvalidTransition(CenterError):
    status, code = 409, INVALID_TRANSITION


class PayloadTooLarge(CenterError):
    status, code = 413, PAYLOAD_TOO_LARGE


class UnsupportedMediaType(CenterError):
    status, code = 415, UNSUPPORTED_MEDIA_TYPE


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


class TooManyAttempts(RateLimited):
    """Locked out after repeated wrong secrets (logins, pairing codes)."""

    status, code = 429, TOO_MANY_ATTEMPTS


class InternalError(CenterError):
    status, code = 500, INTERNAL_ERROR


class EvidenceCorrupt(CenterError):
    """A stored evidence file is missing or no longer matches its recorded SHA-256."""

    status, code = 500, EVIDENCE_CORRUPT


class BookingRefused(CenterError):
    """A visit booking that breaks a rule; ``details.rule`` names the rule and the message
    says what to change (another day, another relative, after the ban)."""

    status, code = 409, BOOKING_REFUSED

    def __init__(self, rule: str, message: str, **details: Any) -> None:
        super().__init__(message, details={"rule": rule, **details})


class CodeUsed(CenterError):
    """A visit join code that was already exchanged for a session (single use per person)."""

    status, code = 409, CODE_USED


class CodeNotValidNow(CenterError):
    """A visit join code used outside its window (before the slot, after it, or for a
    visit that no longer takes place)."""

    status, code = 403, CODE_NOT_VALID_NOW


class MonitorRequired(CenterError):
    """A visit admitted while no staff monitor watches it (``visit_require_monitor``)."""

    status, code = 409, MONITOR_REQUIRED


class Unavailable(CenterError):
    status, code = 503, UNAVAILABLE


class HttpError(CenterError):
    """An aiohttp ``HTTPException`` without a code of its own; its status is aiohttp's."""

    status, code = 400, HTTP_ERROR


class InvalidFormat(CenterError):
    """A websocket message that breaks the envelope or its command's model."""

    status, code = 400, INVALID_FORMAT


class UnknownCommand(CenterError):
    status, code = 400, UNKNOWN_COMMAND


class NotSubscribed(CenterError):
    """``unsubscribe`` of a subscription id the connection does not hold."""

    status, code = 404, NOT_SUBSCRIBED


class AlreadySubscribed(CenterError):
    """``subscribe`` to a topic and scope the connection already receives (each copy would
    send the same snapshot and events again)."""

    status, code = 409, ALREADY_SUBSCRIBED


class TooManySubscriptions(CenterError):
    """More subscriptions on one socket than ``ws_max_subscriptions``."""

    status, code = 429, TOO_MANY_SUBSCRIPTIONS


class Outage(Exception):
    """A backing service is down (the bus cannot reach Redis, or it is closed).

    Not a :class:`CenterError`: its message is for the log (it names hosts and causes), so
    the client gets :attr:`public_message` as ``503 unavailable`` instead.
    """

    status: ClassVar[int] = 503
    code: ClassVar[str] = UNAVAILABLE
    public_message: ClassVar[str] = "a backing service is unavailable; retry shortly"


_INTERNAL_MESSAGE: Final = "internal error; it has been logged"


def error_of(
    exc: BaseException,
    logger: logging.Logger | logging.LoggerAdapter[Any],
    where: str = "",
) -> CenterError:
    """The error a client sees for ``exc`` (see the module docstring); logs it once.

    ``where`` names what failed in the log line (``POST /api/v1/...``, ``rtc.join``).
    """
    if isinstance(exc, CenterError):
        if logger.isEnabledFor(logging.DEBUG):
            logger.debug("%s failed: %s %s", where or "request", exc.code, exc.message)
        return exc
    if isinstance(exc, Outage):
        logger.warning("%s failed: %s", where or "request", exc)
        return Unavailable(type(exc).public_message)
    logger.error("unexpected error in %s", where or "a request", exc_info=exc)
    return InternalError(_INTERNAL_MESSAGE)


def error_body(code: str, message: str, details: Any = None) -> dict[str, Any]:
    """The ``{"code", "message", "details"?}`` object inside every error envelope."""
    body: dict[str, Any] = {"code": code, "message": message}
    if details is not None:
        body["details"] = details
    return body
