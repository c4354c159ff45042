"""The media core behind visits: :class:`center.visits.ports.VisitRooms` on ``MediaService``.

A visit's room is an ordinary ``call`` room: the relatives (their guest sessions) and the
prison terminal (its device token) are its parties, the prison's visit staff its monitors —
monitors are never published to the parties, so they are absent from the parties'
``getStats()``. A privileged visit's room admits no monitor and is not recorded.
"""

from __future__ import annotations

import logging

from center.authz import JurisdictionPath, Principal, PrincipalKind
from center.errors import Outage
from center.jurisdictions import JurisdictionTree
from center.models import Role
from center.visits.ports import ClosedRoom, RecordingRef, RoomParty
from media.component import Invitee, MediaService
from media.errors import RoomNotFoundError
from media.policy import Role as MediaRole
from media.policy import RoomKind
from media.quality import QualitySample

_LOGGER = logging.getLogger(__name__)


class MediaVisitRooms:
    def __init__(self, service: MediaService, tree: JurisdictionTree) -> None:
        self._service = service
        self._tree = tree

    def __repr__(self) -> str:
        return f"MediaVisitRooms({self._service!r})"

    async def open(
        self,
        visit_id: int,
        *,
        parties: list[RoomParty],
        monitors: list[RoomParty],
        record: bool,
        rejoin_grace_s: float,
    ) -> str:
        creator = Principal(
            kind=PrincipalKind.DEVICE,
            id=f"visit-{visit_id}",
            name=f"visit-{visit_id}",
            role=Role.VISIT_STAFF,
            jurisdiction=self._city(),
        )
        rec = await self._service.create(
            RoomKind.CALL,
            creator,
            parties=[Invitee(p.principal_key, p.name) for p in parties],
            monitors=[Invitee(m.principal_key, m.name) for m in monitors],
            record=record,
            rejoin_grace_s=rejoin_grace_s,
        )
        return rec.id

    def _city(self) -> JurisdictionPath:
        """Rooms are scoped by jurisdiction; prisons lie outside the tree, so the city."""
        roots = self._tree.roots()
        return (roots[0].id,) if roots else ()

    async def has_monitor(self, room_id: str) -> bool:
        """Asked of the room's owner: staff may watch through any instance."""
        try:
            return await self._service.monitored(room_id)
        except RoomNotFoundError:
            return False

    async def mute(self, room_id: str, principal_keys: list[str], muted: bool) -> None:
        try:
            await self._service.mute(room_id, principal_keys, muted)
        except RoomNotFoundError:
            _LOGGER.info("mute of room %s: the room is gone", room_id)

    def latest_grades(self, room_id: str) -> dict[str, str]:
        try:
            room = self._service.manager.room(room_id)
        except RoomNotFoundError:
            return {}
        latest: dict[str, str] = {}
        for q in room.quality:
            principal = room.principals.get(q.participant_id)
            if principal and _graded(q) and q.direction == "uplink":
                latest[principal] = str(q.grade)
        return latest

    async def close(self, room_id: str, actor: str) -> ClosedRoom:
        """Close the room on whichever instance owns it (a timer fires on any instance);
        the per-side grades come from the room's quality timeline when it lives here."""
        grades: dict[str, list[str]] = {}
        try:
            room = self._service.manager.room(room_id)
        except RoomNotFoundError:
            room = None
        if room is not None:
            for q in room.quality:
                principal = room.principals.get(q.participant_id)
                if principal and _graded(q):
                    grades.setdefault(principal, []).append(str(q.grade))
        try:
            recordings = await self._service.end_anywhere(room_id, actor)
        except RoomNotFoundError:
            return ClosedRoom([], grades)
        except Outage:
            # the owner died with its room: there is nothing left to close from here
            _LOGGER.warning("room %s: its owner instance does not answer", room_id)
            return ClosedRoom([], grades)
        return ClosedRoom(
            [
                RecordingRef(r.id, str(r.state), r.sha256, r.size_bytes, r.duration_s)
                for r in recordings
            ],
            grades,
        )


def _graded(sample: QualitySample) -> bool:
    """A party's sample as the server measured it (a page's own getStats() may be absent)."""
    return sample.source == "server" and sample.role != MediaRole.MONITOR
