"""The one mapping from an exception raised by a command handler to an error reply.

Handlers raise (``Forbidden``, ``InvalidFormat``, ``NotFound`` ...); they never format
errors. Expected errors are logged at debug level; anything else gets a traceback once and
``internal_error`` on the wire, with no internals in the message.
"""

from __future__ import annotations

import logging
from typing import Any, Final

from aiohttp import WSCloseCode

from center.bus import BusError
from center.errors import INTERNAL_ERROR, UNAVAILABLE, CenterError

CLOSE_AUTH_FAILED: Final = WSCloseCode.POLICY_VIOLATION
"""1008: auth timed out, failed, or the cookie came from another origin."""
CLOSE_QUEUE_FULL: Final = WSCloseCode.TRY_AGAIN_LATER
"""1013: the client fell behind its send queue; reconnect and resume with ``since``."""
CLOSE_TOO_BIG: Final = WSCloseCode.MESSAGE_TOO_BIG
"""1009: a frame over ``ws_max_frame_bytes`` (aiohttp closes for us)."""
CLOSE_GOING_AWAY: Final = WSCloseCode.GOING_AWAY
"""1001: server shutdown (center.app closes every websocket with it)."""


def error_of(
    exc: BaseException, logger: logging.Logger | logging.LoggerAdapter[Any]
) -> tuple[str, str, Any]:
    """``(code, message, details)`` for the error reply to a failed command."""
    if isinstance(exc, CenterError):
        logger.debug("command failed: %s %s", exc.code, exc.message)
        return exc.code, exc.message, exc.details
    if isinstance(exc, BusError):
        logger.warning("command failed: event bus unavailable: %s", exc)
        return UNAVAILABLE, "the event bus is unavailable; retry shortly", None
    logger.error("unexpected error in a websocket command", exc_info=exc)
    return INTERNAL_ERROR, "internal error; it has been logged", None
