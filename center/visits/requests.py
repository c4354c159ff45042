"""A relative's own booking, without an account: identity by ID number and phone.

The ID number is matched by its SHA-256 (the record keeps nothing else of it but the last
four digits) and the phone must be the one on the relative's record; one person may be
registered for several inmates (one row each). A request obeys every rule of the staff's
booking (``VisitService.book_as``) and lands ``requested`` for staff to approve; the
relative cancels their own requests and visits before they are live. The HTTP face
(``web/api_visits.py``) throttles unknown identities per address (scope ``visit-book``).
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import date, datetime, time, timedelta
from typing import Final

import msgspec
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from center import audit
from center.errors import InvalidCredentials, NotFound
from center.identity import sha256_hex
from center.visits.models import (
    ACTIVE_STATES,
    Inmate,
    Prison,
    PrisonTerminal,
    Relative,
    RelativeStatus,
    Visit,
    VisitOutcome,
    VisitParty,
)
from center.visits.rules import add_working_days, earliest_day, is_working_day, month_of, overlaps
from center.visits.service import CANCELLABLE, VisitService

SLOT_DAYS: Final = 10
"""Working days of slots offered, from the earliest bookable day."""
VISITING_HOURS: Final = ((time(9, 0), time(11, 30)), (time(14, 0), time(17, 0)))
"""Local hours slots are offered in (the staff may book any time)."""
SLOT_STEP_MIN: Final = 30
_NOT_DIGITS: Final = re.compile(r"\D")


def normal_id(id_number: str) -> str:
    return id_number.strip().upper()


def normal_phone(phone: str) -> str:
    digits = _NOT_DIGITS.sub("", phone)
    return digits[2:] if len(digits) == 13 and digits.startswith("86") else digits


class PersonOut(msgspec.Struct):
    id: int
    name: str
    relationship: str


class SlotOut(msgspec.Struct):
    starts_at: datetime
    ends_at: datetime


class MeOut(msgspec.Struct):
    relative_id: int
    name: str
    status: str
    """``approved``, ``pending`` (not verified yet: no slots) or ``banned``."""
    banned_until: datetime | None


class BookableInmateOut(msgspec.Struct):
    id: str
    name: str
    prison_id: str
    prison_name: str
    me: MeOut
    others: list[PersonOut]
    """The inmate's other approved relatives who may come along (``relative_ids``)."""
    slots: list[SlotOut]
    """Free times: lead time, the month's quota, the inmate's and the terminals' other
    visits and the booker's ban are taken into account."""


class RequestOut(msgspec.Struct):
    id: int
    state: str
    outcome: str | None
    inmate_id: str
    inmate_name: str
    prison_name: str
    starts_at: datetime
    ends_at: datetime
    relatives: list[PersonOut]
    reason: str
    cancellable: bool


class BookingOut(msgspec.Struct):
    id_last4: str
    earliest: str
    """The first local day an ordinary visit may be booked for."""
    visit_minutes: int
    max_relatives: int
    inmates: list[BookableInmateOut]
    requests: list[RequestOut]
    """The booker's own requests and visits, latest slot first."""


class VisitRequests:
    def __init__(self, visits: VisitService) -> None:
        self.visits = visits
        self._sessionmaker = visits.sessionmaker
        self._clock = visits.clock

    def __repr__(self) -> str:
        return f"<VisitRequests {self.visits!r}>"

    async def _me(self, session: AsyncSession, id_number: str, phone: str) -> list[Relative]:
        """The relative's rows (one per inmate); an unknown pair is 401 (throttled)."""
        rows = await session.scalars(
            select(Relative)
            .where(Relative.id_number_hash == sha256_hex(normal_id(id_number)))
            .order_by(Relative.id)
        )
        want = normal_phone(phone)
        mine = [r for r in rows if want and normal_phone(r.phone) == want]
        if not mine:
            raise InvalidCredentials("the ID number and phone do not match a registered relative")
        return mine

    async def booking(self, id_number: str, phone: str) -> BookingOut:
        rules = self.visits.rules
        now = self._clock.now()
        async with self._sessionmaker() as session:
            mine = await self._me(session, id_number, phone)
            first = earliest_day(now, rules)
            inmates = [await self._bookable(session, me, first, now) for me in mine]
            requests = await self._requests(session, [m.id for m in mine])
            await audit.record(
                session,
                actor=f"family:relative{mine[0].id}",
                action="visit.lookup",
                target_type="relative",
                target_id=str(mine[0].id),
                details={"inmates": [m.inmate_id for m in mine]},
                at=now,
            )
            await session.commit()
        return BookingOut(
            id_last4=mine[0].id_last4,
            earliest=first.isoformat(),
            visit_minutes=rules.minutes,
            max_relatives=rules.max_relatives,
            inmates=inmates,
            requests=requests,
        )

    async def _bookable(
        self, session: AsyncSession, me: Relative, first: date, now: datetime
    ) -> BookableInmateOut:
        inmate = await session.get(Inmate, me.inmate_id)
        assert inmate is not None
        prison = await session.get(Prison, inmate.prison_id)
        others = await session.scalars(
            select(Relative)
            .where(
                Relative.inmate_id == inmate.id,
                Relative.id != me.id,
                Relative.status == RelativeStatus.APPROVED,
            )
            .order_by(Relative.id)
        )
        slots: list[SlotOut] = []
        if me.status != RelativeStatus.PENDING:
            slots = await self._free(session, inmate, me, first, now)
        return BookableInmateOut(
            id=inmate.id,
            name=inmate.name,
            prison_id=inmate.prison_id,
            prison_name=prison.name if prison else "",
            me=MeOut(
                relative_id=me.id, name=me.name, status=me.status, banned_until=me.banned_until
            ),
            others=[PersonOut(id=r.id, name=r.name, relationship=r.relationship) for r in others],
            slots=slots,
        )

    async def _free(
        self, session: AsyncSession, inmate: Inmate, me: Relative, first: date, now: datetime
    ) -> list[SlotOut]:
        rules = self.visits.rules
        days = [first if is_working_day(first) else add_working_days(first, 1)]
        while len(days) < SLOT_DAYS:
            days.append(add_working_days(days[-1], 1))
        step = SLOT_STEP_MIN * -(-rules.minutes // SLOT_STEP_MIN)
        offered: list[tuple[datetime, datetime]] = []
        for d in days:
            for opens, closes in VISITING_HOURS:
                at = datetime.combine(d, opens, rules.tz)
                stop = datetime.combine(d, closes, rules.tz)
                while at + timedelta(minutes=rules.minutes) <= stop:
                    offered.append((at, at + timedelta(minutes=rules.minutes)))
                    at += timedelta(minutes=step)
        if not offered:
            return []
        lo, hi = offered[0][0], offered[-1][1]
        busy = list(
            await session.scalars(
                select(Visit).where(
                    Visit.state.in_(sorted(ACTIVE_STATES)),
                    Visit.starts_at < hi,
                    Visit.ends_at > lo,
                )
            )
        )
        terminals = set(
            await session.scalars(
                select(PrisonTerminal.id).where(PrisonTerminal.prison_id == inmate.prison_id)
            )
        )
        full: dict[str, bool] = {}
        out = []
        for start, end in offered:
            if start <= now or (me.banned_until is not None and me.banned_until > start):
                continue
            month = month_of(start, rules.tz)
            if month not in full:
                full[month] = await self._month_full(session, inmate.id, month)
            if full[month]:
                continue
            clash = [v for v in busy if overlaps(v.starts_at, v.ends_at, start, end)]
            if any(v.inmate_id == inmate.id for v in clash):
                continue
            if terminals <= {v.terminal_id for v in clash}:
                continue
            out.append(SlotOut(starts_at=start, ends_at=end))
        return out

    async def _month_full(self, session: AsyncSession, inmate_id: str, month: str) -> bool:
        held = await session.scalar(
            select(func.count())
            .select_from(Visit)
            .where(
                Visit.inmate_id == inmate_id,
                Visit.month == month,
                Visit.privileged.is_(False),
                (Visit.state.in_(sorted(ACTIVE_STATES)))
                | Visit.outcome.in_(
                    [VisitOutcome.COMPLETED, VisitOutcome.TERMINATED, VisitOutcome.NO_SHOW]
                ),
            )
        )
        return (held or 0) >= self.visits.rules.monthly_quota

    async def _requests(self, session: AsyncSession, mine: list[int]) -> list[RequestOut]:
        ids = select(VisitParty.visit_id).where(VisitParty.relative_id.in_(mine))
        rows = await session.scalars(
            select(Visit)
            .where(Visit.id.in_(ids))
            .order_by(Visit.starts_at.desc(), Visit.id.desc())
            .limit(20)
        )
        return [await self._out(session, v) for v in rows]

    async def _out(self, session: AsyncSession, visit: Visit) -> RequestOut:
        inmate = await session.get(Inmate, visit.inmate_id)
        prison = await session.get(Prison, visit.prison_id)
        people = (
            await session.execute(
                select(Relative)
                .join(VisitParty, VisitParty.relative_id == Relative.id)
                .where(VisitParty.visit_id == visit.id)
                .order_by(VisitParty.id)
            )
        ).scalars()
        return RequestOut(
            id=visit.id,
            state=visit.state,
            outcome=visit.outcome,
            inmate_id=visit.inmate_id,
            inmate_name=inmate.name if inmate else "",
            prison_name=prison.name if prison else "",
            starts_at=visit.starts_at,
            ends_at=visit.ends_at,
            relatives=[
                PersonOut(id=r.id, name=r.name, relationship=r.relationship) for r in people
            ],
            reason=visit.reason,
            cancellable=visit.state in CANCELLABLE,
        )

    async def request(
        self,
        id_number: str,
        phone: str,
        *,
        inmate_id: str,
        starts_at: datetime,
        relative_ids: Sequence[int] = (),
    ) -> RequestOut:
        """Book for oneself (and others of the inmate's relatives): ``requested``, or 409
        ``booking_refused`` with the staff booking's rule and message."""
        async with self._sessionmaker() as session:
            mine = await self._me(session, id_number, phone)
        me = next((m for m in mine if m.inmate_id == inmate_id), None)
        if me is None:
            raise NotFound(
                "you are not registered as a relative of this inmate",
                details={"field": "inmate_id"},
            )

        async def every_prison(_session: AsyncSession) -> frozenset[str] | None:
            return None

        out = await self.visits.book_as(
            f"family:relative{me.id}",
            every_prison,
            "visit.request",
            inmate_id=inmate_id,
            relative_ids=[me.id, *(r for r in relative_ids if r != me.id)],
            starts_at=starts_at,
        )
        async with self._sessionmaker() as session:
            visit = await session.get(Visit, out.id)
            assert visit is not None
            return await self._out(session, visit)

    async def cancel(self, id_number: str, phone: str, visit_id: int, reason: str) -> RequestOut:
        """The relative cancels a visit they are on, before it is live; the slot is free."""
        async with self._sessionmaker() as session:
            mine = await self._me(session, id_number, phone)
            visit = await session.get(Visit, visit_id)
            on = await session.scalar(
                select(VisitParty.relative_id).where(
                    VisitParty.visit_id == visit_id,
                    VisitParty.relative_id.in_([m.id for m in mine]),
                )
            )
            if visit is None or on is None:
                raise NotFound("no such visit of yours")
            await self.visits.close_visit(
                session,
                visit,
                f"family:relative{on}",
                CANCELLABLE,
                VisitOutcome.CANCELLED,
                reason,
                "visit.cancel",
            )
        async with self._sessionmaker() as session:
            row = await session.get(Visit, visit_id)
            assert row is not None
            return await self._out(session, row)
