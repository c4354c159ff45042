"""The media core behind spot-checks: :class:`alerts.spotcheck.CallRooms` on ``MediaService``.

A spot-check's room is an ordinary recorded ``call`` room: the officer who starts it is a
party (and a monitor if the role may monitor), the subject's login the other party. The
app joins it like the ``/s`` page does — the rooms API and ``rtc.*`` signaling on ``/ws``
(docs/spotchecks.md). Snapshots are the media core's (the next keyframe of the subject's
video, as JPEG with its SHA-256); ending the call stores the recordings.
"""

from __future__ import annotations

from alerts.spotcheck_ports import RecordingFile, SnapshotFile, SubjectLogin
from center.authz import Action, Principal, role_allowed
from media.component import Invitee, MediaService
from media.errors import NoMediaError, RoomNotFoundError
from media.policy import RoomKind


class MediaCallRooms:
    def __init__(self, service: MediaService) -> None:
        self._service = service

    def __repr__(self) -> str:
        return f"MediaCallRooms({self._service!r})"

    async def open(self, officer: Principal, subject: SubjectLogin | None) -> str:
        parties = [Invitee(subject.principal_key, subject.username)] if subject else []
        rec = await self._service.create(
            RoomKind.CALL,
            officer,
            parties=parties,
            monitor_self=role_allowed(officer, Action.ROOMS_MONITOR),
        )
        return rec.id

    async def snapshot(self, room_id: str, subject: SubjectLogin, actor: str) -> SnapshotFile:
        try:
            room = self._service.manager.room(room_id)
        except RoomNotFoundError:
            raise NoMediaError("the call has ended") from None
        pid = next(
            (p.id for p in room.participants.values() if p.principal == subject.principal_key),
            None,
        )
        if pid is None:
            raise NoMediaError("the subject is not in the call")
        info = await self._service.manager.snapshot(pid, actor=actor)
        return SnapshotFile(info.id, info.path, info.sha256, info.width, info.height, info.taken_at)

    async def close(self, room_id: str, actor: str) -> list[RecordingFile]:
        try:
            recordings = await self._service.end(room_id, actor)
        except RoomNotFoundError:
            return []
        return [
            RecordingFile(r.id, str(r.state), r.sha256, r.size_bytes, r.duration_s)
            for r in recordings
        ]
