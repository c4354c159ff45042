"""What a visit needs of the media core: the call room port (implemented in
``web/visit_rooms.py``; ``center`` never imports ``media``)."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from center.visits.models import NoticeKind, Visit
    from center.visits.view import JoinCodeOut


@dataclass(frozen=True, slots=True)
class RoomParty:
    principal_key: str
    name: str


@dataclass(frozen=True, slots=True)
class RecordingRef:
    id: str
    state: str
    sha256: str | None
    size_bytes: int | None
    duration_s: float | None


@dataclass(frozen=True, slots=True)
class ClosedRoom:
    """What a closed room leaves: its recordings, and the grades the server measured per
    party principal (both directions, in time order) for the record's side quality."""

    recordings: list[RecordingRef] = field(default_factory=list)
    grades: dict[str, list[str]] = field(default_factory=dict)


class VisitRooms(Protocol):
    async def open(
        self,
        visit_id: int,
        *,
        parties: list[RoomParty],
        monitors: list[RoomParty],
        record: bool,
        rejoin_grace_s: float,
    ) -> str:
        """A call room for the visit; ``record=False`` and no monitors for a privileged one;
        a dropped party keeps its place for ``rejoin_grace_s``."""
        ...

    async def has_monitor(self, room_id: str) -> bool:
        """A staff monitor is in the room now (asked of the instance that holds it)."""
        ...

    async def mute(self, room_id: str, principal_keys: list[str], muted: bool) -> None:
        """No other participant hears these parties while muted; the recording does."""
        ...

    def latest_grades(self, room_id: str) -> dict[str, str]:
        """Each party principal's latest uplink grade while the room is open here."""
        ...

    async def close(self, room_id: str, actor: str) -> ClosedRoom: ...


class VisitNotices(Protocol):
    """What booking needs of the notices to relatives (``web.visit_notify.VisitNotifier``,
    which posts them to the gateway over HTTP): scheduled in the booking's transaction."""

    async def approved(
        self, session: AsyncSession, visit: Visit, codes: list[JoinCodeOut]
    ) -> None: ...

    async def ended(
        self, session: AsyncSession, visit: Visit, kind: NoticeKind, reason: str
    ) -> None: ...
