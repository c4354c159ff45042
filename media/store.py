"""Where recording and snapshot metadata goes.

The media core talks to a small :class:`RecordingStore` protocol so it can be tested
without a database; :class:`SqlRecordingStore` is the production one (rows in
``media_recordings``/``media_snapshots`` plus a hash-chained audit entry in the same
transaction, via ``center.audit.record``).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime
from pathlib import Path
from typing import Any, Protocol

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from media.recorder import RecordingInfo, RecordingState

ACTION_RECORDING_STARTED = "media.recording_started"
ACTION_RECORDING_FINISHED = "media.recording_finished"
ACTION_RECORDING_DELETED = "media.recording_deleted"
ACTION_SNAPSHOT_TAKEN = "media.snapshot_taken"


@dataclass(frozen=True, slots=True)
class SnapshotInfo:
    id: str
    room_id: str
    participant_id: str
    track_kind: str
    path: Path
    sha256: str
    width: int
    height: int
    taken_at: datetime


class RecordingStore(Protocol):
    async def recording_started(self, info: RecordingInfo) -> None: ...

    async def recording_finished(self, info: RecordingInfo) -> None:
        """Called once per recording with its final state, size, duration and SHA-256."""

    async def recording_deleted(self, info: RecordingInfo, at: datetime) -> None: ...

    async def unfinished_recordings(self) -> list[RecordingInfo]:
        """Recordings still marked as recording (the process died during them)."""

    async def expired_recordings(self, before: datetime) -> list[RecordingInfo]:
        """Finished or interrupted recordings that ended before ``before``."""

    async def snapshot_taken(self, info: SnapshotInfo, actor: str | None) -> None: ...


_KEPT = (RecordingState.FINISHED, RecordingState.INTERRUPTED, RecordingState.EMPTY)


class MemoryRecordingStore:
    """In-process store for tests and for running without a database."""

    def __init__(self) -> None:
        self.recordings: dict[str, RecordingInfo] = {}
        self.snapshots: dict[str, SnapshotInfo] = {}
        self.audit: list[tuple[str, str, dict[str, Any]]] = []

    async def recording_started(self, info: RecordingInfo) -> None:
        self.recordings[info.id] = info
        self.audit.append((ACTION_RECORDING_STARTED, info.id, _details(info)))

    async def recording_finished(self, info: RecordingInfo) -> None:
        self.recordings[info.id] = info
        self.audit.append((ACTION_RECORDING_FINISHED, info.id, _details(info)))

    async def recording_deleted(self, info: RecordingInfo, at: datetime) -> None:
        self.recordings[info.id] = replace(info, state=RecordingState.DELETED)
        self.audit.append((ACTION_RECORDING_DELETED, info.id, _details(info)))

    async def unfinished_recordings(self) -> list[RecordingInfo]:
        return [r for r in self.recordings.values() if r.state is RecordingState.RECORDING]

    async def expired_recordings(self, before: datetime) -> list[RecordingInfo]:
        return [
            r
            for r in self.recordings.values()
            if r.state in _KEPT and (r.ended_at or r.started_at) < before
        ]

    async def snapshot_taken(self, info: SnapshotInfo, actor: str | None) -> None:
        self.snapshots[info.id] = info
        self.audit.append((ACTION_SNAPSHOT_TAKEN, info.id, {"sha256": info.sha256}))


def _details(info: RecordingInfo) -> dict[str, Any]:
    return {
        "room_id": info.room_id,
        "participant_id": info.participant_id,
        "path": str(info.path),
        "state": str(info.state),
        "size_bytes": info.size_bytes,
        "duration_s": info.duration_s,
        "sha256": info.sha256,
    }


class SqlRecordingStore:
    """Rows plus audit entries, one short transaction per event."""

    def __init__(self, sessionmaker: async_sessionmaker[AsyncSession]) -> None:
        self._sessionmaker = sessionmaker

    async def _audit(
        self,
        session: AsyncSession,
        action: str,
        kind: str,
        target: str,
        details: dict[str, Any],
        at: datetime,
        actor: str | None = None,
    ) -> None:
        # Imported here: center.audit belongs to the foundation and media must import
        # without it (tests, tools).
        from center import audit

        await audit.record(
            session,
            actor=actor,
            action=action,
            target_type=kind,
            target_id=target,
            details=details,
            at=at,
        )

    async def recording_started(self, info: RecordingInfo) -> None:
        from media.models import Recording

        async with self._sessionmaker() as session:
            session.add(
                Recording(
                    id=info.id,
                    room_id=info.room_id,
                    participant_id=info.participant_id,
                    path=str(info.path),
                    started_at=info.started_at,
                    state=str(info.state),
                    created_at=info.started_at,
                )
            )
            await self._audit(
                session,
                ACTION_RECORDING_STARTED,
                "recording",
                info.id,
                _details(info),
                info.started_at,
            )
            await session.commit()

    async def recording_finished(self, info: RecordingInfo) -> None:
        from media.models import Recording

        async with self._sessionmaker() as session:
            row = await session.get(Recording, info.id)
            if row is None:
                row = Recording(
                    id=info.id,
                    room_id=info.room_id,
                    participant_id=info.participant_id,
                    path=str(info.path),
                    started_at=info.started_at,
                    created_at=info.started_at,
                    state=str(info.state),
                )
                session.add(row)
            row.state = str(info.state)
            row.ended_at = info.ended_at
            row.size_bytes = info.size_bytes
            row.duration_s = info.duration_s
            row.sha256 = info.sha256
            await self._audit(
                session,
                ACTION_RECORDING_FINISHED,
                "recording",
                info.id,
                _details(info),
                info.ended_at or info.started_at,
            )
            await session.commit()

    async def recording_deleted(self, info: RecordingInfo, at: datetime) -> None:
        from media.models import Recording

        async with self._sessionmaker() as session:
            row = await session.get(Recording, info.id)
            if row is not None:
                row.state = str(RecordingState.DELETED)
            await self._audit(
                session, ACTION_RECORDING_DELETED, "recording", info.id, _details(info), at
            )
            await session.commit()

    async def _select(self, *criteria: Any) -> list[RecordingInfo]:
        from media.models import Recording

        async with self._sessionmaker() as session:
            rows = (await session.execute(select(Recording).where(*criteria))).scalars().all()
        return [_info(row) for row in rows]

    async def unfinished_recordings(self) -> list[RecordingInfo]:
        from media.models import Recording

        return await self._select(Recording.state == str(RecordingState.RECORDING))

    async def expired_recordings(self, before: datetime) -> list[RecordingInfo]:
        from media.models import Recording

        return await self._select(
            Recording.state.in_([str(s) for s in _KEPT]),
            func.coalesce(Recording.ended_at, Recording.started_at) < before,
        )

    async def snapshot_taken(self, info: SnapshotInfo, actor: str | None) -> None:
        from media.models import Snapshot

        async with self._sessionmaker() as session:
            session.add(
                Snapshot(
                    id=info.id,
                    room_id=info.room_id,
                    participant_id=info.participant_id,
                    track_kind=info.track_kind,
                    path=str(info.path),
                    sha256=info.sha256,
                    width=info.width,
                    height=info.height,
                    taken_at=info.taken_at,
                )
            )
            await self._audit(
                session,
                ACTION_SNAPSHOT_TAKEN,
                "snapshot",
                info.id,
                {
                    "room_id": info.room_id,
                    "participant_id": info.participant_id,
                    "sha256": info.sha256,
                    "path": str(info.path),
                },
                info.taken_at,
                actor,
            )
            await session.commit()


def _info(row: Any) -> RecordingInfo:
    return RecordingInfo(
        id=row.id,
        room_id=row.room_id,
        participant_id=row.participant_id,
        path=Path(row.path),
        started_at=row.started_at,
        state=RecordingState(row.state),
        ended_at=row.ended_at,
        size_bytes=row.size_bytes,
        duration_s=row.duration_s,
        sha256=row.sha256,
    )
