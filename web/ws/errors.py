"""The websocket's close codes.

Errors in replies come from the one map shared with HTTP, :func:`center.errors.error_of`
(handlers raise ``Forbidden``, ``InvalidFormat``, ``NotFound`` ...; they never format errors).
"""

from __future__ import annotations

from typing import Final

from aiohttp import WSCloseCode

CLOSE_AUTH_FAILED: Final = WSCloseCode.POLICY_VIOLATION
"""1008: auth timed out, failed, or the cookie came from another origin."""
CLOSE_QUEUE_FULL: Final = WSCloseCode.TRY_AGAIN_LATER
"""1013: the client fell behind its send queue; reconnect and resume with ``since``."""
CLOSE_TOO_BIG: Final = WSCloseCode.MESSAGE_TOO_BIG
"""1009: a frame over ``ws_max_frame_bytes`` (aiohttp closes for us)."""
CLOSE_REVOKED: Final = 4001
"""4001, reason ``revoked``: the key, token, user or session it authenticated with was
revoked (or the user logged out); reconnecting with it fails."""
CLOSE_VISIT_ENDED: Final = 4002
"""4002, reason ``visit_ended``: the relative's visit ended (its guest session is refused
from now on); the page shows the end and does not reconnect."""
CLOSE_GOING_AWAY: Final = WSCloseCode.GOING_AWAY
"""1001: server shutdown (web.app closes every websocket with it)."""
