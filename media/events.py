"""Room events delivered to a participant's callback (the websocket layer forwards them).

Shapes (``type`` first):

* ``{"type": "offer", "sdp": str, "tracks": [TrackInfo]}`` — server-initiated
  renegotiation; reply with ``RoomManager.answer``.
* ``{"type": "tracks", "tracks": [TrackInfo]}`` — which participant each receiving m-line
  (``mid``) now carries; ``participant_id`` is ``None`` for an idle one.
* ``{"type": "state", "state": str}`` — this participant's connection state
  (``new``/``connecting``/``connected``/``closed``).
* ``{"type": "bye", "reason": str}`` — the server ended this participant (``failed``,
  ``room_closed``, ``left``); no events follow.
* ``{"type": "participant_joined" | "participant_left", "participant_id": str,
  "role": str}`` — only about participants this one may see (never a monitor).
* ``{"type": "participant_reconnecting", "participant_id": str, "role": str,
  "grace_s": float}`` — that participant's connection dropped; it keeps its slot for
  ``grace_s`` (a ``participant_joined`` with the same id follows if it comes back, a
  ``participant_left`` if not).
* ``{"type": "quality", **QualitySample.as_dict()}`` — to monitors only, when the grade of
  a participant's ``uplink`` or ``downlink`` changes (media/quality.py).
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypedDict


class TrackInfo(TypedDict):
    mid: str | None
    kind: str
    participant_id: str | None


RoomEvent = dict[str, Any]
EventCallback = Callable[[RoomEvent], None]


def offer_event(sdp: str, tracks: list[TrackInfo]) -> RoomEvent:
    return {"type": "offer", "sdp": sdp, "tracks": tracks}


def tracks_event(tracks: list[TrackInfo]) -> RoomEvent:
    return {"type": "tracks", "tracks": tracks}


def state_event(state: str) -> RoomEvent:
    return {"type": "state", "state": state}


def bye_event(reason: str) -> RoomEvent:
    return {"type": "bye", "reason": reason}


def presence_event(joined: bool, participant_id: str, role: str) -> RoomEvent:
    return {
        "type": "participant_joined" if joined else "participant_left",
        "participant_id": participant_id,
        "role": role,
    }


def reconnecting_event(participant_id: str, role: str, grace_s: float) -> RoomEvent:
    return {
        "type": "participant_reconnecting",
        "participant_id": participant_id,
        "role": role,
        "grace_s": grace_s,
    }
