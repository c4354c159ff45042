"""Domain errors of the media core, with their wire codes in one place.

The websocket and HTTP layers map :attr:`MediaError.code` to their envelopes; the media core
only raises. Nothing here knows about HTTP status codes: the integrator's mapping does
(``bad_sdp`` and ``invalid_state`` are client errors, ``not_allowed`` is 403,
``room_not_found``/``participant_not_found`` are 404, ``room_full`` is 409,
``snapshot_timeout`` is 504).
"""

from __future__ import annotations

from typing import Final

BAD_SDP: Final = "bad_sdp"
ROOM_NOT_FOUND: Final = "room_not_found"
PARTICIPANT_NOT_FOUND: Final = "participant_not_found"
NOT_ALLOWED: Final = "not_allowed"
ROOM_FULL: Final = "room_full"
INVALID_STATE: Final = "invalid_state"
SNAPSHOT_TIMEOUT: Final = "snapshot_timeout"
NO_MEDIA: Final = "no_media"


class MediaError(Exception):
    """Base of every error the media core raises on purpose."""

    code: str = "media_error"

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class BadSdpError(MediaError):
    code = BAD_SDP


class RoomNotFoundError(MediaError):
    code = ROOM_NOT_FOUND


class ParticipantNotFoundError(MediaError):
    code = PARTICIPANT_NOT_FOUND


class NotAllowedError(MediaError):
    code = NOT_ALLOWED


class RoomFullError(MediaError):
    code = ROOM_FULL


class InvalidStateError(MediaError):
    code = INVALID_STATE


class SnapshotTimeoutError(MediaError):
    code = SNAPSHOT_TIMEOUT


class NoMediaError(MediaError):
    """Asked for a snapshot of a track the participant does not publish."""

    code = NO_MEDIA
