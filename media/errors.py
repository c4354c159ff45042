"""Domain errors of the media core: each declares its wire code and HTTP status.

They are :class:`center.errors.CenterError` subclasses, so the one error map
(:data:`center.errors.ERRORS`) holds their codes too and both the HTTP middleware and the
websocket dispatcher answer them with no translation: ``bad_sdp`` 400, ``not_allowed`` 403,
``room_not_found``/``participant_not_found``/``no_media`` 404, ``room_full`` and
``invalid_state`` 409, ``rejoin_expired`` 410, ``snapshot_timeout`` 504. The media core only raises.
"""

from __future__ import annotations

from typing import Final

from center.errors import CenterError

MEDIA_ERROR: Final = "media_error"
BAD_SDP: Final = "bad_sdp"
ROOM_NOT_FOUND: Final = "room_not_found"
PARTICIPANT_NOT_FOUND: Final = "participant_not_found"
NOT_ALLOWED: Final = "not_allowed"
ROOM_FULL: Final = "room_full"
INVALID_STATE: Final = "invalid_state"
SNAPSHOT_TIMEOUT: Final = "snapshot_timeout"
NO_MEDIA: Final = "no_media"
REJOIN_EXPIRED: Final = "rejoin_expired"


class MediaError(CenterError):
    """Base of every error the media core raises on purpose."""

    status, code = 400, MEDIA_ERROR

    def __init__(self, message: str) -> None:
        super().__init__(message)


class BadSdpError(MediaError):
    status, code = 400, BAD_SDP


class RoomNotFoundError(MediaError):
    status, code = 404, ROOM_NOT_FOUND


class ParticipantNotFoundError(MediaError):
    status, code = 404, PARTICIPANT_NOT_FOUND


class NotAllowedError(MediaError):
    status, code = 403, NOT_ALLOWED


class RoomFullError(MediaError):
    status, code = 409, ROOM_FULL


class InvalidStateError(MediaError):
    status, code = 409, INVALID_STATE


class SnapshotTimeoutError(MediaError):
    status, code = 504, SNAPSHOT_TIMEOUT


class NoMediaError(MediaError):
    """Asked for a snapshot of a track the participant does not publish."""

    status, code = 404, NO_MEDIA


class RejoinExpiredError(MediaError):
    """A dropped participant came back after its grace period: the slot is gone."""

    status, code = 410, REJOIN_EXPIRED
