"""Who may join a room, who publishes and who sees whom: pure functions, deny by default.

* ``echo``: one ``party``; the server sends the party's own media back (device and network
  check through the real forwarding path). Never recorded.
* ``call``: up to ``max_parties`` parties who see each other, plus any number of
  ``monitor``s who see every party and are seen by no one (silent visit monitoring). The
  recorder is a server-side subscriber of every party.
"""

from __future__ import annotations

from collections.abc import Mapping
from enum import StrEnum

from media.errors import NotAllowedError, RoomFullError


class RoomKind(StrEnum):
    ECHO = "echo"
    CALL = "call"


class Role(StrEnum):
    PARTY = "party"
    MONITOR = "monitor"


def check_join(
    kind: RoomKind,
    role: Role,
    principal: str,
    allowed: Mapping[str, frozenset[Role]],
    present: Mapping[Role, int],
    max_parties: int,
) -> None:
    """Raise unless ``principal`` may join as ``role`` now."""
    if role not in allowed.get(principal, frozenset()):
        raise NotAllowedError(f"{principal!r} may not join this room as {role}")
    if kind is RoomKind.ECHO:
        if role is not Role.PARTY:
            raise NotAllowedError("an echo room has only its party")
        if present.get(Role.PARTY, 0) >= 1:
            raise RoomFullError("the echo room is in use")
    elif role is Role.PARTY and present.get(Role.PARTY, 0) >= max_parties:
        raise RoomFullError(f"the call already has {max_parties} parties")


def publishes(kind: RoomKind, role: Role) -> bool:
    return role is Role.PARTY


def sees(
    kind: RoomKind, viewer_role: Role, viewer_id: str, publisher_role: Role, publisher_id: str
) -> bool:
    """Whether the viewer receives the publisher's media and hears of its presence."""
    if not publishes(kind, publisher_role):
        return False
    if kind is RoomKind.ECHO:
        return viewer_id == publisher_id
    return viewer_id != publisher_id


def recorded(kind: RoomKind, role: Role) -> bool:
    return kind is RoomKind.CALL and publishes(kind, role)
