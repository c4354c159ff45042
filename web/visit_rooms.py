"""The media core behind visits: :class:`center.visits.ports.VisitRooms` on ``MediaService``.

A visit's room is an ordinary ``call`` room: the relatives (their guest sessions) and the
prison terminal (its device token) are its parties, the prison's visit staff its monitors —
monitors are never published to the parties, so they are absent from the parties'
``getStats()``. A privileged visit's room admits no monitor and is not recorded.
"""

from __future__ import annotations

from center.authz import JurisdictionPath, Principal, PrincipalKind
from center.jurisdictions import JurisdictionTree
from center.models import Role
from center.visits.ports import ClosedRoom, RecordingRef, RoomParty
from media.component import Invitee, MediaService
from media.errors import RoomNotFoundError
from media.policy import Role as MediaRole
from media.policy import RoomKind
from media.quality import QualitySample


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

    def has_monitor(self, room_id: str) -> bool:
        try:
            room = self._service.manager.room(room_id)
        except RoomNotFoundError:
            return False
        return any(p.role == MediaRole.MONITOR for p in room.participants.values())

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
        try:
            room = self._service.manager.room(room_id)
            recordings = await self._service.end(room_id, actor)
        except RoomNotFoundError:
            return ClosedRoom()
        grades: dict[str, list[str]] = {}
        for q in room.quality:
            principal = room.principals.get(q.participant_id)
            if principal and _graded(q):
                grades.setdefault(principal, []).append(str(q.grade))
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
