"""A subject's baseline photos: enrol (upload, spot-check snapshot, excused mismatch),
approve, list, delete — each audited, at most :data:`MAX_BASELINE` per subject.

A photo is read by the worker pool as it arrives: one that shows no usable face is refused
(422 with the outcome), so the baseline never holds a photo that cannot be compared. Only
approved photos count: an upload is ``pending`` until an officer approves it; a photo added
while excusing a mismatch is approved by that officer's excuse.
"""

from __future__ import annotations

import asyncio
import hashlib
import json
import logging
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.face_models import (
    MAX_BASELINE,
    BaselineSource,
    BaselineState,
    FaceBaseline,
)
from alerts.face_pool import FacePool, FaceQueueFull
from alerts.faces import FaceReading, PhotoError
from alerts.spotcheck_models import ItemType, SpotCheck, SpotCheckItem
from center import audit
from center.authz import Action, Principal
from center.clock import Clock
from center.errors import Conflict, NotFound, RateLimited, ValidationFailed
from center.jurisdictions import JurisdictionTree
from center.models import Subject
from center.scope import visible_or_404

_LOGGER = logging.getLogger(__name__)


@dataclass(frozen=True, slots=True)
class Photo:
    data: bytes
    sha256: str


def photo_of(data: bytes) -> Photo:
    return Photo(data, hashlib.sha256(data).hexdigest())


def baseline_json(row: FaceBaseline) -> dict[str, Any]:
    return {
        "id": row.id,
        "subject_id": row.subject_id,
        "sha256": row.sha256,
        "state": row.state,
        "source": row.source,
        "created_by": row.created_by,
        "created_at": row.created_at.isoformat(),
        "approved_by": row.approved_by or None,
        "approved_at": row.approved_at.isoformat() if row.approved_at else None,
    }


def _unusable(reading: FaceReading) -> ValidationFailed:
    problem = reading.problem or reading.reading
    return ValidationFailed(
        f"the photo cannot be a baseline: {problem}",
        details={"field": "photo", "outcome": reading.reading, "fields": {"photo": problem}},
    )


class FaceBaselines:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        tree: JurisdictionTree,
        pool: FacePool,
        directory: Path,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._tree = tree
        self.pool = pool
        self.directory = directory

    def __repr__(self) -> str:
        return f"<FaceBaselines {self.directory}>"

    async def subject(
        self, session: AsyncSession, principal: Principal, subject_id: str, action: Action
    ) -> Subject:
        subject = await session.get(Subject, subject_id)
        visible_or_404(
            principal, self._tree, action, subject.street_id if subject else None, "subject"
        )
        assert subject is not None
        return subject

    async def read(self, data: bytes) -> FaceReading:
        """One photo through the pool now; 429 when the queue is full, 422 if not a JPEG."""
        try:
            self.pool.reserve(1)
        except FaceQueueFull as full:
            raise RateLimited(str(full), retry_after=full.retry_after_s) from None
        try:
            return await self.pool.read(data)
        except PhotoError as exc:
            raise ValidationFailed(
                str(exc), details={"field": "photo", "fields": {"photo": str(exc)}}
            ) from None

    async def store_file(self, subject_id: str, photo: Photo) -> Path:
        path = self.directory / subject_id / f"{photo.sha256}.jpg"

        def write() -> None:
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(photo.data)

        await asyncio.to_thread(write)
        return path

    async def snapshot_photo(
        self, session: AsyncSession, subject_id: str, snapshot_id: str
    ) -> Photo:
        """The JPEG of a spot-check snapshot of this subject, re-checked against its SHA-256."""
        needle = json.dumps({"snapshot_id": snapshot_id})[1:-1]
        rows = await session.scalars(
            select(SpotCheckItem)
            .join(SpotCheck, SpotCheck.id == SpotCheckItem.spotcheck_id)
            .where(
                SpotCheck.subject_id == subject_id,
                SpotCheckItem.type == ItemType.SNAPSHOT,
                SpotCheckItem.data.contains(needle, autoescape=True),
            )
            .limit(1)
        )
        item = rows.first()
        if item is None:
            raise NotFound("no such snapshot of this subject")
        data = json.loads(item.data)
        try:
            raw = await asyncio.to_thread(Path(data["path"]).read_bytes)
        except OSError:
            raise NotFound("the snapshot's file is gone") from None
        photo = photo_of(raw)
        if photo.sha256 != data.get("sha256"):
            raise NotFound("the snapshot's file does not match its SHA-256")
        return photo

    async def add(
        self,
        principal: Principal,
        subject_id: str,
        *,
        jpeg: bytes | None = None,
        snapshot_id: str | None = None,
    ) -> dict[str, Any]:
        async with self._sessionmaker() as session:
            await self.subject(session, principal, subject_id, Action.FACES_MANAGE)
            if snapshot_id is not None:
                photo, source = (
                    await self.snapshot_photo(session, subject_id, snapshot_id),
                    BaselineSource.SNAPSHOT,
                )
            else:
                assert jpeg is not None
                photo, source = photo_of(jpeg), BaselineSource.UPLOAD
            await self.room_for_one(session, subject_id, photo)
        reading = await self.read(photo.data)
        if reading.reading != "face" or reading.embedding is None:
            raise _unusable(reading)
        path = await self.store_file(subject_id, photo)
        async with self._sessionmaker() as session:
            await self.room_for_one(session, subject_id, photo)
            row = await self.insert(
                session,
                principal.actor,
                subject_id,
                photo,
                path,
                reading.embedding,
                source=source,
                state=BaselineState.PENDING,
            )
            await session.commit()
            return baseline_json(row)

    async def room_for_one(self, session: AsyncSession, subject_id: str, photo: Photo) -> None:
        count = await session.scalar(
            select(func.count())
            .select_from(FaceBaseline)
            .where(FaceBaseline.subject_id == subject_id)
        )
        if (count or 0) >= MAX_BASELINE:
            raise Conflict(
                f"the subject already has {MAX_BASELINE} baseline photos; delete one first",
                details={"max": MAX_BASELINE},
            )
        same = await session.scalar(
            select(FaceBaseline.id).where(
                FaceBaseline.subject_id == subject_id, FaceBaseline.sha256 == photo.sha256
            )
        )
        if same is not None:
            raise Conflict("this photo is already in the baseline", details={"id": same})

    async def insert(
        self,
        session: AsyncSession,
        actor: str,
        subject_id: str,
        photo: Photo,
        path: Path,
        embedding: tuple[float, ...],
        *,
        source: BaselineSource,
        state: BaselineState,
    ) -> FaceBaseline:
        """Insert and audit in the caller's transaction (the caller commits)."""
        now = self._clock.now()
        approved = state == BaselineState.APPROVED
        row = FaceBaseline(
            subject_id=subject_id,
            state=str(state),
            source=str(source),
            sha256=photo.sha256,
            path=str(path),
            embedding=json.dumps([round(v, 6) for v in embedding]),
            created_by=actor,
            created_at=now,
            approved_by=actor if approved else "",
            approved_at=now if approved else None,
        )
        session.add(row)
        await session.flush()
        await audit.record(
            session,
            actor=actor,
            action="face.enrolled",
            target_type="subject",
            target_id=subject_id,
            details={"face_id": row.id, "sha256": photo.sha256, "source": str(source)},
            at=now,
        )
        if approved:
            await self._audit_approval(session, actor, row, now)
        return row

    async def _audit_approval(
        self, session: AsyncSession, actor: str, row: FaceBaseline, now: datetime
    ) -> None:
        await audit.record(
            session,
            actor=actor,
            action="face.approved",
            target_type="subject",
            target_id=row.subject_id,
            details={"face_id": row.id, "sha256": row.sha256},
            at=now,
        )

    async def _row(
        self, session: AsyncSession, principal: Principal, subject_id: str, face_id: int
    ) -> FaceBaseline:
        await self.subject(session, principal, subject_id, Action.FACES_MANAGE)
        row = await session.get(FaceBaseline, face_id)
        if row is None or row.subject_id != subject_id:
            raise NotFound("no such baseline photo")
        return row

    async def approve(self, principal: Principal, subject_id: str, face_id: int) -> dict[str, Any]:
        async with self._sessionmaker() as session:
            row = await self._row(session, principal, subject_id, face_id)
            if row.state != BaselineState.APPROVED:
                now = self._clock.now()
                row.state = str(BaselineState.APPROVED)
                row.approved_by, row.approved_at = principal.actor, now
                await self._audit_approval(session, principal.actor, row, now)
                await session.commit()
            return baseline_json(row)

    async def delete(self, principal: Principal, subject_id: str, face_id: int) -> dict[str, Any]:
        async with self._sessionmaker() as session:
            row = await self._row(session, principal, subject_id, face_id)
            path, sha, out = Path(row.path), row.sha256, baseline_json(row)
            await session.delete(row)
            await audit.record(
                session,
                actor=principal.actor,
                action="face.deleted",
                target_type="subject",
                target_id=subject_id,
                details={"face_id": face_id, "sha256": sha},
                at=self._clock.now(),
            )
            await session.commit()
        await asyncio.to_thread(path.unlink, True)
        return out

    async def baseline(self, principal: Principal, subject_id: str) -> list[dict[str, Any]]:
        async with self._sessionmaker() as session:
            await self.subject(session, principal, subject_id, Action.FACES_READ)
            rows = await session.scalars(
                select(FaceBaseline)
                .where(FaceBaseline.subject_id == subject_id)
                .order_by(FaceBaseline.id)
            )
            return [baseline_json(r) for r in rows]

    async def embeddings(self, session: AsyncSession, subject_id: str) -> list[list[float]]:
        """The approved baseline's embeddings (what a photo is compared with)."""
        rows = await session.scalars(
            select(FaceBaseline.embedding).where(
                FaceBaseline.subject_id == subject_id,
                FaceBaseline.state == BaselineState.APPROVED,
            )
        )
        return [json.loads(r) for r in rows]
