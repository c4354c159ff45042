"""The visit on the clock: admit, the warnings at 5 and 1 minute, the end at the limit,
no-show, staff warning texts, mute, termination with a ban.

Every deadline is a durable timer (``center.timers``): the row moves with
``UPDATE … WHERE version``, so a timer that fires on two instances, or after a restart,
ends the visit once. The limit counts from admission (``live_at``): time lost to a drop
is not added. A visit goes live only while a staff monitor watches it, unless it is
privileged (a lawyer's: never monitored, never recorded) or ``visit_require_monitor`` is
off. Ending a visit closes its room; the recordings, with their SHA-256, go on the record
and the audit chain.
"""

from __future__ import annotations

import calendar
import logging
from collections.abc import Awaitable, Callable
from datetime import datetime, timedelta
from typing import Final

from sqlalchemy import func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from center.authz import Principal
from center.errors import InvalidTransition, MonitorRequired, NotFound, ValidationFailed
from center.timers import AfterCommit, FiredTimer
from center.visits.models import (
    ItemType,
    PrisonTerminal,
    Relative,
    RelativeStatus,
    TerminateReason,
    Visit,
    VisitOutcome,
    VisitParty,
    VisitState,
)
from center.visits.quality import median_grade, side_grades
from center.visits.service import NO_SHOW, VisitService
from center.visits.view import VisitOut, booked_minutes

_LOGGER = logging.getLogger(__name__)

WARN: Final = "visit.warn"
END: Final = "visit.end"
EVENT_WARNING: Final = "visit.warning"
EVENT_TEXT: Final = "visit.text"
EVENT_MUTE: Final = "visit.mute"
SYSTEM_ACTOR: Final = "system:visits"
WARN_AT_MINUTES: Final = (5, 1)
MUTE_SIDES: Final = ("inmate", "relatives")


def add_months(when: datetime, months: int) -> datetime:
    month = when.month - 1 + months
    year, month = when.year + month // 12, month % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


class VisitLive:
    def __init__(self, visits: VisitService) -> None:
        self.visits = visits
        self._sessionmaker = visits.sessionmaker
        self._clock = visits.clock
        timers = visits.timers
        timers.register(WARN, self._on_warn)
        timers.register(END, self._on_end)
        timers.register(NO_SHOW, self._on_no_show)

    def __repr__(self) -> str:
        return f"<VisitLive {self.visits!r}>"

    # -- staff actions --------------------------------------------------------------------

    async def admit(self, principal: Principal, visit_id: int) -> VisitOut:
        rules = self.visits.rules
        now = self._clock.now()
        async with self._sessionmaker() as session:
            visit = await self.visits.visible(session, principal, visit_id)
            if visit.state != VisitState.WAITING:
                raise InvalidTransition(
                    f"a visit that is {visit.state} cannot be admitted (it waits for a party)"
                )
            if (
                rules.require_monitor
                and not visit.privileged
                and not await self.visits.rooms.has_monitor(visit.room_id)
            ):
                raise MonitorRequired(
                    "open the visit in the monitor first: it goes live only while staff watch"
                )
            await self.visits.move(session, visit, state=VisitState.LIVE, live_at=now)
            # the length booked (the prison's rule when it was booked), counted from now
            minutes = booked_minutes(visit)
            end = now + timedelta(minutes=minutes)
            for minutes_left in WARN_AT_MINUTES:
                if minutes_left < minutes:
                    await self.visits.timers.schedule(
                        session,
                        kind=WARN,
                        key=f"visit:{visit.id}:warn{minutes_left}",
                        ref=f"visit:{visit.id}",
                        due_at=end - timedelta(minutes=minutes_left),
                        payload={"minutes_left": minutes_left},
                    )
            await self.visits.timers.schedule(
                session,
                kind=END,
                key=f"visit:{visit.id}:end",
                ref=f"visit:{visit.id}",
                due_at=end,
            )
            await self.visits.timers.cancel(session, key=f"visit:{visit.id}:no_show")
            await self.visits.item(session, visit, ItemType.ADMITTED, principal.actor)
            await self.visits.audit_entry(session, principal.actor, "visit.admit", visit)
            out = await self.visits.out(session, visit)
            await session.commit()
        await self.visits.announce(out)
        return out

    async def warn(self, principal: Principal, visit_id: int, text: str) -> VisitOut:
        """A warning text both sides see at once (``visit.text`` on the ``visits`` topic)."""
        async with self._sessionmaker() as session:
            visit = await self._live(session, principal, visit_id)
            await self.visits.item(session, visit, ItemType.TEXT, principal.actor, text=text)
            await self.visits.audit_entry(session, principal.actor, "visit.warn", visit, text=text)
            out = await self.visits.out(session, visit)
            await session.commit()
        await self.visits.announce(out, (EVENT_TEXT, {"text": text}))
        return out

    async def mute(self, principal: Principal, visit_id: int, side: str, muted: bool) -> VisitOut:
        if side not in MUTE_SIDES:
            raise ValidationFailed.of({"side": f"one of {', '.join(MUTE_SIDES)}"})
        async with self._sessionmaker() as session:
            visit = await self._live(session, principal, visit_id)
            if visit.room_id:
                # Enforced by the media core before it goes on the record: a mute that
                # could not be applied is not recorded as done.
                keys = await self._side_keys(session, visit, side)
                await self.visits.rooms.mute(visit.room_id, keys, muted)
            await self.visits.item(
                session, visit, ItemType.MUTE, principal.actor, side=side, muted=muted
            )
            await self.visits.audit_entry(
                session, principal.actor, "visit.mute", visit, side=side, muted=muted
            )
            out = await self.visits.out(session, visit)
            await session.commit()
        await self.visits.announce(out, (EVENT_MUTE, {"side": side, "muted": muted}))
        return out

    async def _side_keys(self, session: AsyncSession, visit: Visit, side: str) -> list[str]:
        """How one side is named in the call room: each relative's guest session
        (``guest:party:<party id>``), or the prison terminal (``device:<credential>``)."""
        if side == "relatives":
            ids = await session.scalars(
                select(VisitParty.id).where(VisitParty.visit_id == visit.id)
            )
            return [f"guest:party:{party_id}" for party_id in ids]
        terminal = await session.get(PrisonTerminal, visit.terminal_id)
        if terminal is None or not terminal.credential_id:
            return []
        return [f"device:{terminal.credential_id}"]

    async def terminate(
        self,
        principal: Principal,
        visit_id: int,
        reason: TerminateReason,
        note: str,
        ban_months: int,
    ) -> VisitOut:
        """Stop the visit at once; ``ban_months`` (1–3) suspends its relatives' visiting."""
        now = self._clock.now()
        async with self._sessionmaker() as session:
            visit = await self.visits.visible(session, principal, visit_id)
            if visit.state not in (VisitState.WAITING, VisitState.LIVE):
                raise InvalidTransition(f"a visit that is {visit.state} cannot be terminated")
            banned_until = add_months(now, ban_months) if ban_months else None
            if banned_until is not None:
                ids = select(VisitParty.relative_id).where(VisitParty.visit_id == visit.id)
                await session.execute(
                    update(Relative)
                    .where(Relative.id.in_(ids))
                    .values(status=RelativeStatus.BANNED, banned_until=banned_until)
                    .execution_options(synchronize_session=False)
                )
            details = {
                "reason": str(reason),
                "note": note,
                "ban_months": ban_months,
                "banned_until": banned_until.isoformat() if banned_until else None,
            }
            await self.visits.item(session, visit, ItemType.TERMINATED, principal.actor, **details)
            await self.visits.audit_entry(
                session, principal.actor, "visit.terminate", visit, **details
            )
            after = await self._finish(
                session, visit, VisitOutcome.TERMINATED, principal.actor, reason=str(reason)
            )
            await session.commit()
        return await after()

    # -- timers ---------------------------------------------------------------------------

    async def _timer_visit(self, session: AsyncSession, timer: FiredTimer) -> Visit | None:
        return await session.get(Visit, int(timer.ref.removeprefix("visit:")))

    async def _on_warn(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        visit = await self._timer_visit(session, timer)
        if visit is None or visit.state != VisitState.LIVE:
            return None
        minutes_left = int(timer.payload.get("minutes_left", 0))
        await self.visits.item(
            session, visit, ItemType.WARNING, SYSTEM_ACTOR, minutes_left=minutes_left
        )
        out = await self.visits.out(session, visit)

        async def after() -> None:
            await self.visits.announce(out, (EVENT_WARNING, {"minutes_left": minutes_left}))

        return after

    async def _on_end(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        visit = await self._timer_visit(session, timer)
        if visit is None or visit.state != VisitState.LIVE:
            return None
        await self.visits.item(session, visit, ItemType.ENDED, SYSTEM_ACTOR, why="limit")
        finish = await self._finish(session, visit, VisitOutcome.COMPLETED, SYSTEM_ACTOR)

        async def after() -> None:
            await finish()

        return after

    async def _on_no_show(self, session: AsyncSession, timer: FiredTimer) -> AfterCommit | None:
        visit = await self._timer_visit(session, timer)
        if visit is None or visit.state not in (VisitState.APPROVED, VisitState.WAITING):
            return None
        # whose absence it was: a visit whose relatives came but was never admitted is the
        # prison's no-show (terminal, staff), not the family's — and must not read as theirs
        came = await session.scalar(
            select(func.count())
            .select_from(VisitParty)
            .where(VisitParty.visit_id == visit.id, VisitParty.used_at.is_not(None))
        )
        why = "not_admitted" if came else "relatives_absent"
        await self.visits.item(
            session, visit, ItemType.NO_SHOW, SYSTEM_ACTOR, why=why, relatives_joined=came or 0
        )
        await self.visits.audit_entry(session, SYSTEM_ACTOR, "visit.no_show", visit)
        finish = await self._finish(session, visit, VisitOutcome.NO_SHOW, SYSTEM_ACTOR)

        async def after() -> None:
            await finish()

        return after

    # -- the end --------------------------------------------------------------------------

    async def _live(self, session: AsyncSession, principal: Principal, visit_id: int) -> Visit:
        visit = await self.visits.visible(session, principal, visit_id)
        if visit.state not in (VisitState.WAITING, VisitState.LIVE):
            raise InvalidTransition(f"the visit is {visit.state}, not under way")
        return visit

    async def _finish(
        self,
        session: AsyncSession,
        visit: Visit,
        outcome: VisitOutcome,
        actor: str,
        reason: str = "",
    ) -> Callable[[], Awaitable[VisitOut]]:
        """End the row in the caller's transaction; the returned step (after the commit)
        closes the room and puts the recordings on the record."""
        await self.visits.move(
            session,
            visit,
            state=VisitState.ENDED,
            outcome=outcome,
            ended_at=self._clock.now(),
            reason=reason or visit.reason,
        )
        await self.visits.timers.cancel(session, ref=f"visit:{visit.id}")
        visit_id, room_id = visit.id, visit.room_id

        async def after() -> VisitOut:
            if room_id:
                await self._store_recordings(visit_id, room_id, actor)
            async with self._sessionmaker() as fresh:
                row = await fresh.get(Visit, visit_id)
                if row is None:
                    raise NotFound("no such visit")
                out = await self.visits.out(fresh, row)
            await self.visits.announce(out)
            _LOGGER.info("visit %s ended %s", visit_id, outcome)
            return out

        return after

    async def _store_recordings(self, visit_id: int, room_id: str, actor: str) -> None:
        """Close the room; its recordings (with their SHA-256) and each side's median
        quality grade go on the record."""
        closed = await self.visits.rooms.close(room_id, actor)
        if not closed.recordings and not closed.grades:
            return
        async with self._sessionmaker() as session:
            visit = await session.get(Visit, visit_id)
            if visit is None:
                return
            for rec in closed.recordings:
                data = {
                    "recording_id": rec.id,
                    "state": rec.state,
                    "sha256": rec.sha256,
                    "size_bytes": rec.size_bytes,
                    "duration_s": rec.duration_s,
                }
                await self.visits.item(session, visit, ItemType.RECORDING, actor, **data)
                await self.visits.audit_entry(session, actor, "visit.recording", visit, **data)
            by_side = side_grades(closed.grades, await self.visits.sides(session, visit))
            if any(by_side.values()):
                quality: dict[str, object] = {
                    side: median_grade(grades) for side, grades in by_side.items()
                }
                quality["samples"] = {side: len(grades) for side, grades in by_side.items()}
                await self.visits.item(session, visit, ItemType.QUALITY, actor, **quality)
            await session.commit()
