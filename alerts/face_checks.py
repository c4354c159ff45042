"""Face checks: a check-in's or snapshot's photo compared with the subject's baseline.

The check-in itself is recorded first, by the ingestor, exactly as without a photo; the
photo goes to disk and a ``pending`` face check row, then into a queue that the face worker
pool drains. So a burst of photos never slows the alarm path, a full queue is refused up
front (429, :meth:`FaceVerifier.admit`), and a restart loses nothing: pending checks are
queued again on start. A ``mismatch`` raises one ``face_mismatch`` alarm per check (its
dedup key is the check's id); excusing that alarm with ``add_to_baseline`` enrols the photo
(:meth:`FaceVerifier.on_resolved`). Never a sanction by itself.
"""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, Final

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.directory import SubjectInfo
from alerts.face_baseline import FaceBaselines, Photo, photo_of
from alerts.face_models import PENDING, BaselineSource, BaselineState, FaceCheck
from alerts.face_pool import FaceQueueFull
from alerts.faces import FaceReading, PhotoError, verdict
from alerts.models import Checkin
from alerts.raising import AlarmRaiser, Fire
from center.authz import Action, Principal
from center.clock import Clock
from center.errors import RateLimited
from center.models import Subject

_LOGGER = logging.getLogger(__name__)
NO_BASELINE: Final = "no_baseline"
"""Outcome when the subject has no approved baseline photo yet (nothing to compare)."""
KIND: Final = "face_mismatch"


@dataclass(frozen=True, slots=True)
class CheckinPhoto:
    event_id: str
    credential_id: str
    subject_id: str
    photo: bytes


def face_json(row: FaceCheck) -> dict[str, Any]:
    if row.outcome == PENDING:
        return {"outcome": PENDING}
    return {"outcome": row.outcome, "distance": row.distance}


class FaceVerifier:
    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        clock: Clock,
        baselines: FaceBaselines,
        raiser: AlarmRaiser,
        threshold: float,
    ) -> None:
        self._sessionmaker = sessionmaker
        self._clock = clock
        self._baselines = baselines
        self._raiser = raiser
        self.threshold = threshold
        self._queue: asyncio.Queue[int] = asyncio.Queue()
        self._busy = 0
        self.mismatches = 0

    def __repr__(self) -> str:
        return f"<FaceVerifier threshold={self.threshold} queued={self._queue.qsize()}>"

    @property
    def pool(self) -> Any:
        return self._baselines.pool

    def admit(self, count: int) -> None:
        """Hold places for ``count`` photos before anything is recorded; 429 if no room."""
        try:
            self.pool.reserve(count)
        except FaceQueueFull as full:
            raise RateLimited(
                f"{full}: the check-ins were not recorded, send them again",
                retry_after=full.retry_after_s,
            ) from None

    async def record_checkins(
        self, photos: Sequence[CheckinPhoto], accepted: set[str]
    ) -> dict[str, dict[str, Any]]:
        """Pending face checks for the accepted check-ins (event id → ``face``); the places
        of the others are released."""
        out: dict[str, dict[str, Any]] = {}
        keep = [p for p in photos if p.event_id in accepted]
        self.pool.release(len(photos) - len(keep))
        if not keep:
            return out
        now = self._clock.now()
        rows: list[FaceCheck] = []
        async with self._sessionmaker() as session:
            for p in keep:
                checkin_id = await session.scalar(
                    select(Checkin.id).where(
                        Checkin.credential_id == p.credential_id, Checkin.event_id == p.event_id
                    )
                )
                photo = photo_of(p.photo)
                path = await self._baselines.store_file(f"{p.subject_id}/checkins", photo)
                row = self._pending(p.subject_id, photo, path, now, checkin_id=checkin_id)
                session.add(row)
                rows.append(row)
                out[p.event_id] = {"outcome": PENDING}
            await session.commit()
        for row in rows:
            self._queue.put_nowait(row.id)
        return out

    @staticmethod
    def _pending(
        subject_id: str, photo: Photo, path: Path, now: datetime, **where: Any
    ) -> FaceCheck:
        return FaceCheck(
            subject_id=subject_id,
            sha256=photo.sha256,
            path=str(path),
            outcome=PENDING,
            problem="",
            created_at=now,
            **where,
        )

    async def check_now(
        self, subject_id: str, data: bytes, path: Path, *, spotcheck_id: int, snapshot_id: str
    ) -> dict[str, Any]:
        """A spot-check snapshot: checked at once (an officer is waiting for it)."""
        now = self._clock.now()
        async with self._sessionmaker() as session:
            row = self._pending(
                subject_id,
                photo_of(data),
                path,
                now,
                spotcheck_id=spotcheck_id,
                snapshot_id=snapshot_id,
            )
            session.add(row)
            await session.commit()
            check_id = row.id
        self.pool.force_reserve(1)  # an officer is waiting: never refused
        return await self._decide(check_id, data)

    async def resume(self) -> int:
        """Queue the checks a previous run left pending (no check-in's photo is lost)."""
        async with self._sessionmaker() as session:
            ids = list(
                await session.scalars(
                    select(FaceCheck.id).where(FaceCheck.outcome == PENDING).order_by(FaceCheck.id)
                )
            )
        self.pool.force_reserve(len(ids))
        for check_id in ids:
            self._queue.put_nowait(check_id)
        if ids:
            _LOGGER.info("face checks: %d pending from before the restart queued again", len(ids))
        return len(ids)

    async def run(self) -> None:
        """One consumer: decide queued checks one by one (as many consumers as workers)."""
        while True:
            check_id = await self._queue.get()
            self._busy += 1
            try:
                async with self._sessionmaker() as session:
                    row = await session.get(FaceCheck, check_id)
                    path = Path(row.path) if row is not None else None
                if path is None:
                    self.pool.release()
                    continue
                try:
                    data = await asyncio.to_thread(path.read_bytes)
                except OSError:
                    data = b""
                await self._decide(check_id, data)
            except asyncio.CancelledError:
                raise
            except Exception:
                _LOGGER.exception("face check %s failed; it stays pending", check_id)
            finally:
                self._busy -= 1
                self._queue.task_done()

    async def idle(self) -> None:
        """Until every queued check is decided (tests, the bench)."""
        await self._queue.join()

    async def _decide(self, check_id: int, data: bytes) -> dict[str, Any]:
        try:
            reading = await self.pool.read(data)
        except PhotoError as exc:
            reading = FaceReading("poor_quality", problem=str(exc)[:200])
        now = self._clock.now()
        async with self._sessionmaker() as session:
            row = await session.get(FaceCheck, check_id)
            assert row is not None
            baseline = await self._baselines.embeddings(session, row.subject_id)
            v = verdict(reading, baseline, self.threshold)
            values: dict[str, Any] = {
                "outcome": v.outcome if v is not None else NO_BASELINE,
                "distance": v.distance if v is not None else None,
                "threshold": self.threshold,
                "problem": reading.problem[:200],
                "embedding": json.dumps(reading.embedding) if reading.embedding else None,
                "decided_at": now,
            }
            await session.execute(
                update(FaceCheck)
                .where(FaceCheck.id == check_id, FaceCheck.outcome == PENDING)
                .values(**values)
            )
            raised: list[dict[str, Any]] = []
            if values["outcome"] == "mismatch" and row.alarm_id is None:
                raised = await self._raise(session, row, values, now)
            await session.commit()
        if raised:
            self.mismatches += 1
            await self._raiser.publish([("alarm.raised", r) for r in raised])
        return {"outcome": values["outcome"], "distance": values["distance"]}

    async def _raise(
        self, session: AsyncSession, row: FaceCheck, values: Mapping[str, Any], now: datetime
    ) -> list[dict[str, Any]]:
        subject = await session.get(Subject, row.subject_id)
        if subject is None:
            return []
        info = SubjectInfo(
            -1, subject.id, subject.name, subject.level, subject.street_id, subject.district_id
        )
        details = {
            "face_check_id": row.id,
            "distance": values["distance"],
            "threshold": self.threshold,
            "checkin_id": row.checkin_id,
            "spotcheck_id": row.spotcheck_id,
            "sha256": row.sha256,
        }
        # once per check-in, once per spot-check (however many snapshots it takes)
        key = (
            f"{KIND}:spotcheck:{row.spotcheck_id}" if row.spotcheck_id else f"{KIND}:check:{row.id}"
        )
        fire = Fire(KIND, info, now, details, dedup_key=key)
        inserted = await self._raiser.insert_once(session, [self._raiser.build(fire, now)])
        for r in inserted:
            await session.execute(
                update(FaceCheck).where(FaceCheck.id == row.id).values(alarm_id=r["id"])
            )
        return inserted

    # -- the duty workflow's excuse ---------------------------------------------------------

    async def on_resolved(
        self,
        session: AsyncSession,
        principal: Principal,
        alarm: Mapping[str, Any],
        disposition: str | None,
        add_to_baseline: bool,
    ) -> None:
        """Called in the transaction that resolves an alarm: an excused ``face_mismatch``
        with ``add_to_baseline`` enrols its photo, approved by this officer (audited)."""
        if not add_to_baseline or alarm.get("kind") != KIND or disposition != "excused":
            return
        row = await session.scalar(select(FaceCheck).where(FaceCheck.alarm_id == alarm["id"]))
        if row is None or not row.embedding:
            return
        data = await asyncio.to_thread(Path(row.path).read_bytes)
        photo = photo_of(data)
        await self._baselines.room_for_one(session, row.subject_id, photo)
        path = await self._baselines.store_file(row.subject_id, photo)
        await self._baselines.insert(
            session,
            principal.actor,
            row.subject_id,
            photo,
            path,
            tuple(json.loads(row.embedding)),
            source=BaselineSource.EXCUSED,
            state=BaselineState.APPROVED,
        )

    # -- reading ----------------------------------------------------------------------------

    async def checkins(
        self, principal: Principal, subject_id: str, since: datetime | None, limit: int
    ) -> list[dict[str, Any]]:
        async with self._sessionmaker() as session:
            await self._baselines.subject(session, principal, subject_id, Action.FACES_READ)
            query = (
                select(Checkin, FaceCheck)
                .outerjoin(FaceCheck, FaceCheck.checkin_id == Checkin.id)
                .where(Checkin.subject_id == subject_id)
            )
            if since is not None:
                query = query.where(Checkin.at >= since)
            rows = (await session.execute(query.order_by(Checkin.at.desc()).limit(limit))).all()
        out = []
        for c, f in rows:
            out.append(
                {
                    "id": c.id,
                    "event_id": c.event_id,
                    "subject_id": c.subject_id,
                    "at": c.at.isoformat(),
                    "source": c.source,
                    "lat": c.lat,
                    "lon": c.lon,
                    "late": c.late,
                    "face": face_json(f) if f is not None else None,
                    "face_alarm_id": f.alarm_id if f is not None else None,
                }
            )
        return out
