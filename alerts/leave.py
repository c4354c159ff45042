"""Approved leave (请假外出): who may be outside the city now, and overdue returns.

Check-ins stay required on leave; what changes is that a location outside the city is
allowed. A leave ends with a *return check-in* — any check-in inside the city (or from a
terminal or an officer, which are in the city by definition) after the leave began. When the
end passes without one, :class:`LeaveWatcher` raises ``overdue_return`` once per leave
(dedup key ``overdue_return:<leave id>``), so several instances can run it.

:func:`create_leave` is the one way a leave comes to be (the HTTP handler only decodes and
calls it): the rules a request model cannot state alone (the end after the start and in the
future, at most :data:`MAX_LEAVE`), the row and its audit entry in one transaction, then the
engine's book and watcher at once.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Protocol

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from alerts.directory import SubjectDirectory
from alerts.models import AlarmKind, Leave, LeaveState
from alerts.raising import AlarmRaiser, Fire
from alerts.timebound import ends_after, invalid, recent, storable, store_audited
from center import audit
from center.clock import Clock

_LOGGER = logging.getLogger(__name__)
_POLL_S = 60.0

MAX_LEAVE: Final = timedelta(days=90)
DESTINATION_MAX: Final = Leave.destination.property.columns[0].type.length
REASON_MAX: Final = Leave.reason.property.columns[0].type.length


@dataclass(frozen=True, slots=True)
class NewLeave:
    subject_id: str
    destination: str
    ends_at: datetime
    starts_at: datetime | None = None  # None: now
    reason: str = ""


class LeaveHost(Protocol):
    """What :func:`create_leave` needs of the alarm engine (``alerts.engine.AlarmEngine``)."""

    clock: Clock
    sessionmaker: async_sessionmaker[AsyncSession]

    def leave_added(self, row: Leave) -> None: ...

    def leave_removed(self, row: Leave) -> None: ...


async def create_leave(host: LeaveHost, new: NewLeave, *, actor: str) -> Leave:
    """Record an approved leave (audited ``leave.create``) and tell the engine at once."""
    now = host.clock.now()
    starts_at = storable(new.starts_at or now, "starts_at")
    ends_at = storable(new.ends_at, "ends_at")
    ends_after(starts_at, ends_at, now, "ends_at")
    if ends_at - starts_at > MAX_LEAVE:
        raise invalid("ends_at", f"a leave lasts at most {MAX_LEAVE.days} days")
    row = await store_audited(
        host.sessionmaker,
        Leave(
            subject_id=new.subject_id,
            destination=new.destination.strip(),
            reason=new.reason.strip(),
            starts_at=starts_at,
            ends_at=ends_at,
            state=LeaveState.ACTIVE,
            created_by=actor,
            created_at=now,
        ),
        actor=actor,
        action="leave.create",
        subject_id=new.subject_id,
        details={
            "destination": new.destination.strip(),
            "starts_at": starts_at.isoformat(),
            "ends_at": ends_at.isoformat(),
        },
        id_key="leave_id",
        now=now,
    )
    host.leave_added(row)
    return row


async def cancel_leave(host: LeaveHost, leave_id: int, *, actor: str) -> Leave | None:
    """Cancel an active or overdue leave (audited ``leave.cancel`` with before and after):
    outside the city is no longer allowed and no ``overdue_return`` follows. ``None`` for an
    unknown id; a leave already ended is answered as it is."""
    now = host.clock.now()
    async with host.sessionmaker() as session:
        row = await session.get(Leave, leave_id)
        if row is None or row.state not in (LeaveState.ACTIVE, LeaveState.OVERDUE):
            return row
        before = row.state
        row.state = LeaveState.CANCELLED
        await audit.record(
            session,
            actor=actor,
            action="leave.cancel",
            target_type="subject",
            target_id=row.subject_id,
            details={
                "leave_id": row.id,
                "before": {"state": str(before)},
                "after": {"state": str(LeaveState.CANCELLED)},
            },
            at=now,
        )
        await session.commit()
    host.leave_removed(row)
    return row


async def leaves_for_admin(
    sessionmaker: async_sessionmaker[AsyncSession], limit: int = 500
) -> Sequence[Leave]:
    """The latest leaves, newest end first."""
    async with sessionmaker() as session:
        return list(
            await session.scalars(select(Leave).order_by(Leave.ends_at.desc()).limit(limit))
        )


async def recent_leaves(
    sessionmaker: async_sessionmaker[AsyncSession], subject_id: str
) -> Sequence[Leave]:
    """The subject's latest :data:`RECENT_LIMIT` leaves, newest first."""
    return await recent(sessionmaker, Leave, subject_id)


@dataclass(frozen=True, slots=True)
class ActiveLeave:
    id: int
    subject_id: str
    starts: float
    ends: float


class LeaveBook:
    """Active leaves per subject, in memory for the location rules."""

    def __init__(self) -> None:
        self._by_subject: dict[str, list[ActiveLeave]] = {}
        # Changes made while a reload's query is in flight, replayed over its result.
        self._during_reload: list[tuple[str, Any]] | None = None

    def add(self, row: Leave) -> None:
        if self._during_reload is not None:
            self._during_reload.append(("add", row))
        items = [x for x in self._by_subject.get(row.subject_id, []) if x.id != row.id]
        if row.state in (LeaveState.ACTIVE, LeaveState.OVERDUE):
            items.append(
                ActiveLeave(
                    row.id, row.subject_id, row.starts_at.timestamp(), row.ends_at.timestamp()
                )
            )
        if items:
            self._by_subject[row.subject_id] = items
        else:
            self._by_subject.pop(row.subject_id, None)

    def remove(self, subject_id: str, leave_id: int) -> None:
        if self._during_reload is not None:
            self._during_reload.append(("remove", (subject_id, leave_id)))
        items = [x for x in self._by_subject.get(subject_id, []) if x.id != leave_id]
        if items:
            self._by_subject[subject_id] = items
        else:
            self._by_subject.pop(subject_id, None)

    def on_leave(self, subject_id: str, ts: float) -> bool:
        """Outside the city is allowed from the start of a leave until the return check-in;
        an overdue subject is reported by ``overdue_return``, not also by ``out_of_bounds``."""
        return any(x.starts <= ts for x in self._by_subject.get(subject_id, ()))

    def started(self, subject_id: str, ts: float) -> list[ActiveLeave]:
        return [x for x in self._by_subject.get(subject_id, ()) if x.starts <= ts]

    async def reload(self, session: AsyncSession) -> None:
        """Re-read the open leaves (another instance may have changed them); changes made
        here while the query runs are replayed on top, so none is lost."""
        self._during_reload = []
        try:
            rows = (
                (
                    await session.execute(
                        select(Leave).where(
                            Leave.state.in_([LeaveState.ACTIVE, LeaveState.OVERDUE])
                        )
                    )
                )
                .scalars()
                .all()
            )
        finally:
            replay, self._during_reload = self._during_reload, None
        self._by_subject = {}
        for row in rows:
            self.add(row)
        for op, arg in replay:
            if op == "add":
                self.add(arg)
            else:
                self.remove(*arg)


async def record_return(
    session: AsyncSession, book: LeaveBook, subject_id: str, at: datetime, event_id: str
) -> list[int]:
    """Close the subject's started leaves with this return check-in; returns their ids."""
    started = book.started(subject_id, at.timestamp())
    if not started:
        return []
    ids = [x.id for x in started]
    await session.execute(
        update(Leave)
        .where(
            Leave.id.in_(ids),
            Leave.state.in_([LeaveState.ACTIVE, LeaveState.OVERDUE]),
        )
        .values(state=LeaveState.RETURNED, returned_at=at, return_event_id=event_id)
    )
    return ids


class LeaveWatcher:
    """Raises ``overdue_return`` when an active leave's end (plus grace) passes."""

    def __init__(
        self,
        *,
        clock: Clock,
        sessionmaker: async_sessionmaker[AsyncSession],
        book: LeaveBook,
        directory: SubjectDirectory,
        raiser: AlarmRaiser,
        grace_s: float,
    ) -> None:
        self._clock = clock
        self._sessionmaker = sessionmaker
        self._book = book
        self._directory = directory
        self._raiser = raiser
        self._grace = timedelta(seconds=grace_s)
        self._poke = asyncio.Event()
        self.processed_until: datetime | None = None
        self._idle_until: datetime | None = None  # while asleep: nothing is due before this
        self._progress = asyncio.Condition()

    def poke(self) -> None:
        """A leave was created or changed: re-read the next end."""
        self._idle_until = None
        self._poke.set()

    async def run(self) -> None:
        while True:
            now = self._clock.now()
            await self.check(now)
            async with self._sessionmaker() as session:
                await self._book.reload(session)
                next_end = await session.scalar(
                    select(func.min(Leave.ends_at)).where(Leave.state == LeaveState.ACTIVE)
                )
            wake = now + timedelta(seconds=_POLL_S)
            if next_end is not None and next_end + self._grace < wake:
                wake = max(next_end + self._grace, now)
            self._poke.clear()
            async with self._progress:
                self._idle_until = wake
                self._progress.notify_all()
            sleeper = asyncio.ensure_future(self._clock.sleep_until(wake))
            poked = asyncio.ensure_future(self._poke.wait())
            try:
                await asyncio.wait({sleeper, poked}, return_when=asyncio.FIRST_COMPLETED)
            finally:
                self._idle_until = None
                sleeper.cancel()
                poked.cancel()

    async def check(self, now: datetime) -> int:
        """Raise overdue_return for every active leave whose end plus grace has passed."""
        async with self._sessionmaker() as session:
            due = (
                (
                    await session.execute(
                        select(Leave).where(
                            Leave.state == LeaveState.ACTIVE,
                            Leave.ends_at <= now - self._grace,
                        )
                    )
                )
                .scalars()
                .all()
            )
            if due:
                await self._directory.ensure(session, [d.subject_id for d in due])
        fires = []
        for leave in due:
            info = self._directory.get(leave.subject_id)
            if info is None:
                continue
            fires.append(
                Fire(
                    str(AlarmKind.OVERDUE_RETURN),
                    info,
                    leave.ends_at,
                    {
                        "leave_id": leave.id,
                        "destination": leave.destination,
                        "ends_at": leave.ends_at.isoformat(),
                    },
                    dedup_key=f"overdue_return:{leave.id}",
                )
            )
        if fires:
            await self._raiser.fire(fires, now)
        if due:
            # After the alarm commits: a crash in between re-raises next time, a no-op.
            async with self._sessionmaker() as session:
                await session.execute(
                    update(Leave)
                    .where(Leave.id.in_([d.id for d in due]), Leave.state == LeaveState.ACTIVE)
                    .values(state=LeaveState.OVERDUE)
                )
                await session.commit()
        async with self._progress:
            self.processed_until = now
            self._progress.notify_all()
        return len(fires)

    async def wait_processed(self, when: datetime) -> None:
        async with self._progress:
            await self._progress.wait_for(
                lambda: (
                    (self.processed_until is not None and self.processed_until >= when)
                    or (self._idle_until is not None and when < self._idle_until)
                )
            )
